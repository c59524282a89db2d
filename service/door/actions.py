"""What guards and admins do at the door: manual exits, the deny list, and the views
of who is inside and how the kiosks are (overrides: service.door.overrides)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from checkin_core.reasons import short_name
from service.events.fanout import FANOUT_KEY
from service.events.log import Heads, NewEvent, append_events, lock_chains
from service.people.records import person_name
from service.people.scope import is_visible, person_not_found, visible_to_sql
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, require_site, requires
from service.web.openapi import documented
from service.web.text import Text
from service.web.validation import read_model

# What a guard or admin writes down: a few words at least, line breaks allowed.
Reason = Annotated[str, Text(500, min_visible=3, multiline=True)]
KIOSK_SILENT_AFTER_S = 30


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class DenyListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: Annotated[int, Field(gt=0)]
    site_id: Annotated[int, Field(gt=0)] | None = None  # None: every site
    reason: Reason


OPEN_STAY_SQL = """
SELECT id, entered_at FROM presence WHERE site_id = $1 AND person_id = $2 AND exited_at IS NULL
"""
OPEN_STAY_INSERT_SQL = """
INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event)
VALUES ($1, $2, $3, $4, $5)
"""
CLOSE_STAY_SQL = """
UPDATE presence SET exited_at = $2, exit_gate_id = $3, exit_event = $4, exit_kind = $5
WHERE id = $1
"""
KIOSKS_SQL = """
SELECT t.id AS token_id, t.label, t.gate_id, g.name AS gate_name, h.reported_at, h.report
FROM api_tokens t JOIN gates g ON g.id = t.gate_id
LEFT JOIN kiosk_health h ON h.token_id = t.id
WHERE t.role = 'kiosk' AND t.revoked_at IS NULL AND g.site_id = $1 ORDER BY t.id
"""
INSERT_DENY_SQL = """
INSERT INTO deny_list (person_id, site_id, reason, added_by) VALUES ($1, $2, $3, $4)
RETURNING id, added_at
"""
REMOVE_DENY_SQL = """
UPDATE deny_list SET removed_at = now(), removed_by = $2, removed_reason = $3
WHERE id = $1 AND removed_at IS NULL AND ($4::bigint IS NULL OR site_id = $4)
RETURNING person_id, site_id
"""
# A caller limited to a site: its own entries, and the entries for every site of the
# people known there (not the names of everyone else the list holds).
LIST_DENY_SQL = (
    """
SELECT d.id, d.person_id, p.full_name, d.site_id, d.reason, d.added_by, d.added_at
FROM deny_list d JOIN people p ON p.id = d.person_id
WHERE d.removed_at IS NULL AND ($1::bigint IS NULL OR d.site_id = $1
                               OR (d.site_id IS NULL AND """
    + visible_to_sql("d.person_id", "$1")
    + """))
ORDER BY d.added_at DESC
"""
)


def _site_id(request: web.Request) -> int:
    return int(request.match_info["site_id"])


def announce(request: web.Request, heads: dict[int, tuple[int, bytes]]) -> None:
    request.app[FANOUT_KEY].poke({site: head[0] for site, head in heads.items()})


async def lock_open_stay(
    conn: asyncpg.Connection, site_id: int, person_id: int
) -> tuple[Heads, asyncpg.Record]:
    """Hold the site's chain (nobody else changes its presence until commit) and return
    the person's open stay there (id, entered_at); 404 no site, 409 not inside."""
    try:
        heads = await lock_chains(conn, [site_id])
    except LookupError:
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.") from None
    stay = await conn.fetchrow(OPEN_STAY_SQL, site_id, person_id)
    if stay is None:
        raise ApiError(409, "not_inside", "This person is not inside this site.")
    return heads, stay


@requires(Role.GUARD, Role.ADMIN)
@documented(body=ReasonIn)
async def manual_exit(request: web.Request) -> web.Response:
    """Record by hand that a person left (a kiosk was down, they left with a group)."""
    site_id = _site_id(request)
    person_id = int(request.match_info["person_id"])
    caller = require_site(request, site_id)
    body = await read_model(request, ReasonIn)
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        heads, stay = await lock_open_stay(conn, site_id, person_id)
        name = await person_name(conn, person_id)
        event = NewEvent(
            kind="manual_exit",
            actor=caller.actor,
            occurred_at=now,
            site_id=site_id,
            person_id=person_id,
            direction="out",
            detail={"reason": body.reason, "name": short_name(name or "")},
        )
        (appended,) = await append_events(conn, [event], heads)
        await conn.execute(CLOSE_STAY_SQL, stay["id"], now, None, appended.id, "manual")
    announce(request, heads)
    return web.json_response({"event_row_id": appended.id, "seq": appended.seq}, status=201)


# The auditor reads the kiosks' health too (offline mode, clock skew: what an offline
# verdict is judged by); nothing here names a person.
@requires(Role.GUARD, Role.ADMIN, Role.AUDITOR)
async def kiosks(request: web.Request) -> web.Response:
    site_id = _site_id(request)
    require_site(request, site_id)
    async with request.app[DB_KEY].connection() as conn:
        rows = await conn.fetch(KIOSKS_SQL, site_id)
    now = datetime.now(UTC)
    out = []
    for r in rows:
        seen = r["reported_at"]
        out.append(
            {
                "token_id": r["token_id"],
                "label": r["label"],
                "gate_id": r["gate_id"],
                "gate_name": r["gate_name"],
                "last_heartbeat": seen.isoformat() if seen else None,
                "online": seen is not None and (now - seen).total_seconds() < KIOSK_SILENT_AFTER_S,
                "report": r["report"],
            }
        )
    return web.json_response({"site_id": site_id, "kiosks": out})


async def _deny_list_event(
    conn: asyncpg.Connection,
    kind: str,
    actor: str,
    person_id: int,
    site_id: int | None,
    detail: dict[str, Any],
) -> dict[int, tuple[int, bytes]]:
    heads = await lock_chains(conn, [site_id or 0])
    await append_events(
        conn,
        [
            NewEvent(
                kind=kind,
                actor=actor,
                occurred_at=datetime.now(UTC),
                site_id=site_id,
                person_id=person_id,
                detail=detail,
            )
        ],
        heads,
    )
    return heads


@requires(Role.ADMIN)
@documented(body=DenyListIn)
async def add_to_deny_list(request: web.Request) -> web.Response:
    body = await read_model(request, DenyListIn)
    caller = principal(request)
    actor = caller.actor
    if caller.site_id is not None and body.site_id != caller.site_id:
        # An admin of one site lists people for that site, not for every site.
        raise ApiError(403, "forbidden", "Your token is limited to another site.")
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        if not await is_visible(conn, body.person_id, caller.site_id):
            raise person_not_found(body.person_id)
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    INSERT_DENY_SQL, body.person_id, body.site_id, body.reason, actor
                )
        except asyncpg.UniqueViolationError:
            raise ApiError(
                409, "already_listed", "This person is already on the deny list."
            ) from None
        except asyncpg.ForeignKeyViolationError:
            raise ApiError(404, "site_not_found", f"No site with id {body.site_id}.") from None
        heads = await _deny_list_event(
            conn,
            "deny_list_add",
            actor,
            body.person_id,
            body.site_id,
            {"reason": body.reason, "entry_id": row["id"]},
        )
    announce(request, heads)
    return web.json_response({"id": row["id"], "added_at": row["added_at"].isoformat()}, status=201)


@requires(Role.ADMIN)
@documented(body=ReasonIn)
async def remove_from_deny_list(request: web.Request) -> web.Response:
    entry_id = int(request.match_info["entry_id"])
    body = await read_model(request, ReasonIn)
    caller = principal(request)
    actor = caller.actor
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        row = await conn.fetchrow(REMOVE_DENY_SQL, entry_id, actor, body.reason, caller.site_id)
        if row is None:
            raise ApiError(404, "entry_not_found", "No active deny-list entry with this id.")
        heads = await _deny_list_event(
            conn,
            "deny_list_remove",
            actor,
            row["person_id"],
            row["site_id"],
            {"reason": body.reason, "entry_id": entry_id},
        )
    announce(request, heads)
    return web.Response(status=204)


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR)
async def list_deny_list(request: web.Request) -> web.Response:
    site_id = principal(request).site_id
    async with request.app[DB_KEY].connection() as conn:
        rows = await conn.fetch(LIST_DENY_SQL, site_id)
    return web.json_response(
        {"entries": [{**dict(r), "added_at": r["added_at"].isoformat()} for r in rows]}
    )


def routes() -> list[web.RouteDef]:
    site = r"/api/v1/sites/{site_id:\d{1,18}}"
    return [
        web.post(site + r"/presence/{person_id:\d{1,18}}/exit", manual_exit, name="manual_exit"),
        web.get(site + "/kiosks", kiosks, name="kiosks"),
        web.get("/api/v1/deny-list", list_deny_list, name="deny_list"),
        web.post("/api/v1/deny-list", add_to_deny_list, name="add_to_deny_list"),
        web.post(
            r"/api/v1/deny-list/{entry_id:\d{1,18}}/remove",
            remove_from_deny_list,
            name="remove_from_deny_list",
        ),
    ]
