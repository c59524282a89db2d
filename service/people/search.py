"""Finding a person from the guard console: by name (accents and case ignored), phone
or national ID, with where they stand at the site (declaration, pass, inside).

Results carry what a guard needs to recognise someone, not what would let them copy
a phone book: the phone shows its last three digits, the national ID not at all.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from service.passes.state import pass_state
from service.people.scope import visible_to_sql
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, requires, site_exists
from service.web.openapi import documented, q_id, q_int, q_text
from service.web.params import bad_parameter, int_param, scoped_site
from service.web.validation import MAX_QUERY_VALUE, query_text

MIN_QUERY = 2
MAX_QUERY = 100
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Digits with the separators people type in a phone number or an ID.
_NUMBER_RE = re.compile(r"\+?\(?[0-9][0-9 .()\-]*")

# $1 the text, $2 a phone prefix (the digits after +84), $3 a national ID prefix, $4 the
# site (NULL: everyone), $5 the limit. The fold is the same expression on the stored
# name and on the text, so "nguyen van a" meets "Nguyễn Văn A". Both cases of each
# accented letter are listed because lower() leaves non-ASCII letters alone under a C
# locale; the combining marks at the end have no counterpart, so translate() deletes
# them (decomposed input). translate() looks each character up from the left, so the
# plain letters come first, mapped to themselves: three times faster on real names.
# Every person's name is folded (no index may hold the fold without a migration): a
# few milliseconds per thousand people. A person matches when every word of the text
# starts a word of the name.
SEARCH_SQL = (
    r"""
WITH fold (src, dst) AS (
    VALUES (' abcdefghijklmnopqrstuvwxyz'
            || 'àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ'
            || 'ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴĐ'
            || U&'\0300\0301\0303\0309\0323\0302\0306\031B',
            ' abcdefghijklmnopqrstuvwxyz'
            || 'aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd'
            || 'aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd')
), needle AS MATERIALIZED (
    SELECT q.phrase,
           -- ' ' || word as a LIKE pattern, its % _ \ escaped: it starts a word of the name
           ARRAY(SELECT '% ' || replace(replace(replace(w, '\', '\\'), '%', '\%'), '_', '\_')
                        || '%'
                 FROM unnest(string_to_array(q.phrase, ' ')) AS w) AS words
    FROM fold f, LATERAL (SELECT translate(lower($1::text), f.src, f.dst) AS phrase) AS q
), folded AS MATERIALIZED (
    SELECT p.id, p.kind, p.full_name, p.organisation, p.phone, p.national_id,
           -- A number is a phone or an ID, never a name: no fold to pay for.
           CASE WHEN $2::text IS NULL AND $3::text IS NULL
                THEN translate(lower(p.full_name), f.src, f.dst) END AS name
    FROM people p, fold f
), scored AS (
    SELECT c.*,
           coalesce((' ' || c.name) LIKE ALL (n.words), false) AS name_hit,
           coalesce(starts_with(substr(c.phone, 4), $2::text), false) AS phone_hit,
           coalesce(starts_with(c.national_id, $3::text), false) AS id_hit,
           CASE WHEN c.national_id = $3::text OR c.phone = ('+84' || $2::text) THEN 0
                WHEN c.name = n.phrase THEN 1
                WHEN starts_with(c.name, n.phrase) THEN 2
                ELSE 3 END AS rank
    FROM folded c, needle n
), hits AS (
    SELECT * FROM scored s
    WHERE (s.name_hit OR s.phone_hit OR s.id_hit)
      AND """  # noqa: S608
    + visible_to_sql("s.id", "$4")
    + r"""
    ORDER BY s.rank, s.name, s.id
    LIMIT $5
)
SELECT h.id, h.full_name, h.kind, h.organisation,
       CASE WHEN h.phone IS NOT NULL THEN '*******' || right(h.phone, 3) END AS phone_masked,
       h.name_hit, h.phone_hit, h.id_hit,
       d.id AS declaration_id, d.status AS declaration_status, d.valid_until,
       ps.id AS pass_id, ps.not_before, ps.not_after, ps.revoked_at, ps.revoked_reason,
       CASE WHEN $4::bigint IS NOT NULL THEN EXISTS (
           SELECT 1 FROM presence pr
           WHERE pr.person_id = h.id AND pr.site_id = $4 AND pr.exited_at IS NULL)
       END AS inside
FROM hits h
LEFT JOIN declarations d
       ON d.person_id = h.id AND d.site_id = $4 AND d.superseded_at IS NULL
LEFT JOIN LATERAL (
    SELECT p.id, p.not_before, p.not_after, p.revoked_at, p.revoked_reason FROM passes p
    WHERE p.person_id = h.id AND p.declaration_id = d.id
    ORDER BY p.issued_at DESC LIMIT 1
) ps ON true
ORDER BY h.rank, h.name, h.id
"""
)


def query_param(request: web.Request) -> str:
    """The search text under the text rules (NFC, whitespace collapsed); 400 when absent,
    too short or too long."""
    text = query_text(request, "q", max_length=MAX_QUERY_VALUE)
    if text is None:
        raise ApiError(400, "missing_parameter", "The query parameter q is required.")
    if not MIN_QUERY <= len(text) <= MAX_QUERY:
        raise bad_parameter("q", f"q must be {MIN_QUERY} to {MAX_QUERY} characters.")
    return text


def number_prefixes(text: str) -> tuple[str | None, str | None]:
    """(phone, national ID) prefixes to look for when the text is a number.

    Phones are stored as +84 and nine digits; the phone prefix is what follows +84,
    from 0912..., +84912... or 84912345678 alike. A +-number is only ever a phone."""
    if not _NUMBER_RE.fullmatch(text):
        return None, None
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return (digits[2:] or None) if digits.startswith("84") else None, None
    if digits.startswith("0"):
        local = digits[1:]
    elif digits.startswith("84") and len(digits) == 11:
        local = digits[2:]
    else:
        local = digits
    return local or None, digits


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def declaration_json(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    if row["declaration_id"] is None:
        return {"status": "none", "id": None, "valid_until": None}
    expired = row["valid_until"] <= now
    return {
        "status": "expired" if expired else row["declaration_status"],
        "id": row["declaration_id"],
        "valid_until": _iso(row["valid_until"]),
    }


def pass_json(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    if row["pass_id"] is None:
        return {"status": "none", "id": None, "not_after": None, "revoked_reason": None}
    return {
        "status": pass_state(row, now),
        "id": str(row["pass_id"]),
        "not_after": _iso(row["not_after"]),
        "revoked_reason": row["revoked_reason"],
    }


def result_json(row: asyncpg.Record, *, site_id: int | None, now: datetime) -> dict[str, Any]:
    matched = [
        name
        for name, hit in (("name", "name_hit"), ("phone", "phone_hit"), ("national_id", "id_hit"))
        if row[hit]
    ]
    at_site = site_id is not None
    return {
        "id": row["id"],
        "full_name": row["full_name"],
        "kind": row["kind"],
        "organisation": row["organisation"],
        "phone_masked": row["phone_masked"],
        "matched": matched,
        "declaration": declaration_json(row, now) if at_site else None,
        "pass": pass_json(row, now) if at_site else None,
        "inside": row["inside"],
    }


async def search_people(
    conn: asyncpg.Connection, text: str, *, site_id: int | None, limit: int
) -> list[asyncpg.Record]:
    """Up to `limit` + 1 people, best match first (one more tells there are more)."""
    phone, national_id = number_prefixes(text)
    rows: list[asyncpg.Record] = await conn.fetch(
        SEARCH_SQL, text, phone, national_id, site_id, limit + 1
    )
    return rows


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.HEALTH)
@documented(
    query={
        "q": q_text(MAX_QUERY, min_length=MIN_QUERY, required=True),
        "site_id": q_id(),
        "limit": q_int(1, MAX_LIMIT),
    }
)
async def people_search(request: web.Request) -> web.Response:
    """Find people by name, phone or national ID, with their status at the site."""
    text = query_param(request)
    limit = int_param(request, "limit", maximum=MAX_LIMIT) or DEFAULT_LIMIT
    site_id = scoped_site(request, int_param(request, "site_id"))
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn:
        if site_id is not None and not await site_exists(conn, site_id):
            raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
        rows = await search_people(conn, text, site_id=site_id, limit=limit)
    return web.json_response(
        {
            "q": text,
            "site_id": site_id,
            "limit": limit,
            "truncated": len(rows) > limit,
            "people": [result_json(r, site_id=site_id, now=now) for r in rows[:limit]],
        }
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/people", people_search, name="people_search")]
