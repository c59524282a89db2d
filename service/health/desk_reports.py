"""The health desk's site views for the health authority (chế độ báo cáo): tests due
today by cadence (service.health.tests_due), and the daily site report: entries and
denials by reason (service.audit's daily report), suspensions by cause, cases
recorded, tests due and done, and the review queue's age; each as JSON and as a
printable page (service.health.pages). A site-bound caller sees its own site only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from service.audit.site_report import daily_report
from service.health import pages
from service.health.pages import Lang, t
from service.health.tests_due import Group, TestsDue, site_day, site_row, tests_due
from service.platform.db import DB_KEY
from service.platform.errors import ApiError, worded_error
from service.web.auth import Role, require_site, requires
from service.web.openapi import Q_LANG, documented
from service.web.validation import validate

# $1 site, $2 start of the day, $3 its end.
SUSPENSIONS_SQL = """
SELECT cause,
       count(*) FILTER (WHERE created_at >= $2) AS new,
       count(*) FILTER (WHERE cleared_at >= $2 AND cleared_at < $3) AS cleared,
       count(*) FILTER (WHERE cleared_at IS NULL OR cleared_at >= $3) AS active
FROM suspensions
WHERE site_id = $1 AND created_at < $3
GROUP BY cause ORDER BY cause
"""
CASES_SQL = """
SELECT count(*) FROM health_cases  -- health_cases_site_idx
WHERE site_id = $1 AND recorded_at >= $2 AND recorded_at < $3
"""
# The declarations waiting for review at $2: filed by then, not yet reviewed (or
# reviewed later), not superseded nor expired by then.
QUEUE_SQL = """
SELECT count(*) AS waiting,
       extract(epoch FROM $2 - min(submitted_at)) AS oldest_s,
       extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY $2 - submitted_at))
           AS median_s
FROM declarations
WHERE site_id = $1 AND submitted_at <= $2 AND valid_until > $2
  AND ((status = 'review' AND reviewed_at IS NULL) OR reviewed_at > $2)
  AND (superseded_at IS NULL OR superseded_at > $2)
"""
CAUSES = ("case_confirmed", "contact_traced", "area_flagged")


def site_not_found(site_id: int) -> ApiError:
    return worded_error(
        404, "site_not_found", f"Không có trụ sở {site_id}.", f"No site with id {site_id}."
    )


async def _site(request: web.Request, conn: asyncpg.Connection) -> asyncpg.Record:
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    site = await site_row(conn, site_id)
    if site is None:
        raise site_not_found(site_id)
    return site


def _today(site: asyncpg.Record) -> date:
    return datetime.now(ZoneInfo(site["timezone"])).date()


@requires(Role.ADMIN, Role.HEALTH)
@documented(query={"date": (pages.Q_DAY, False)})
async def site_tests_due(request: web.Request) -> web.Response:
    """Who must be tested today (or on `date`) by the cadence per risk level."""
    query = validate(pages.DayQuery, dict(request.query))
    async with request.app[DB_KEY].connection() as conn:
        site = await _site(request, conn)
        due = await tests_due(conn, site, query.date or _today(site))
    return web.json_response(due.as_json())


def _due_rows(lang: Lang, group: Group) -> list[tuple[str, ...]]:
    return [
        (
            d.name,
            d.phone or "",
            d.organisation or "",
            d.position or "",
            pages.when(d.last_negative_at),
            pages.day_text(d.covered_until),
            t("done" if d.tested_at else "overdue" if d.overdue else "due", lang),
        )
        for d in group.people
    ]


def tests_due_page(request: web.Request, lang: Lang, due: TestsDue) -> web.Response:
    groups = [
        {
            "risk_level": g.risk_level,
            "cadence_days": g.cadence_days,
            "rows": _due_rows(lang, g),
        }
        for g in due.groups
    ]
    context = {
        "site_name": due.site_name,
        "day": pages.day_text(due.day),
        "due": sum(len(g.people) for g in due.groups),
        "done": sum(g.done for g in due.groups),
        "groups": groups,
    }
    now = datetime.now(ZoneInfo(due.timezone))
    return pages.printable(request, lang, "tests_due.html", t("tests_due", lang), now, context)


@requires(Role.ADMIN, Role.HEALTH)
@documented(query={"date": (pages.Q_DAY, False), "lang": Q_LANG})
async def site_tests_due_page(request: web.Request) -> web.Response:
    """Tests due, as a printable page."""
    query = validate(pages.DayPage, dict(request.query))
    async with request.app[DB_KEY].connection() as conn:
        site = await _site(request, conn)
        due = await tests_due(conn, site, query.date or _today(site))
    return tests_due_page(request, query.lang, due)


@dataclass(frozen=True)
class HealthReport:
    site_id: int
    site_name: str
    timezone: str
    day: date
    entries: int
    denials: int
    denials_by_reason: dict[str, int]
    suspensions: dict[str, dict[str, int]]  # cause -> new, cleared, active
    cases: int
    tests: TestsDue
    queue: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        tests = self.tests.as_json()
        return {
            "site_id": self.site_id,
            "date": self.day.isoformat(),
            "timezone": self.timezone,
            "entries": self.entries,
            "denials": self.denials,
            "denials_by_reason": self.denials_by_reason,
            "suspensions_by_cause": self.suspensions,
            "cases_recorded": self.cases,
            "tests": {
                "due": tests["due"],
                "done": tests["done"],
                "by_risk_level": {
                    g["risk_level"]: {"due": g["due"], "done": g["done"]} for g in tests["groups"]
                },
            },
            "review_queue": self.queue,
        }


async def health_report(conn: asyncpg.Connection, site: asyncpg.Record, day: date) -> HealthReport:
    start, end = site_day(ZoneInfo(site["timezone"]), day)
    door = await daily_report(conn, site["id"], day)
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        held = {r["cause"]: r for r in await conn.fetch(SUSPENSIONS_SQL, site["id"], start, end)}
        cases = await conn.fetchval(CASES_SQL, site["id"], start, end)
        due = await tests_due(conn, site, day)
        queue = await conn.fetchrow(QUEUE_SQL, site["id"], min(end, datetime.now(UTC)))
    return HealthReport(
        site_id=site["id"],
        site_name=site["name"],
        timezone=site["timezone"],
        day=day,
        entries=door.entries,
        denials=door.denials,
        denials_by_reason=door.denials_by_reason,
        suspensions={
            c: {k: int(held[c][k]) if c in held else 0 for k in ("new", "cleared", "active")}
            for c in CAUSES
        },
        cases=cases,
        tests=due,
        queue={
            "waiting": queue["waiting"],
            "oldest_s": _seconds(queue["oldest_s"]),
            "median_s": _seconds(queue["median_s"]),
        },
    )


def _seconds(value: Any) -> int | None:
    return None if value is None else round(float(value))


@requires(Role.ADMIN, Role.HEALTH, Role.AUDITOR)
@documented(query={"date": (pages.Q_DAY, True)})
async def site_health_report(request: web.Request) -> web.Response:
    """A day at a site for the health authority: entries, denials by reason,
    suspensions by cause, cases, tests due and done, the review queue's age."""
    query = validate(pages.ReportQuery, dict(request.query))
    async with request.app[DB_KEY].connection() as conn:
        site = await _site(request, conn)
        report = await health_report(conn, site, query.date)
    return web.json_response(report.as_json())


def _minutes(seconds: int | None) -> str:
    return "" if seconds is None else str(round(seconds / 60))


def health_report_page(request: web.Request, lang: Lang, report: HealthReport) -> web.Response:
    data = report.as_json()
    tests = data["tests"]
    queue = data["review_queue"]
    context = {
        "site_name": report.site_name,
        "day": pages.day_text(report.day),
        "totals": (report.entries, report.denials, report.cases),
        "denials": list(report.denials_by_reason.items()),
        "suspensions": [
            (c, n["new"], n["cleared"], n["active"]) for c, n in report.suspensions.items()
        ],
        "tests": [
            (t("risk_" + r, lang), n["due"], n["done"]) for r, n in tests["by_risk_level"].items()
        ]
        + [("Σ", tests["due"], tests["done"])],
        "queue": (queue["waiting"], _minutes(queue["oldest_s"]), _minutes(queue["median_s"])),
    }
    now = datetime.now(ZoneInfo(report.timezone))
    title = t("health_report", lang)
    return pages.printable(request, lang, "health_report.html", title, now, context)


@requires(Role.ADMIN, Role.HEALTH, Role.AUDITOR)
@documented(query={"date": (pages.Q_DAY, True), "lang": Q_LANG})
async def site_health_report_page(request: web.Request) -> web.Response:
    """The daily health report, as a printable page."""
    query = validate(pages.ReportPage, dict(request.query))
    async with request.app[DB_KEY].connection() as conn:
        site = await _site(request, conn)
        report = await health_report(conn, site, query.date)
    return health_report_page(request, query.lang, report)


def routes() -> list[web.RouteDef]:
    site = r"/api/v1/sites/{site_id:\d{1,18}}"
    return [
        web.get(site + "/tests-due", site_tests_due, name="tests_due"),
        web.get(site + "/tests-due.html", site_tests_due_page, name="tests_due_page"),
        web.get(site + "/health-report", site_health_report, name="health_report"),
        web.get(site + "/health-report.html", site_health_report_page, name="health_report_page"),
    ]
