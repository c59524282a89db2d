"""A PostgreSQL for benchmarks: DATABASE_URL's server, or an embedded one; a fresh,
migrated database per scenario; and the pgbench binary that pgserver ships."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service.platform.db import init_connection
from service.platform.migrations import migrate


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextlib.contextmanager
def server() -> Iterator[str]:
    """An admin URL: DATABASE_URL when set, else an embedded server for this run."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="cgw-bench-pg-") as pgdata:
        handle = pgserver.get_server(Path(pgdata), cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            yield handle.get_uri()
        finally:
            handle.cleanup()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"cgw_bench_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await init_connection(conn)
            await migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    try:
        yield with_database(server_url, name)
    finally:
        asyncio.run(drop())


def pgbench_path() -> str:
    import pgserver

    shipped = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    if shipped.exists():
        return str(shipped)
    found = shutil.which("pgbench")
    if found is None:
        raise FileNotFoundError("pgbench not found (pgserver ships one)")
    return found


def libpq_env(url: str) -> dict[str, str]:
    """pgbench takes libpq settings; translate a postgresql:// URL into them."""
    parts = urlsplit(url)
    env = dict(os.environ)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    env["PGHOST"] = query.get("host") or parts.hostname or "localhost"
    if parts.port:
        env["PGPORT"] = str(parts.port)
    env["PGUSER"] = parts.username or "postgres"
    if parts.password:
        env["PGPASSWORD"] = parts.password
    env["PGDATABASE"] = parts.path.lstrip("/")
    return env
