"""A site's day in 15-minute buckets of its own time: who came in, who left, and how
many were inside at the end of each bucket (the console's occupancy chart)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, require_site, requires
from service.web.openapi import documented, q_date
from service.web.params import bad_parameter

BUCKET_MINUTES = 15
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

# The day runs from local midnight to the next; buckets step in elapsed time, so a day
# with a DST change has 92 or 100 of them and none is skipped or counted twice. A stay
# is an entry in the bucket where entered_at falls and an exit where exited_at falls;
# those still inside at midnight start the running sum, so stays open across midnight
# (or still open) count. Buckets that have not started yet (now() is the database's)
# have no inside. $2 NULL: today in the site's zone. No row: no such site.
OCCUPANCY_SQL = """
WITH site AS (
    SELECT s.id, s.timezone, s.capacity,
           coalesce($2::date, (now() AT TIME ZONE s.timezone)::date) AS day
    FROM sites s WHERE s.id = $1
), day AS (
    SELECT site.*, site.day::timestamp AT TIME ZONE site.timezone AS day_start,
           (site.day + 1)::timestamp AT TIME ZONE site.timezone AS day_end
    FROM site
), stays AS (
    SELECT pr.entered_at, pr.exited_at
    FROM presence pr, day
    WHERE pr.site_id = day.id AND pr.entered_at < day.day_end
      AND (pr.exited_at IS NULL OR pr.exited_at >= day.day_start)
), at_start AS (
    SELECT count(*) AS inside FROM stays, day WHERE stays.entered_at < day.day_start
), buckets AS (
    SELECT g.start, (extract(epoch FROM g.start - day.day_start) / 900)::int AS n
    FROM day, generate_series(day.day_start, day.day_end - interval '15 minutes',
                              interval '15 minutes') AS g (start)
), entries AS (
    SELECT floor(extract(epoch FROM stays.entered_at - day.day_start) / 900)::int AS n,
           count(*) AS entries
    FROM stays, day WHERE stays.entered_at >= day.day_start GROUP BY 1
), exits AS (
    SELECT floor(extract(epoch FROM stays.exited_at - day.day_start) / 900)::int AS n,
           count(*) AS exits
    FROM stays, day WHERE stays.exited_at < day.day_end GROUP BY 1
)
SELECT day.id, day.timezone, day.capacity, day.day, at_start.inside AS inside_at_start,
       b.start, coalesce(e.entries, 0) AS entries, coalesce(x.exits, 0) AS exits,
       CASE WHEN b.start <= now() THEN
           (at_start.inside + sum(coalesce(e.entries, 0) - coalesce(x.exits, 0))
                                  OVER (ORDER BY b.n ROWS UNBOUNDED PRECEDING))::int
       END AS inside
FROM day CROSS JOIN at_start CROSS JOIN buckets b
LEFT JOIN entries e ON e.n = b.n
LEFT JOIN exits x ON x.n = b.n
ORDER BY b.n
"""


def date_param(request: web.Request) -> date | None:
    raw = request.query.get("date")
    if raw is None or raw == "":
        return None
    try:
        if not _DATE_RE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise bad_parameter("date", "date must be YYYY-MM-DD.") from None


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR)
@documented(query={"date": q_date()})
async def site_occupancy(request: web.Request) -> web.Response:
    """A day at a site in 15-minute buckets of site time: entries, exits, inside."""
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    day = date_param(request)
    async with request.app[DB_KEY].connection() as conn:
        rows = await conn.fetch(OCCUPANCY_SQL, site_id, day)
    if not rows:
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
    first = rows[0]
    zone = ZoneInfo(first["timezone"])
    buckets: list[dict[str, Any]] = [
        {
            "start": r["start"].astimezone(zone).isoformat(),
            "entries": r["entries"],
            "exits": r["exits"],
            "inside": r["inside"],
        }
        for r in rows
    ]
    return web.json_response(
        {
            "site_id": site_id,
            "date": first["day"].isoformat(),
            "timezone": first["timezone"],
            "capacity": first["capacity"],
            "bucket_minutes": BUCKET_MINUTES,
            "inside_at_start": first["inside_at_start"],
            "buckets": buckets,
        }
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get(
            r"/api/v1/sites/{site_id:\d{1,18}}/occupancy", site_occupancy, name="site_occupancy"
        )
    ]
