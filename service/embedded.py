"""The embedded PostgreSQL (the `pgserver` package) used when DATABASE_URL is unset."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded(data_dir: Path) -> tuple[Any, str]:
    """Start (or join) the server kept in data_dir/pg; return its handle and URL.

    The handle must stay referenced while the URL is in use: pgserver stops the
    server when the last process holding a handle to it exits. The server is ours
    alone, so its default `postgres` database holds our schema.
    """
    import pgserver  # imported here: only the embedded mode needs it

    pgdata = (data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    return server, server.get_uri()
