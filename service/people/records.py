"""People who declare: found by normalised phone or national ID, created on first need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from service.platform.errors import ApiError

# NO KEY UPDATE, not UPDATE: it still serialises two declarations of one person, but
# does not block (or deadlock with) check-ins whose foreign keys point at the row.
FIND_PEOPLE_SQL = """
SELECT id, kind, full_name, phone, national_id, organisation, position, risk_level
FROM people WHERE phone = $1 OR national_id = $2
ORDER BY id FOR NO KEY UPDATE
"""
INSERT_PERSON_SQL = """
INSERT INTO people (kind, full_name, phone, national_id, organisation)
VALUES ('visitor', $1, $2, $3, $4)
RETURNING id, kind, full_name, phone, national_id, organisation, position, risk_level
"""
# A visitor's own details follow their latest declaration; staff details belong to the
# admin's import, so a declaration only fills in an identifier the record lacks.
UPDATE_FROM_DECLARATION_SQL = """
UPDATE people SET
    full_name = CASE WHEN kind = 'visitor' THEN $2 ELSE full_name END,
    organisation = CASE WHEN kind = 'visitor' THEN coalesce($5, organisation)
                        ELSE organisation END,
    phone = coalesce(phone, $3),
    national_id = coalesce(national_id, $4),
    updated_at = now()
WHERE id = $1
RETURNING id, kind, full_name, phone, national_id, organisation, position, risk_level
"""


PERSON_NAME_SQL = "SELECT full_name FROM people WHERE id = $1"


async def person_name(conn: asyncpg.Connection, person_id: int) -> str | None:
    """The person's full name; None when there is no such person."""
    name: str | None = await conn.fetchval(PERSON_NAME_SQL, person_id)
    return name


class IdentityConflict(ApiError):
    def __init__(self) -> None:
        super().__init__(
            409,
            "identity_conflict",
            "The phone number and the national ID belong to two different people.",
        )


@dataclass(frozen=True)
class Person:
    id: int
    kind: str
    full_name: str
    phone: str | None
    national_id: str | None
    organisation: str | None
    position: str | None
    risk_level: str | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Person:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})


async def find_people(
    conn: asyncpg.Connection, *, phone: str | None, national_id: str | None
) -> list[Person]:
    """Everyone with this phone or national ID (0, 1 or 2 people; rows locked when in a
    transaction)."""
    if phone is None and national_id is None:
        return []
    return [Person.from_row(r) for r in await conn.fetch(FIND_PEOPLE_SQL, phone, national_id)]


async def find_person(
    conn: asyncpg.Connection, *, phone: str | None, national_id: str | None
) -> Person | None:
    """The one person with this phone or national ID (row locked when in a transaction),
    None if nobody; IdentityConflict if they point to two different people."""
    found = await find_people(conn, phone=phone, national_id=national_id)
    if len(found) > 1:
        raise IdentityConflict()
    return found[0] if found else None


async def update_from_declaration(
    conn: asyncpg.Connection,
    person_id: int,
    *,
    full_name: str,
    phone: str | None,
    national_id: str | None,
    organisation: str | None,
) -> Person:
    """Bring a person's record up to their own declaration (see the SQL for what changes);
    only for a declaration shown to come from them (service.declarations.identity_proof)."""
    row = await conn.fetchrow(
        UPDATE_FROM_DECLARATION_SQL, person_id, full_name, phone, national_id, organisation
    )
    return Person.from_row(row)


async def create_visitor(
    conn: asyncpg.Connection,
    *,
    full_name: str,
    phone: str | None,
    national_id: str | None,
    organisation: str | None,
) -> Person | None:
    """A new visitor; None when a racing declaration took the phone or ID first (the
    caller decides again). Call inside a transaction: this is a savepoint."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                INSERT_PERSON_SQL, full_name, phone, national_id, organisation
            )
    except asyncpg.UniqueViolationError:
        return None
    return Person.from_row(row)


def masked(value: str | None) -> str | None:
    """The last three characters only: enough to tell people apart, not to call them."""
    return None if value is None else "*" * (len(value) - 3) + value[-3:]


def person_json(row: asyncpg.Record | Person, *, masked_ids: bool = False) -> dict[str, Any]:
    """The person as the API shows them; ``masked_ids`` hides the phone and ID number
    (a guard recognises people at the door; it has no need to contact them)."""
    fields = (
        "id",
        "kind",
        "full_name",
        "phone",
        "national_id",
        "organisation",
        "position",
        "risk_level",
    )
    if isinstance(row, Person):
        out = {f: getattr(row, f) for f in fields}
    else:
        out = {f: row[f] for f in fields}
    if masked_ids:
        out["phone"], out["national_id"] = masked(out["phone"]), masked(out["national_id"])
    return out
