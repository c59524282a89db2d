"""Re-screening (rà soát) when an area is flagged or its period widened.

In the transaction that flags the area, one statement finds every current, unexpired
declaration of the site whose travel touches the area in its window (the areas of the
14 days up to the day it was filed, as service.declarations.policy reads them, matched by the same
area key in SQL) and, when the site's rules send such travel to review or reject,
suspends the person (area_flagged, with the area's id) unless the declaration was
rejected anyway. Set-based: no row passes through Python but the new suspensions'
events. Removing a flag lifts nothing: the officer clears them in one action
(POST /api/v1/sites/{id}/suspensions/clear).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.declarations.filing import SITE_SQL
from service.declarations.policy import TRAVEL_WINDOW_DAYS, SiteRules, area_key
from service.health.suspensions import record_suspended

# $1 site, $2 area keys, $3 flagged from, $4 flagged until (NULL: open), $5 now,
# $6 the site's time zone, $7 suspend (the rules' action is review or reject),
# $8 area id, $9 actor, $10 the days of travel a declaration covers.
RESCREEN_SQL = """
WITH touched AS (
    SELECT d.id, d.person_id, d.status
    FROM declarations d
    WHERE d.site_id = $1 AND d.superseded_at IS NULL AND d.valid_until > $5
      AND travel_area_keys(d.answers) && $2::text[]  -- declarations_travel_keys_idx
      AND $3::date <= (d.submitted_at AT TIME ZONE $6)::date
      AND ($4::date IS NULL
           OR $4::date >= (d.submitted_at AT TIME ZONE $6)::date - $10::integer)
), held AS (
    INSERT INTO suspensions AS s (person_id, site_id, cause, area_id, declaration_id,
                                  created_by, created_at)
    SELECT t.person_id, $1, 'area_flagged', $8, t.id, $9, $5
    FROM touched t WHERE $7 AND t.status <> 'rejected'
    ON CONFLICT (person_id, site_id, cause, (coalesce(case_id, 0)), (coalesce(area_id, 0)))
       WHERE cleared_at IS NULL DO NOTHING
    RETURNING s.id
)
SELECT (SELECT count(*) FROM touched) AS rescreened,
       (SELECT coalesce(array_agg(id), '{}') FROM held) AS held
"""
HELD_SQL = """
SELECT s.id, s.person_id, s.site_id, s.cause, s.case_id, s.area_id, s.clear_after, p.full_name
FROM suspensions s JOIN people p ON p.id = s.person_id
WHERE s.id = ANY ($1::bigint[]) ORDER BY s.id
"""


@dataclass(frozen=True)
class Rescreen:
    rescreened: int
    suspended: int

    def as_json(self) -> dict[str, int]:
        return {"rescreened": self.rescreened, "suspended": self.suspended}


async def rescreen(
    conn: asyncpg.Connection, area: asyncpg.Record, *, actor: str, now: datetime
) -> Rescreen:
    """Re-screen the site's current declarations against a flagged area (in the
    caller's transaction)."""
    site = await conn.fetchrow(SITE_SQL, area["site_id"])
    rules = SiteRules.model_validate(site["declaration_rules"])
    keys = sorted({area_key(area["name"])} | ({area_key(area["code"])} if area["code"] else set()))
    row = await conn.fetchrow(
        RESCREEN_SQL,
        area["site_id"],
        keys,
        area["flagged_from"],
        area["flagged_until"],
        now,
        site["timezone"],
        rules.actions.travel_flagged_area != "allow",
        area["id"],
        actor,
        TRAVEL_WINDOW_DAYS,
    )
    held = await conn.fetch(HELD_SQL, row["held"]) if row["held"] else []
    await record_suspended(conn, held, actor, now)
    return Rescreen(int(row["rescreened"]), len(held))
