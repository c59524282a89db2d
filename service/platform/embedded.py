"""The embedded PostgreSQL (the `pgserver` package) used when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def start_embedded(data_dir: Path) -> tuple[Any, str]:
    """Start (or join) the server kept in data_dir/pg; return its handle and URL.

    The handle must stay referenced while the URL is in use: pgserver stops the
    server when the last process holding a handle to it exits. The server is ours
    alone, so its default `postgres` database holds our schema.
    """
    with warnings.catch_warnings(record=True) as caught:  # the filters in force still apply
        import pgserver  # imported here: only the embedded mode needs it
    for warning in caught:
        # platformdirs' RuntimeDirWarning, without XDG_RUNTIME_DIR (no login session, as
        # under sudo or in a container): pgserver then keeps its lock file in
        # /tmp/runtime-UID, which serves as well. Anything else is worth a look.
        harmless = type(warning.message).__name__ == "RuntimeDirWarning"
        logger.log(logging.DEBUG if harmless else logging.WARNING, "%s", warning.message)

    pgdata = (data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    return server, server.get_uri()
