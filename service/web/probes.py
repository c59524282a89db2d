"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from service.platform.db import DB_KEY
from service.platform.errors import UNAVAILABLE_ERRORS, error_response
from service.platform.migrations import current_version, expected_version
from service.web.auth import public

READ_ONLY_SQL = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool"


@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """Ready when a primary answers (a server that takes writes: not a standby) and
    its schema is the one this code expects."""
    want = expected_version()
    try:
        async with request.app[DB_KEY].connection() as conn:
            read_only = await conn.fetchval(READ_ONLY_SQL)
            have = await current_version(conn)
            if read_only:
                conn.terminate()  # the pool's next connection looks for the primary again
    except UNAVAILABLE_ERRORS:
        return error_response(503, "database_unreachable", "The database does not answer.")
    if read_only:
        return error_response(
            503,
            "database_read_only",
            "The database answers but takes no writes (a standby): no primary is reachable.",
        )
    if have != want:
        return error_response(
            503,
            "schema_out_of_date",
            f"The database schema is at version {have}; this code needs {want}. "
            "Run `checkin-gateway migrate`.",
        )
    return web.json_response({"status": "ready", "schema_version": have})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/healthz", healthz, name="healthz"),
        web.get("/readyz", readyz, name="readyz"),
    ]
