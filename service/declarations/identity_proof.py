"""Whom a declaration is for: an existing person only with proof that it comes from them.

A phone number, a national ID and a name are all things other people know, so none of
them proves who is declaring (issue 16.2). The rule, applied in the declaration's
transaction with the matching people's rows locked:

1. **Proven**: the declaration carries a re-declare key (the secret behind the "Khai
   báo lại / Declare again" link of an earlier result page) that belongs to a current
   declaration of person P, and its phone and ID point at nobody but P. It is filed as
   P: P's record follows it (a visitor's name and organisation; missing identifiers
   filled in), P's current declaration at the site is superseded.
2. **New**: the phone and ID point at nobody and it is a visitor's: a new person.
3. **Same person, nothing active**: the phone and ID point at one person P whose phone,
   national ID and name (compared ignoring case, spacing and diacritics) are exactly
   those declared, who holds no valid pass at any site and has no declaration waiting
   for review at this site. It is filed as P without changing P's record: a returning
   visitor who lost the link, or staff declaring for the day as on the roster. Someone
   who knows all three could still do it, but only when P has nothing to lose; it
   supersedes nothing active. A staff declaration must match a staff record this way.
4. **Otherwise a claim**: kept with no person, waiting for review. It renames no one,
   supersedes nothing, gets no pass and makes no one "known at" the site. An officer
   who has checked the declarer's papers approves it (then it is filed as in 1).

What the declarer is told never says which identifier is on file: a claim answers like
any declaration (201, the same fields, a re-declare key); its health reasons are the
same as a new person's, and a claim the health rules would clear goes to review with
the reason ``identity_check``, worded the same whatever matched (one phone, one ID, both,
or two different people).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.declarations.model import Declaration
from service.declarations.policy import area_key
from service.people.records import Person, create_visitor, find_people, update_from_declaration
from service.platform.errors import ApiError
from service.web.auth import hash_token

# The declaration a key belongs to must still be current (a newer one replaces the key).
KEY_HOLDER_SQL = """
SELECT person_id FROM declarations
WHERE redeclare_key_hash = $1 AND superseded_at IS NULL AND person_id IS NOT NULL
"""
LOCK_PERSON_SQL = """
SELECT id, kind, full_name, phone, national_id, organisation, position, risk_level
FROM people WHERE id = $1 FOR NO KEY UPDATE
"""
# What a declaration without proof must not replace: a valid pass anywhere, or a
# declaration at the site still waiting for an officer.
HOLDS_ACTIVE_SQL = """
SELECT EXISTS (SELECT 1 FROM passes
               WHERE person_id = $1 AND revoked_at IS NULL AND not_after > $2)
    OR EXISTS (SELECT 1 FROM declarations
               WHERE person_id = $1 AND site_id = $3 AND superseded_at IS NULL
                 AND status = 'review' AND valid_until > $2)
"""
MAX_KEY_CHARS = 100


@dataclass(frozen=True)
class Filer:
    """Whom a declaration is filed for; ``person`` None means a claim (see above)."""

    person: Person | None
    refused_staff: bool = False  # proven, but the person is not on the staff list


def new_redeclare_key() -> tuple[str, bytes]:
    """A fresh re-declare key (shown once) and the hash that is stored."""
    key = secrets.token_urlsafe(32)
    return key, hash_token(key)


def same_name(a: str, b: str) -> bool:
    """Names compared as people type them: case, spacing and diacritics do not count."""
    return area_key(a) == area_key(b)


def identical(decl: Declaration, person: Person) -> bool:
    return (
        decl.phone == person.phone
        and decl.national_id == person.national_id
        and same_name(decl.full_name, person.full_name)
    )


async def key_holder(conn: asyncpg.Connection, key: str | None) -> int | None:
    """The person a re-declare key proves, or None (no key, or not a current one)."""
    if key is None or len(key) > MAX_KEY_CHARS or not key.isascii():
        return None  # not one we made (and a lone surrogate would not even hash)
    person_id = await conn.fetchval(KEY_HOLDER_SQL, hash_token(key))
    return None if person_id is None else int(person_id)


async def _update(conn: asyncpg.Connection, person_id: int, decl: Declaration) -> Person:
    return await update_from_declaration(
        conn,
        person_id,
        full_name=decl.full_name,
        phone=decl.phone,
        national_id=decl.national_id,
        organisation=decl.organisation,
    )


async def resolve_filer(conn: asyncpg.Connection, decl: Declaration, *, now: datetime) -> Filer:
    """Apply the rule above; call inside the declaration's transaction."""
    holder = await key_holder(conn, decl.redeclare_key)
    for _ in range(3):
        matched = await find_people(conn, phone=decl.phone, national_id=decl.national_id)
        if holder is not None and all(p.id == holder for p in matched):
            row = await conn.fetchrow(LOCK_PERSON_SQL, holder)
            # Asked again with the row locked: a racing use of the same key has spent it.
            if row is None or await key_holder(conn, decl.redeclare_key) != holder:
                holder = None
                continue
            if decl.kind == "staff" and row["kind"] != "staff":
                return Filer(None, refused_staff=True)
            return Filer(await _update(conn, holder, decl))
        if not matched:
            if decl.kind != "visitor":
                return Filer(None)
            created = await create_visitor(
                conn,
                full_name=decl.full_name,
                phone=decl.phone,
                national_id=decl.national_id,
                organisation=decl.organisation,
            )
            if created is None:
                continue  # a racing first declaration took the phone or ID: decide again
            return Filer(created)
        # Asked whenever someone matched, so a claim costs what a filing does up to here.
        active = await conn.fetchval(HOLDS_ACTIVE_SQL, matched[0].id, now, decl.site_id)
        only = matched[0] if len(matched) == 1 else None
        if (
            only is not None
            and identical(decl, only)
            and (decl.kind == "visitor" or only.kind == "staff")
            and not active
        ):
            return Filer(only)
        return Filer(None)
    raise ApiError(409, "conflict", "Someone else is declaring for this person; try again.")


async def confirm_claim(conn: asyncpg.Connection, decl: Declaration) -> Person:
    """The person an officer confirms a claim for, having checked the declarer's papers:
    the one the phone and ID point at (their record then follows the declaration), or a
    new visitor. 409 when the officer must first sort the records out."""
    matched = await find_people(conn, phone=decl.phone, national_id=decl.national_id)
    if len(matched) > 1:
        raise ApiError(
            409,
            "identity_conflict",
            "The phone number and the national ID belong to two different people.",
        )
    if matched:
        if decl.kind == "staff" and matched[0].kind != "staff":
            raise ApiError(409, "not_staff", "The declarer is not on the staff list.")
        return await _update(conn, matched[0].id, decl)
    if decl.kind == "staff":
        raise ApiError(409, "not_staff", "The declarer is not on the staff list.")
    created = await create_visitor(
        conn,
        full_name=decl.full_name,
        phone=decl.phone,
        national_id=decl.national_id,
        organisation=decl.organisation,
    )
    if created is None:
        raise ApiError(409, "conflict", "Someone else is declaring for this person; try again.")
    return created
