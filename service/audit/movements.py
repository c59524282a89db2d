"""A person's movements at the sites the caller may see: `GET /api/v1/people/{id}/movements`."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from service.audit.documents import (
    CONTENT_TYPES,
    attachment,
    csv_document,
    json_value,
    record_export,
)
from service.people.records import person_name
from service.people.scope import person_not_found, require_visible
from service.platform.db import DB_KEY
from service.web.auth import Role, principal, requires
from service.web.openapi import documented, q_choice, q_time
from service.web.params import (
    format_param,
    time_range,
)

logger = logging.getLogger(__name__)

MOVEMENT_COLUMNS = (
    "stay_id",
    "site_id",
    "site_name",
    "entered_at",
    "entry_gate_id",
    "entry_gate",
    "exited_at",
    "exit_gate_id",
    "exit_gate",
    "exit_kind",
    "exit_estimated",  # an automatic check-out or a guard's "gone", not a seen exit
    "last_evidence_at",  # of an estimated end: the person's last scan or "seen"
)
# Stays that overlap [from, to): entered before `to`, not left before `from`.
MOVEMENTS_SQL = """
SELECT pr.id AS stay_id, pr.site_id, s.name AS site_name, pr.entered_at, pr.entry_gate_id,
       ge.name AS entry_gate, pr.exited_at, pr.exit_gate_id, gx.name AS exit_gate, pr.exit_kind,
       pr.exit_kind IN ('auto', 'gone') AS exit_estimated, pr.last_evidence_at
FROM presence pr
JOIN sites s ON s.id = pr.site_id
LEFT JOIN gates ge ON ge.id = pr.entry_gate_id
LEFT JOIN gates gx ON gx.id = pr.exit_gate_id
WHERE pr.person_id = $1
  AND ($2::timestamptz IS NULL OR pr.exited_at IS NULL OR pr.exited_at >= $2)
  AND ($3::timestamptz IS NULL OR pr.entered_at < $3)
  AND ($4::bigint IS NULL OR pr.site_id = $4)
ORDER BY pr.entered_at, pr.id
"""


@requires(Role.AUDITOR, Role.ADMIN, Role.GUARD, Role.HEALTH)
@documented(query={"from": q_time(), "to": q_time(), "format": q_choice("json", "csv")})
async def movements(request: web.Request) -> web.Response:
    """Every stay of a person (entry and exit, gates by name), in time order; a token
    limited to a site sees the stays there, of people known there."""
    person_id = int(request.match_info["person_id"])
    start, end = time_range(request)
    fmt = format_param(request, ("json", "csv"))
    site_id = principal(request).site_id
    filters = {k: v.isoformat() for k, v in (("from", start), ("to", end)) if v is not None} | {
        "person_id": person_id
    }
    async with request.app[DB_KEY].connection() as conn:
        # Not even the name of someone who never came to the caller's site.
        await require_visible(conn, person_id, site_id)
        name = await person_name(conn, person_id)
        if name is None:
            raise person_not_found(person_id)
        await record_export(
            conn,
            principal(request).actor,
            site_id=site_id,
            person_id=person_id,
            detail={"what": "movements", "filters": filters, "format": fmt},
        )
        rows = await conn.fetch(MOVEMENTS_SQL, person_id, start, end, site_id)
    if fmt == "csv":
        return web.Response(
            body=csv_document(MOVEMENT_COLUMNS, ([r[c] for c in MOVEMENT_COLUMNS] for r in rows)),
            headers={
                "Content-Type": CONTENT_TYPES["csv"],
                "Content-Disposition": attachment(f"movements-{person_id}", "csv"),
            },
        )
    return web.json_response(
        {
            "person_id": person_id,
            "full_name": name,
            "movements": [{c: json_value(r[c]) for c in MOVEMENT_COLUMNS} for r in rows],
        },
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
    )
