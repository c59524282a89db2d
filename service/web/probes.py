"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from service.platform.db import DB_KEY
from service.platform.errors import UNAVAILABLE_ERRORS, error_response
from service.platform.migrations import current_version, expected_version
from service.web.auth import public


@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and its schema is the one this code expects."""
    want = expected_version()
    try:
        async with request.app[DB_KEY].connection() as conn:
            have = await conn.fetchval("SELECT 1") and await current_version(conn)
    except UNAVAILABLE_ERRORS:
        return error_response(503, "database_unreachable", "The database does not answer.")
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
