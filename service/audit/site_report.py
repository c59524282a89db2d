"""The daily report of a site: entries, exits, denials by reason and the peak inside,
on the site's own calendar day: `GET /api/v1/sites/{id}/report`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from service.audit.documents import CONTENT_TYPES, attachment, csv_document
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, require_site, requires
from service.web.openapi import documented, q_choice, q_date
from service.web.params import (
    bad_parameter,
    format_param,
    raw_param,
)

logger = logging.getLogger(__name__)

SITE_SQL = "SELECT id, name, timezone FROM sites WHERE id = $1"
REPORT_COUNTS_SQL = """
SELECT
    count(*) FILTER (WHERE kind IN ('scan', 'override', 'id_check') AND decision = 'allow'
                     AND direction = 'in') AS entries,
    count(*) FILTER (WHERE kind IN ('scan', 'override', 'id_check') AND decision = 'allow'
                     AND direction = 'out') AS scanned_exits,
    count(*) FILTER (WHERE kind = 'manual_exit') AS manual_exits,
    count(*) FILTER (WHERE kind = 'scan' AND decision = 'deny') AS denials
FROM events
WHERE chain_id = $1 AND occurred_at >= $2 AND occurred_at < $3
"""
REPORT_DENIALS_SQL = """
SELECT reason, count(*) AS n FROM events
WHERE chain_id = $1 AND kind = 'scan' AND decision = 'deny'
  AND occurred_at >= $2 AND occurred_at < $3
GROUP BY reason ORDER BY n DESC, reason
"""
# The stays of the day as +1 at entry (or at the start of the day, for those already
# inside) and -1 at exit; the running sum is the occupancy. At the same instant exits
# count first, so a person leaving as another enters is not two people.
REPORT_PEAK_SQL = """
WITH stays AS (
    SELECT greatest(entered_at, $2) AS entered_at, exited_at FROM presence
    WHERE site_id = $1 AND entered_at < $3 AND (exited_at IS NULL OR exited_at > $2)
), changes AS (
    SELECT entered_at AS at, 1 AS delta FROM stays
    UNION ALL
    SELECT exited_at, -1 FROM stays WHERE exited_at < $3
), running AS (
    SELECT at, sum(delta) OVER (ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS inside
    FROM changes
)
SELECT inside, at FROM running ORDER BY inside DESC, at LIMIT 1
"""


@dataclass(frozen=True)
class DailyReport:
    site_id: int
    day: date
    timezone: str
    entries: int
    exits: int
    manual_exits: int
    denials: int
    denials_by_reason: dict[str, int]
    peak_occupancy: int
    peak_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["date"] = out.pop("day").isoformat()
        out["peak_at"] = self.peak_at.isoformat() if self.peak_at else None
        return out

    def csv_rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("site_id", self.site_id),
            ("date", self.day.isoformat()),
            ("timezone", self.timezone),
            ("entries", self.entries),
            ("exits", self.exits),
            ("manual_exits", self.manual_exits),
            ("denials", self.denials),
        ]
        rows += [(f"denials:{r}", n) for r, n in self.denials_by_reason.items()]
        rows += [("peak_occupancy", self.peak_occupancy), ("peak_at", self.peak_at)]
        return rows


async def daily_report(conn: asyncpg.Connection, site_id: int, day: date) -> DailyReport:
    site = await conn.fetchrow(SITE_SQL, site_id)
    if site is None:
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
    zone = ZoneInfo(site["timezone"])
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        counts = await conn.fetchrow(REPORT_COUNTS_SQL, site_id, start, end)
        denials = await conn.fetch(REPORT_DENIALS_SQL, site_id, start, end)
        peak = await conn.fetchrow(REPORT_PEAK_SQL, site_id, start, end)
    return DailyReport(
        site_id=site_id,
        day=day,
        timezone=site["timezone"],
        entries=counts["entries"],
        exits=counts["scanned_exits"] + counts["manual_exits"],
        manual_exits=counts["manual_exits"],
        denials=counts["denials"],
        denials_by_reason={r["reason"]: r["n"] for r in denials},
        peak_occupancy=int(peak["inside"]) if peak else 0,
        peak_at=peak["at"].astimezone(zone) if peak else None,
    )


@requires(Role.AUDITOR, Role.ADMIN, Role.HEALTH)
@documented(query={"date": q_date(required=True), "format": q_choice("json", "csv")})
async def site_report(request: web.Request) -> web.Response:
    """Entries, exits, denials by reason and peak occupancy of one day, in site time."""
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    raw = raw_param(request, "date")
    if raw is None:
        raise ApiError(400, "missing_parameter", "The query parameter date is required.")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise bad_parameter("date", "date must be YYYY-MM-DD.") from None
    fmt = format_param(request, ("json", "csv"))
    async with request.app[DB_KEY].connection() as conn:
        report = await daily_report(conn, site_id, day)
    if fmt == "csv":
        return web.Response(
            body=csv_document(("metric", "value"), report.csv_rows()),
            headers={
                "Content-Type": CONTENT_TYPES["csv"],
                "Content-Disposition": attachment(f"site-{site_id}-{day.isoformat()}", "csv"),
            },
        )
    return web.json_response(report.as_json())
