"""What a service process holds while it is under load: open files and database
connections, sampled from outside, so that a run shows the service's limits held
(its pool stays at CHECKIN_POOL_MAX_SIZE however many kiosks connect); and the CPU
time that the service and the database server spent in the measured window, which
says where a decision's cost goes, and the checkpoints that fell in it."""

from __future__ import annotations

import asyncio
import os
import threading
import time
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


# PostgreSQL 17 moved the checkpoint counters to their own view.
CHECKPOINTS_SQL = {
    True: "SELECT num_timed + num_requested FROM pg_stat_checkpointer",
    False: "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Peaks:
    open_files: int = 0
    db_connections: int = 0
    # Within the window: CPU seconds of the pids and of the database server's processes.
    window_s: float = 0.0
    service_cpu_s: float = 0.0
    db_cpu_s: float = 0.0
    checkpoints: int = 0


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name ([] if the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def server_processes(postmaster: int) -> list[int]:
    """The database server: its postmaster and every process it started (backends,
    checkpointer, WAL writer, autovacuum)."""
    children = [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and (fields := _stat(int(p))) and int(fields[1]) == postmaster
    ]
    return [postmaster, *children]


@contextmanager
def watch(
    pids: list[int],
    db_url: str,
    window: tuple[float, float] | None = None,
    every_s: float = 0.25,
) -> Iterator[Peaks]:
    """Sample until the block ends: the largest open-file count of any of the pids,
    and of connections to the database (all of them, less the sampler's own); and,
    between the wall-clock times of `window`, CPU time and checkpoints."""
    peaks = Peaks()
    done = threading.Event()

    async def sample() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            postmaster = int(_stat(await conn.fetchval("SELECT pg_backend_pid()"))[1])
            newer = await conn.fetchval("SELECT current_setting('server_version_num')::int")
            checkpoints_sql = CHECKPOINTS_SQL[newer >= 170000]
            start: tuple[float, float, float, int] | None = None
            while not done.is_set():
                peaks.open_files = max([peaks.open_files, *(open_files(p) for p in pids)])
                backends = int(await conn.fetchval(BACKENDS_SQL))
                peaks.db_connections = max(peaks.db_connections, backends)
                now = time.time()
                if window is not None and window[0] <= now and (start is None or now <= window[1]):
                    reading = (
                        now,
                        cpu_seconds(pids),
                        cpu_seconds(server_processes(postmaster)),
                        int(await conn.fetchval(checkpoints_sql)),
                    )
                    start = start or reading
                    peaks.window_s = reading[0] - start[0]
                    peaks.service_cpu_s = reading[1] - start[1]
                    peaks.db_cpu_s = reading[2] - start[2]
                    peaks.checkpoints = reading[3] - start[3]
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
