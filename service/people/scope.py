"""Which people a caller may read: the one rule every read of a person goes through.

A token or console login limited to a site reads a person only if they are known at
that site: a current declaration for it, or a stay there (what its own door and desk
have seen). Anyone else is answered exactly as someone who does not exist (404
`person_not_found`), so stepping through ids tells a site nothing about other sites.
"""

from __future__ import annotations

import asyncpg

from service.people.records import person_name
from service.platform.errors import ApiError, worded_error


def known_at_site_sql(person: str, site: str) -> str:
    """A SQL condition: `person` (a column or $n) is known at `site` (a column or $n).
    Both are names written in the code, never input."""
    return f"""(EXISTS (SELECT 1 FROM declarations kd
                WHERE kd.person_id = {person} AND kd.site_id = {site}
                  AND kd.superseded_at IS NULL)
        OR EXISTS (SELECT 1 FROM presence kp
                   WHERE kp.person_id = {person} AND kp.site_id = {site}))"""  # noqa: S608


def visible_to_sql(person: str, scope: str) -> str:
    """A SQL condition: `person` is readable by a caller of site `scope` (NULL: every
    site)."""
    return f"({scope}::bigint IS NULL OR {known_at_site_sql(person, scope)})"


KNOWN_AT_SITE_SQL = "SELECT " + known_at_site_sql("$1", "$2")


def person_not_found(person_id: int) -> ApiError:
    return worded_error(
        404,
        "person_not_found",
        f"Không tìm thấy người có mã {person_id}.",
        f"No person with id {person_id}.",
    )


async def known_at_site(conn: asyncpg.Connection, person_id: int, site_id: int) -> bool:
    """A current declaration or a stay at the site."""
    return bool(await conn.fetchval(KNOWN_AT_SITE_SQL, person_id, site_id))


async def is_visible(conn: asyncpg.Connection, person_id: int, scope: int | None) -> bool:
    """True if the person exists and a caller limited to `scope` (None: all) may read them."""
    if await person_name(conn, person_id) is None:
        return False
    return scope is None or await known_at_site(conn, person_id, scope)


async def require_visible(conn: asyncpg.Connection, person_id: int, scope: int | None) -> None:
    """404 person_not_found unless the person exists and is readable within `scope`."""
    if not await is_visible(conn, person_id, scope):
        raise person_not_found(person_id)
