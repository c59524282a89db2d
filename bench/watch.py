"""What a service process holds while it is under load: open files and database
connections, sampled from outside, so that a run shows the service's limits held
(its pool stays at CHECKIN_POOL_MAX_SIZE however many kiosks connect)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg

from bench.limits import open_files

BACKENDS_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
"""


@dataclass
class Peaks:
    open_files: int = 0
    db_connections: int = 0


@contextmanager
def watch(pids: list[int], db_url: str, every_s: float = 0.25) -> Iterator[Peaks]:
    """Sample until the block ends: the largest open-file count of any of the pids,
    and of connections to the database (all of them, less the sampler's own)."""
    peaks = Peaks()
    done = threading.Event()

    async def sample() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            while not done.is_set():
                peaks.open_files = max([peaks.open_files, *(open_files(p) for p in pids)])
                backends = int(await conn.fetchval(BACKENDS_SQL))
                peaks.db_connections = max(peaks.db_connections, backends)
                await asyncio.sleep(every_s)
        finally:
            await conn.close()

    thread = threading.Thread(target=lambda: asyncio.run(sample()), daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join(timeout=10)
