"""Confirmed cases (F0) -> contacts -> action.

Recording a case, in one transaction: the case, its person suspended at the site
(case_confirmed), and the trace over the infectious window (from the start of the
onset day minus the site's `infectious_days_before_onset`, to now) run by
service.audit.trace, whose contacts (overlapping stays at the same site) are kept with the
case: that list is what the officer suspends from (contact_traced), so a person not
on it cannot be suspended through the case (409). F2, the contacts of the contacts
from their first overlap with the case on, are listed on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from service.audit.trace import Contact, TraceQuery, trace
from service.declarations.filing import SITE_SQL
from service.declarations.policy import SiteRules
from service.events.fanout import FANOUT_KEY
from service.events.log import NewEvent, append_event
from service.health.suspensions import Hold, Id, suspend
from service.people.records import person_name
from service.people.scope import known_at_site
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Principal, Role, principal, requires
from service.web.field_errors import field_error
from service.web.openapi import documented
from service.web.text import Text
from service.web.validation import read_model

CASE_PATH = r"/api/v1/cases/{case_id:\d{1,18}}"
MAX_ONSET_AGE = timedelta(days=60)

# The sites where a person is known: a current declaration or a stay.
PERSON_SITES_SQL = """
SELECT site_id FROM declarations WHERE person_id = $1 AND superseded_at IS NULL
UNION SELECT site_id FROM presence WHERE person_id = $1
ORDER BY 1
"""
INSERT_CASE_SQL = """
INSERT INTO health_cases (person_id, site_id, onset_on, note, window_from, window_to,
                          contacts, test_id, recorded_by, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6)
RETURNING id
"""
CASE_SQL = """
SELECT c.id, c.person_id, p.full_name, c.site_id, c.onset_on, c.note, c.window_from,
       c.window_to, c.contacts, c.test_id, c.recorded_by, c.recorded_at
FROM health_cases c JOIN people p ON p.id = c.person_id WHERE c.id = $1
"""
GATE_NAMES_SQL = "SELECT id, name FROM gates WHERE id = ANY ($1::bigint[])"
HELD_SQL = """
SELECT person_id FROM suspensions
WHERE case_id = $1 AND cause = 'contact_traced' AND cleared_at IS NULL
"""


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: Id
    onset_on: date
    note: Annotated[str, Text(1000, min_visible=0, multiline=True)] = ""
    site_id: Id | None = None  # needed only when the person is known at several sites

    @field_validator("onset_on")
    @classmethod
    def _recent(cls, value: date) -> date:
        if value < (datetime.now(UTC) - MAX_ONSET_AGE).date():
            raise PydanticCustomError(
                "onset_too_old", "onset_on is too old", {"days": MAX_ONSET_AGE.days}
            )
        return value


@dataclass(frozen=True)
class RecordedCase:
    id: int
    site_id: int
    contacts: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "site_id": self.site_id, "contacts": self.contacts}


def _not_found(person_id: int) -> ApiError:
    return ApiError(404, "person_not_found", f"No person {person_id} known here.")


async def case_sites(
    conn: asyncpg.Connection, caller: Principal, person_id: int, asked: int | None
) -> list[int]:
    """The sites a case for this person is recorded at, as this caller may: the one
    asked for, the caller's own, else every site the person is known at. A person
    unknown (to this caller) is 404, whatever exists elsewhere."""
    if await person_name(conn, person_id) is None:
        raise _not_found(person_id)
    if caller.site_id is not None and asked not in (None, caller.site_id):
        raise ApiError(403, "forbidden", "Your token is limited to another site.")
    wanted = asked or caller.site_id
    if wanted is not None:
        if not await known_at_site(conn, person_id, wanted):
            raise _not_found(person_id)
        return [wanted]
    return [r["site_id"] for r in await conn.fetch(PERSON_SITES_SQL, person_id)]


async def site_rules(conn: asyncpg.Connection, site_id: int) -> tuple[ZoneInfo, SiteRules]:
    row = await conn.fetchrow(SITE_SQL, site_id)
    return ZoneInfo(row["timezone"]), SiteRules.model_validate(row["declaration_rules"])


async def contacts_json(
    conn: asyncpg.Connection, contacts: list[Contact], **extra: Any
) -> list[dict[str, Any]]:
    gate_ids = sorted({g for c in contacts for g in c.gate_ids})
    names = {r["id"]: r["name"] for r in await conn.fetch(GATE_NAMES_SQL, gate_ids)}
    return [
        {
            "person_id": c.person_id,
            "name": c.full_name,
            "phone": c.phone,
            "organisation": c.organisation,
            "overlap_minutes": c.overlap_minutes,
            "shared_stays": c.shared_stays,
            "gates": [{"id": g, "name": names.get(g)} for g in c.gate_ids],
            "first_overlap_at": c.first_overlap.isoformat(),
            "last_overlap_at": c.last_overlap.isoformat(),
        }
        | extra
        for c in contacts
    ]


async def record_case(
    conn: asyncpg.Connection,
    *,
    person_id: int,
    site_id: int,
    onset_on: date,
    note: str,
    actor: str,
    now: datetime,
    test_id: int | None = None,
) -> RecordedCase:
    """Record a case at a site and act on it at once (in the caller's transaction)."""
    zone, rules = await site_rules(conn, site_id)
    start_day = onset_on - timedelta(days=rules.infectious_days_before_onset)
    start = datetime.combine(start_day, time(0), tzinfo=zone).astimezone(UTC)
    if onset_on > now.astimezone(zone).date():
        raise ApiError(
            422,
            "validation_failed",
            "Some fields are invalid.",
            fields=[field_error("onset_on", "onset_in_future")],
        )
    query = TraceQuery(person_id, start, now, now, site_id=site_id)
    traced = await trace(conn, query, actor=actor, now=now, output="case")
    contacts = await contacts_json(conn, traced.contacts)
    case_id = await conn.fetchval(
        INSERT_CASE_SQL,
        person_id,
        site_id,
        onset_on,
        note,
        start,
        now,
        contacts,
        test_id,
        actor,
    )
    await append_event(
        conn,
        NewEvent(
            kind="health_case",
            actor=actor,
            occurred_at=now,
            site_id=site_id,
            person_id=person_id,
            detail={
                "case_id": case_id,
                "name": traced.person["full_name"],
                "onset_on": onset_on.isoformat(),
                "note": note,
                "test_id": test_id,
                "window": query.as_json(),
                "contacts": len(contacts),
            },
        ),
    )
    await suspend(
        conn,
        site_id=site_id,
        cause="case_confirmed",
        holds=[Hold(person_id)],
        actor=actor,
        now=now,
        case_id=case_id,
    )
    return RecordedCase(case_id, site_id, contacts)


@requires(Role.ADMIN, Role.HEALTH)
@documented(body=CaseIn)
async def create_case(request: web.Request) -> web.Response:
    """Record a confirmed case (F0): suspends the person, traces their contacts."""
    body = await read_model(request, CaseIn)
    caller = principal(request)
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        sites = await case_sites(conn, caller, body.person_id, body.site_id)
        if not sites:
            raise _not_found(body.person_id)
        if len(sites) > 1:
            raise ApiError(
                422,
                "validation_failed",
                "Some fields are invalid.",
                fields=[
                    field_error(
                        "site_id", "known_at_several_sites", {"sites": ", ".join(map(str, sites))}
                    )
                ],
            )
        case = await record_case(
            conn,
            person_id=body.person_id,
            site_id=sites[0],
            onset_on=body.onset_on,
            note=body.note,
            actor=caller.actor,
            now=now,
        )
    request.app[FANOUT_KEY].changed([case.site_id])  # the kiosks' copies: now, not at a poll
    return web.json_response(case.as_json(), status=201)


async def visible_case(conn: asyncpg.Connection, request: web.Request) -> asyncpg.Record:
    """The case of the path, if the caller's site reaches it; 404 case_not_found otherwise."""
    case_id = int(request.match_info["case_id"])
    row = await conn.fetchrow(CASE_SQL, case_id)
    if row is None or not principal(request).can_see_site(row["site_id"]):
        raise ApiError(404, "case_not_found", f"No case {case_id}.")
    return row


async def contacts_with_state(
    conn: asyncpg.Connection, case: asyncpg.Record
) -> list[dict[str, Any]]:
    """The case's contacts, each with whether they are suspended through it now."""
    held = {r["person_id"] for r in await conn.fetch(HELD_SQL, case["id"])}
    return [c | {"suspended": c["person_id"] in held} for c in case["contacts"]]


def _case_json(case: asyncpg.Record, contacts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": case["id"],
        "person_id": case["person_id"],
        "name": case["full_name"],
        "site_id": case["site_id"],
        "onset_on": case["onset_on"].isoformat(),
        "note": case["note"],
        "window": {"from": case["window_from"].isoformat(), "to": case["window_to"].isoformat()},
        "test_id": case["test_id"],
        "recorded_by": case["recorded_by"],
        "recorded_at": case["recorded_at"].isoformat(),
        "contacts": contacts,
    }


@requires(Role.ADMIN, Role.HEALTH, Role.AUDITOR)
async def get_case(request: web.Request) -> web.Response:
    """A case with its contacts and whether each is suspended now."""
    async with request.app[DB_KEY].connection() as conn:
        case = await visible_case(conn, request)
        return web.json_response(_case_json(case, await contacts_with_state(conn, case)))


def routes() -> list[web.RouteDef]:
    case = CASE_PATH
    return [
        web.post("/api/v1/cases", create_case, name="create_case"),
        web.get(case, get_case, name="case"),
    ]
