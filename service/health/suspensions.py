"""Health suspensions: people held at a site's doors for a health reason, until cleared.

A suspension names its cause (the door reason: case_confirmed, contact_traced,
area_flagged) and what caused it (a case, a flagged area). The door reads the gravest
active one with the pass (checkin_batch_state in schema.sql), so it holds from the
next scan on every instance. Each suspension and each clearance is an event in the
site's chain, with the person's name for the console's live feed. A traced contact is
cleared by an official negative test taken at or after `clear_after` (the exposure
plus the site's quarantine days), in the transaction that records the test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from checkin_core.reasons import SUSPENSION_REASONS
from service.declarations.model import Whole
from service.events.fanout import FANOUT_KEY
from service.events.log import NewEvent, append_events
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, require_site, requires, site_exists
from service.web.openapi import Q_BOOL, documented, q_choice, q_int
from service.web.text import Text
from service.web.validation import read_model, validate

Cause = Literal["case_confirmed", "contact_traced", "area_flagged"]
Note = Annotated[str, Text(500, multiline=True)]
Id = Annotated[int, Whole(ge=1, le=2**63 - 1)]  # a bigint key; 2.0 is 2, as JSON counts
MAX_PEOPLE = 10_000  # person ids in one request

_RETURNED = """
RETURNING s.id, s.person_id, s.site_id, s.cause, s.case_id, s.area_id, s.clear_after,
          (SELECT full_name FROM people WHERE id = s.person_id) AS full_name
"""
# One row per person: $6 people, $7 their declarations, $8 exposures, $9 clear-after
# times. A person already held for the same cause and source is left as is.
SUSPEND_SQL = (
    """
INSERT INTO suspensions AS s (person_id, site_id, cause, case_id, area_id, declaration_id,
                              exposed_at, clear_after, created_by, created_at)
SELECT u.person_id, $1, $2, $3, $4, u.declaration_id, u.exposed_at, u.clear_after, $5, $10
FROM unnest($6::bigint[], $7::bigint[], $8::timestamptz[], $9::timestamptz[])
     AS u (person_id, declaration_id, exposed_at, clear_after)
ON CONFLICT (person_id, site_id, cause, (coalesce(case_id, 0)), (coalesce(area_id, 0)))
   WHERE cleared_at IS NULL DO NOTHING
"""
    + _RETURNED
)
_CLEAR_SET = """
UPDATE suspensions AS s SET cleared_at = $1, cleared_by = $2, cleared_note = $3
"""
# By an officer: $4 site, $5 cause, and optionally $6 area, $7 case, $8 people.
CLEAR_SQL = (
    _CLEAR_SET
    + """
WHERE s.cleared_at IS NULL AND s.site_id = $4 AND s.cause = $5
  AND ($6::bigint IS NULL OR s.area_id = $6) AND ($7::bigint IS NULL OR s.case_id = $7)
  AND ($8::bigint[] IS NULL OR s.person_id = ANY ($8::bigint[]))
"""
    + _RETURNED
)
# By an official negative test of person $4 taken at $5: the contact suspensions it
# satisfies, at every site (the result is a fact about the person, wherever held).
CLEAR_BY_TEST_SQL = (
    _CLEAR_SET
    + """
WHERE s.cleared_at IS NULL AND s.person_id = $4 AND s.cause = 'contact_traced'
  AND s.clear_after <= $5
"""
    + _RETURNED
)
LIST_SQL = """
SELECT s.id, s.person_id, p.full_name, s.site_id, s.cause, s.case_id, s.area_id,
       s.declaration_id, s.exposed_at, s.clear_after, s.created_by, s.created_at,
       s.cleared_at, s.cleared_by, s.cleared_note
FROM suspensions s JOIN people p ON p.id = s.person_id
WHERE s.site_id = $1 AND ($2::text IS NULL OR s.cause = $2)
  AND (s.cleared_at IS NULL) = $3
ORDER BY s.created_at, s.id
LIMIT $4
"""
PERSON_SUSPENSIONS_SQL = """
SELECT id, site_id, cause, case_id, area_id, clear_after, created_at FROM suspensions
WHERE person_id = $1 AND cleared_at IS NULL AND ($2::bigint IS NULL OR site_id = $2)
ORDER BY site_id, id
"""


@dataclass(frozen=True)
class Hold:
    """One person to suspend, and why then."""

    person_id: int
    declaration_id: int | None = None
    exposed_at: datetime | None = None
    clear_after: datetime | None = None


def _event(kind: str, row: asyncpg.Record, actor: str, now: datetime, **extra: Any) -> NewEvent:
    detail: dict[str, Any] = {
        "suspension_id": row["id"],
        "name": row["full_name"],
        "case_id": row["case_id"],
        "area_id": row["area_id"],
    }
    if row["clear_after"] is not None:
        detail["clear_after"] = row["clear_after"].isoformat()
    return NewEvent(
        kind=kind,
        actor=actor,
        occurred_at=now,
        site_id=row["site_id"],
        person_id=row["person_id"],
        reason=row["cause"],
        detail=detail | extra,
    )


async def record_suspended(
    conn: asyncpg.Connection, rows: Sequence[asyncpg.Record], actor: str, now: datetime
) -> None:
    """The events of suspensions just written (in the caller's transaction)."""
    await append_events(conn, [_event("suspension", r, actor, now) for r in rows])


async def suspend(
    conn: asyncpg.Connection,
    *,
    site_id: int,
    cause: Cause,
    holds: Sequence[Hold],
    actor: str,
    now: datetime,
    case_id: int | None = None,
    area_id: int | None = None,
) -> list[asyncpg.Record]:
    """Suspend these people at the site, each an event; returns the new suspensions
    (people already held for the same cause and source are not in it)."""
    rows = await conn.fetch(
        SUSPEND_SQL,
        site_id,
        cause,
        case_id,
        area_id,
        actor,
        [h.person_id for h in holds],
        [h.declaration_id for h in holds],
        [h.exposed_at for h in holds],
        [h.clear_after for h in holds],
        now,
    )
    await record_suspended(conn, rows, actor, now)
    return list(rows)


async def _cleared(
    conn: asyncpg.Connection,
    sql: str,
    *args: Any,
    actor: str,
    note: str,
    now: datetime,
    test_id: int | None = None,
) -> list[asyncpg.Record]:
    rows = await conn.fetch(sql, now, actor, note, *args)
    extra = {"note": note} | ({"test_id": test_id} if test_id is not None else {})
    await append_events(conn, [_event("suspension_cleared", r, actor, now, **extra) for r in rows])
    return list(rows)


async def clear_by_test(
    conn: asyncpg.Connection,
    *,
    person_id: int,
    taken_at: datetime,
    test_id: int,
    actor: str,
    now: datetime,
) -> list[asyncpg.Record]:
    """Clear the contact suspensions an official negative taken at `taken_at` satisfies."""
    return await _cleared(
        conn,
        CLEAR_BY_TEST_SQL,
        person_id,
        taken_at,
        actor=actor,
        note="official negative test",
        now=now,
        test_id=test_id,
    )


async def person_suspensions(
    conn: asyncpg.Connection, person_id: int, site_id: int | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(PERSON_SUSPENSIONS_SQL, person_id, site_id)
    return [row_json(r) for r in rows]


def row_json(row: asyncpg.Record) -> dict[str, Any]:
    """A row as JSON: times in ISO 8601."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dict(row).items()}


class ClearIn(BaseModel):
    """Clear a site's active suspensions of one cause: all of them, or those of one
    flagged area, one case or some people."""

    # area_id only with the cause area_flagged, stated for the OpenAPI document too.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "anyOf": [
                {"not": {"required": ["area_id"]}},
                {"properties": {"area_id": {"type": "null"}}},
                {"properties": {"cause": {"const": "area_flagged"}}},
            ]
        },
    )

    cause: Cause
    note: Note
    area_id: Id | None = None
    case_id: Id | None = None
    person_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_PEOPLE)] | None = None

    @model_validator(mode="after")
    def _sources(self) -> ClearIn:
        if self.area_id is not None and self.cause != "area_flagged":
            raise PydanticCustomError(
                "area_needs_area_flagged", "area_id goes with the cause area_flagged"
            )
        return self


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cause: Cause | None = None
    active: bool = True
    limit: Annotated[int, Field(ge=1, le=MAX_PEOPLE)] = 1000


def _site(request: web.Request) -> int:
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    return site_id


async def _site_exists(conn: asyncpg.Connection, site_id: int) -> None:
    if not await site_exists(conn, site_id):
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.")


@requires(Role.ADMIN, Role.HEALTH, Role.GUARD, Role.AUDITOR)
@documented(
    query={
        "cause": q_choice("case_confirmed", "contact_traced", "area_flagged"),
        "active": Q_BOOL,
        "limit": q_int(1, MAX_PEOPLE),
    }
)
async def list_suspensions(request: web.Request) -> web.Response:
    """A site's suspensions (active by default), oldest first: the desk's list."""
    site_id = _site(request)
    query = validate(ListQuery, dict(request.query))
    async with request.app[DB_KEY].connection() as conn:
        await _site_exists(conn, site_id)
        rows = await conn.fetch(LIST_SQL, site_id, query.cause, query.active, query.limit)
    return web.json_response({"site_id": site_id, "suspensions": [row_json(r) for r in rows]})


@requires(Role.ADMIN, Role.HEALTH)
@documented(body=ClearIn)
async def clear_suspensions(request: web.Request) -> web.Response:
    """Lift a site's suspensions of one cause in one action, each an event."""
    site_id = _site(request)
    body = await read_model(request, ClearIn)
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        await _site_exists(conn, site_id)
        rows = await _cleared(
            conn,
            CLEAR_SQL,
            site_id,
            body.cause,
            body.area_id,
            body.case_id,
            body.person_ids,
            actor=principal(request).actor,
            note=body.note,
            now=now,
        )
    request.app[FANOUT_KEY].changed([site_id])  # the kiosks' offline copies
    return web.json_response(
        {
            "site_id": site_id,
            "cause": body.cause,
            "cleared": [{"person_id": r["person_id"], "name": r["full_name"]} for r in rows],
        }
    )


def routes() -> list[web.RouteDef]:
    site = r"/api/v1/sites/{site_id:\d{1,18}}"
    return [
        web.get(site + "/suspensions", list_suspensions, name="suspensions"),
        web.post(site + "/suspensions/clear", clear_suspensions, name="clear_suspensions"),
    ]


assert set(SUSPENSION_REASONS) == set(get_args(Cause))  # the door's words for every cause
