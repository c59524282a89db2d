"""A case's contacts: listed (F1, and on request F2, their own contacts since their
first overlap with the case), and suspended by the officer (contact_traced)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from service.audit.trace import Contact, TraceQuery, fetch_contacts
from service.events.fanout import FANOUT_KEY
from service.events.log import NewEvent, append_event
from service.health.cases import (
    CASE_PATH,
    contacts_json,
    contacts_with_state,
    site_rules,
    visible_case,
)
from service.health.suspensions import Hold, Id, suspend
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, requires
from service.web.field_errors import field_error
from service.web.openapi import documented, q_choice
from service.web.validation import read_model


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
        (row,) = await contacts_json(conn, [contact], depth=2, via=sorted(via))
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
        _, rules = await site_rules(conn, case["site_id"])
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
    return [
        web.get(CASE_PATH + "/contacts", case_contacts, name="case_contacts"),
        web.post(CASE_PATH + "/contacts/suspend", suspend_contacts, name="suspend_contacts"),
    ]
