"""An official test result outranks the person's own word: the declaration rules judge
the latest official result in place of the declared test when it is at least as
recent (a person cannot declare a negative over an official positive). Where the site
requires official results, a declared test counts only when it is a positive (a
person's own word suffices against them): the cadence is met by official results.

A declaration that contradicts the official record goes to review (reason
`declaration_mismatch`, khai báo không trung thực): a declared negative while the
person's latest official result is a positive taken in the last 14 days, or, where the
site requires official results, a declared test on a day with no official record."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from service.declarations.model import DECLARATION_TZ, Declaration, LastTest

LATEST_TEST_SQL = """
SELECT kind, result, taken_at FROM official_tests WHERE person_id = $1
ORDER BY taken_at DESC, id DESC LIMIT 1
"""
_DECLARED_KIND = {"pcr": "pcr", "rapid": "rapid_antigen"}
POSITIVE_WINDOW = timedelta(days=14)  # as the declaration's own questions look back
# $1 person, $2 the declared test's day in time zone $4, $3 the declaration's time.
RECORD_ON_DAY_SQL = """
SELECT EXISTS (SELECT 1 FROM official_tests WHERE person_id = $1  -- official_tests_person_idx
               AND (taken_at AT TIME ZONE $4)::date = $2 AND taken_at <= $3)
"""


def _taken(test: LastTest) -> datetime | None:
    return test.taken_at if isinstance(test.taken_at, datetime) else None


async def judged_declaration(
    conn: asyncpg.Connection, person_id: int | None, declared: Declaration, *, official_only: bool
) -> Declaration:
    """The declaration as the rules should judge it (what is stored stays as declared).
    A claim (no person yet) has no official record of its own."""
    row = await conn.fetchrow(LATEST_TEST_SQL, person_id) if person_id is not None else None
    mine = declared.last_test
    if official_only and mine is not None and mine.result != "positive":
        declared, mine = declared.model_copy(update={"last_test": None}), None
    if row is None:
        return declared
    if mine is not None:
        # A declared day (no time): the official record taken that day or later wins.
        taken = _taken(mine)
        if taken is not None and taken > row["taken_at"]:
            return declared
        official_day = row["taken_at"].astimezone(DECLARATION_TZ).date()
        if taken is None and mine.taken_on(DECLARATION_TZ) > official_day:
            return declared
    official = LastTest.model_construct(
        kind=_DECLARED_KIND[row["kind"]], result=row["result"], taken_at=row["taken_at"]
    )
    return declared.model_copy(update={"last_test": official})


async def contradicts_official(
    conn: asyncpg.Connection,
    person_id: int | None,
    declared: Declaration,
    *,
    official_only: bool,
    now: datetime,
) -> bool:
    """Whether the declared test contradicts the person's official record (module doc)."""
    mine = declared.last_test
    if person_id is None or mine is None:
        return False
    if mine.result == "negative":
        row = await conn.fetchrow(LATEST_TEST_SQL, person_id)
        if (
            row is not None
            and row["result"] == "positive"
            and row["taken_at"] > now - POSITIVE_WINDOW
        ):
            return True
    if official_only:
        day = mine.taken_on(DECLARATION_TZ)
        return not await conn.fetchval(RECORD_ON_DAY_SQL, person_id, day, now, DECLARATION_TZ.key)
    return False
