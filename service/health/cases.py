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
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from service.audit.trace import Contact, TraceQuery, fetch_contacts, trace
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
from service.web.openapi import documented, q_choice
from service.web.text import Text
from service.web.validation import read_model

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


class SuspendIn(BaseModel):
    """Which of the case's contacts to suspend: some by id, or all of them."""

    # Exactly one of the two, stated for the OpenAPI document too.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["person_ids"], "properties": {"person_ids": {"type": "array"}}},
                {"required": ["all"], "properties": {"all": {"const": True}}},
            ]
        },
    )

    person_ids: Annotated[list[Id], Field(min_length=1, max_length=10_000)] | None = None
    all: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SuspendIn:
        if (self.person_ids is None) == (self.all is None):
            raise PydanticCustomError("person_ids_or_all", "give either person_ids or all: true")
        return self


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


async def _site(conn: asyncpg.Connection, site_id: int) -> tuple[ZoneInfo, SiteRules]:
    row = await conn.fetchrow(SITE_SQL, site_id)
    return ZoneInfo(row["timezone"]), SiteRules.model_validate(row["declaration_rules"])


async def _contacts_json(
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
    zone, rules = await _site(conn, site_id)
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
    contacts = await _contacts_json(conn, traced.contacts)
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


async def second_degree(
    conn: asyncpg.Connection, case: asyncpg.Record, *, now: datetime
) -> list[dict[str, Any]]:
    """F2: who overlapped with a contact after the contact's first overlap with the
    case, at the case's site (one trace per contact; the case and F1 left out)."""
    first = {
        c["person_id"]: datetime.fromisoformat(c["first_overlap_at"]) for c in case["contacts"]
    }
    known = set(first) | {case["person_id"]}
    found: dict[int, tuple[Contact, list[int]]] = {}
    for f1, since in first.items():
        if since >= now:
            continue
        query = TraceQuery(f1, since, now, now, site_id=case["site_id"])
        for c in await fetch_contacts(conn, query):
            if c.person_id in known:
                continue
            best, via = found.get(c.person_id, (c, []))
            found[c.person_id] = (best if best.overlap_minutes >= c.overlap_minutes else c, via)
            via.append(f1)
    ordered = sorted(found.values(), key=lambda f: (-f[0].overlap_minutes, f[0].person_id))
    out = []
    for contact, via in ordered:
        (row,) = await _contacts_json(conn, [contact], depth=2, via=sorted(via))
        out.append(row)
    return out


@requires(Role.ADMIN, Role.HEALTH, Role.AUDITOR)
@documented(query={"depth": q_choice("1", "2")})
async def case_contacts(request: web.Request) -> web.Response:
    """The case's contacts (depth 1), or its contacts' contacts too (depth=2)."""
    depth = request.query.get("depth", "1")
    if depth not in ("1", "2") or set(request.query) - {"depth"}:
        raise ApiError(
            422,
            "validation_failed",
            "Some fields are invalid.",
            fields=[field_error("depth", "literal_error", {"expected": "1, 2"})],
        )
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        case = await visible_case(conn, request)
        contacts = [c | {"depth": 1} for c in await contacts_with_state(conn, case)]
        if depth == "2":
            f2 = await second_degree(conn, case, now=now)
            await append_event(
                conn,
                NewEvent(
                    kind="trace",
                    actor=principal(request).actor,
                    occurred_at=now,
                    site_id=case["site_id"],
                    person_id=case["person_id"],
                    detail={"case_id": case["id"], "depth": 2, "contacts": len(f2)},
                ),
            )
            contacts += f2
    return web.json_response({"case_id": case["id"], "contacts": contacts})


@requires(Role.ADMIN, Role.HEALTH)
@documented(body=SuspendIn)
async def suspend_contacts(request: web.Request) -> web.Response:
    """Suspend some or all of a case's contacts (contact_traced)."""
    body = await read_model(request, SuspendIn)
    caller = principal(request)
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        case = await visible_case(conn, request)
        listed = {c["person_id"]: c for c in case["contacts"]}
        wanted = list(listed) if body.all else list(dict.fromkeys(body.person_ids or []))
        if strangers := [p for p in wanted if p not in listed]:
            raise ApiError(
                409,
                "not_a_contact",
                f"Not contacts of case {case['id']}: {strangers}.",
                person_ids=strangers,
            )
        _, rules = await _site(conn, case["site_id"])
        quarantine = timedelta(days=rules.quarantine_days)
        holds = []
        for person_id in wanted:
            exposed = datetime.fromisoformat(listed[person_id]["last_overlap_at"])
            holds.append(Hold(person_id, exposed_at=exposed, clear_after=exposed + quarantine))
        rows = await suspend(
            conn,
            site_id=case["site_id"],
            cause="contact_traced",
            holds=holds,
            actor=caller.actor,
            now=now,
            case_id=case["id"],
        )
    request.app[FANOUT_KEY].changed([case["site_id"]])  # the kiosks' offline copies
    new = {r["person_id"] for r in rows}
    return web.json_response(
        {
            "case_id": case["id"],
            "suspended": [
                {
                    "person_id": r["person_id"],
                    "name": r["full_name"],
                    "clear_after": r["clear_after"].isoformat(),
                }
                for r in rows
            ],
            "already_suspended": [p for p in wanted if p not in new],
        }
    )


def routes() -> list[web.RouteDef]:
    case = r"/api/v1/cases/{case_id:\d{1,18}}"
    return [
        web.post("/api/v1/cases", create_case, name="create_case"),
        web.get(case, get_case, name="case"),
        web.get(case + "/contacts", case_contacts, name="case_contacts"),
        web.post(case + "/contacts/suspend", suspend_contacts, name="suspend_contacts"),
    ]
