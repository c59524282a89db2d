"""Official test results (recorded by a health officer), and what each one sets off.

In the transaction that records a result: a negative clears the contact suspensions
it satisfies (service.health.suspensions); a positive records a case (onset: the
day the test was taken, site time) at the site the caller acts for, or, for a caller
of every site, at each site where the person is known, so the person is suspended and
traced there at once. The declaration rules judge a person's latest official result
instead of the one they declare, when it is at least as recent (service.declarations.official_rank).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from service.declarations.filing import SITE_SQL
from service.events.fanout import FANOUT_KEY
from service.events.log import NO_SITE_CHAIN, NewEvent, append_event
from service.health.cases import case_sites, record_case
from service.health.suspensions import (
    Id,
    clear_by_test,
    person_suspensions,
    row_json,
)
from service.people.records import person_name
from service.people.scope import is_visible
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, requires
from service.web.openapi import documented
from service.web.text import Text
from service.web.validation import read_model

CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=60)

INSERT_TEST_SQL = """
INSERT INTO official_tests (person_id, kind, taken_at, result, source, recorded_by, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, person_id, kind, taken_at, result, source, recorded_by, recorded_at
"""
LIST_TESTS_SQL = """
SELECT id, person_id, kind, taken_at, result, source, recorded_by, recorded_at
FROM official_tests WHERE person_id = $1 ORDER BY taken_at DESC, id DESC LIMIT 200
"""
# Declarations of the person (at site $2; NULL: every site) that contradicted an
# official record (service.declarations.official_rank).
MISMATCHES_SQL = """
SELECT count(*) FROM declarations  -- declarations_mismatch_idx
WHERE person_id = $1 AND ($2::bigint IS NULL OR site_id = $2)
  AND reasons @> '[{"code": "declaration_mismatch"}]'
"""


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: Id
    kind: Literal["pcr", "rapid"]
    taken_at: AwareDatetime
    result: Literal["negative", "positive"]
    source: Annotated[str, Text(200)]
    site_id: Id | None = None  # where a positive opens its case; default: see the module

    @field_validator("taken_at")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        now = datetime.now(UTC)
        if value > now + CLOCK_SKEW:
            raise PydanticCustomError("date_in_future", "taken_at is in the future")
        if value < now - MAX_AGE:
            raise PydanticCustomError("date_too_old", "taken_at is too old", {"days": MAX_AGE.days})
        return value

    @field_validator("source")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "This field is blank")
        return value.strip()


async def record_test(
    conn: asyncpg.Connection, body: TestIn, *, sites: list[int], actor: str, now: datetime
) -> dict[str, Any]:
    """Record a result and act on it (in the caller's transaction)."""
    row = await conn.fetchrow(
        INSERT_TEST_SQL,
        body.person_id,
        body.kind,
        body.taken_at,
        body.result,
        body.source,
        actor,
        now,
    )
    name = await person_name(conn, body.person_id)
    await append_event(
        conn,
        NewEvent(
            kind="official_test",
            actor=actor,
            occurred_at=now,
            site_id=sites[0] if len(sites) == 1 else None,
            person_id=body.person_id,
            detail={"test_id": row["id"], "name": name} | row_json(row),
        ),
    )
    out: dict[str, Any] = row_json(row) | {"cleared": [], "cases": []}
    if body.result == "negative":
        cleared = await clear_by_test(
            conn,
            person_id=body.person_id,
            taken_at=body.taken_at,
            test_id=row["id"],
            actor=actor,
            now=now,
        )
        out["cleared"] = [{"site_id": r["site_id"], "case_id": r["case_id"]} for r in cleared]
    elif not sites:
        out["no_case"] = "The person is known at no site: no case was recorded."
    else:
        for site_id in sites:
            zone = ZoneInfo((await conn.fetchrow(SITE_SQL, site_id))["timezone"])
            case = await record_case(
                conn,
                person_id=body.person_id,
                site_id=site_id,
                onset_on=body.taken_at.astimezone(zone).date(),
                note=f"official positive test {row['id']} ({body.source})",
                actor=actor,
                now=now,
                test_id=row["id"],
            )
            out["cases"].append(case.as_json())
    return out


@requires(Role.ADMIN, Role.HEALTH)
@documented(body=TestIn)
async def create_test(request: web.Request) -> web.Response:
    """Record an official test result; a positive opens a case at once."""
    body = await read_model(request, TestIn)
    caller = principal(request)
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        sites = await case_sites(conn, caller, body.person_id, body.site_id)
        if caller.site_id is not None and not sites:
            raise ApiError(404, "person_not_found", f"No person {body.person_id} known here.")
        out = await record_test(conn, body, sites=sites, actor=caller.actor, now=now)
        out["suspensions"] = await person_suspensions(conn, body.person_id, caller.site_id)
    # Suspended (a case) or cleared: the kiosks' offline copies hear of it now.
    touched = {*sites, *(c["site_id"] or NO_SITE_CHAIN for c in out["cleared"])}
    request.app[FANOUT_KEY].changed(touched)
    return web.json_response(out, status=201)


@requires(Role.ADMIN, Role.HEALTH, Role.AUDITOR)
async def list_tests(request: web.Request) -> web.Response:
    """A person's official test results, newest first, their active suspensions and how
    many of their declarations contradicted the official record (`mismatches`)."""
    person_id = int(request.match_info["person_id"])
    caller = principal(request)
    async with request.app[DB_KEY].connection() as conn:
        if not await is_visible(conn, person_id, caller.site_id):
            raise ApiError(404, "person_not_found", f"No person {person_id} known here.")
        rows = await conn.fetch(LIST_TESTS_SQL, person_id)
        held = await person_suspensions(conn, person_id, caller.site_id)
        mismatches = await conn.fetchval(MISMATCHES_SQL, person_id, caller.site_id)
    return web.json_response(
        {
            "person_id": person_id,
            "tests": [row_json(r) for r in rows],
            "suspensions": held,
            "mismatches": mismatches,
        }
    )


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/tests", create_test, name="create_test"),
        web.get(r"/api/v1/people/{person_id:\d{1,18}}/tests", list_tests, name="person_tests"),
    ]
