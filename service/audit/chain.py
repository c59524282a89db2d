"""Verifying the hash chains of the event log: `GET /api/v1/audit/verify`."""

from __future__ import annotations

import logging

from aiohttp import web

from service.events.log import verify_chain
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, require_site, requires
from service.web.openapi import documented, q_id
from service.web.params import (
    bad_parameter,
    int_param,
)

logger = logging.getLogger(__name__)

CHAIN_EXISTS_SQL = "SELECT 1 FROM event_chains WHERE chain_id = $1"
ALL_CHAINS_SQL = "SELECT chain_id FROM event_chains ORDER BY chain_id"


@requires(Role.AUDITOR, Role.ADMIN)
@documented(query={"site_id": q_id(minimum=0), "from_seq": q_id(), "to_seq": q_id()})
async def verify(request: web.Request) -> web.Response:
    """Recompute hash chains: one site's (site_id=0 is the chain of no site), or all."""
    site_id = int_param(request, "site_id", minimum=0)
    from_seq = int_param(request, "from_seq") or 1
    to_seq = int_param(request, "to_seq")
    if to_seq is not None and to_seq < from_seq:
        raise bad_parameter("to_seq", "to_seq must not be before from_seq.")
    caller = principal(request)
    if caller.site_id is not None and site_id is None:
        site_id = caller.site_id
    async with request.app[DB_KEY].connection() as conn:
        if site_id is not None:
            if site_id:
                require_site(request, site_id)
            if await conn.fetchval(CHAIN_EXISTS_SQL, site_id) is None:
                raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
            report = await verify_chain(conn, site_id, from_seq=from_seq, to_seq=to_seq)
            return web.json_response(report.as_json())
        chains = [r["chain_id"] for r in await conn.fetch(ALL_CHAINS_SQL)]
        reports = [
            (await verify_chain(conn, c, from_seq=from_seq, to_seq=to_seq)).as_json()
            for c in chains
        ]
    return web.json_response({"ok": all(r["ok"] for r in reports), "chains": reports})
