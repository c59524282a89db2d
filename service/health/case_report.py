"""A case's report for the health authority: the case (F0) and its contacts (F1), with
times (site time) and phones, as CSV (cells formula-safe: service.web.spreadsheet through
service.audit's CSV writer) and as a printable page. Only health, auditor and admin, of
the case's site; every export is an `export` event in the site's chain, as the
audit exports are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from service.audit.documents import CONTENT_TYPES, attachment, csv_document, record_export
from service.health import pages
from service.health.cases import contacts_with_state, visible_case
from service.health.pages import Lang, t
from service.platform.db import DB_KEY
from service.web.auth import Role, principal, requires
from service.web.openapi import Q_LANG, documented
from service.web.validation import validate

COLUMNS = (
    "case_id",
    "role",
    "person_id",
    "name",
    "phone",
    "organisation",
    "onset_on",
    "window_from",
    "window_to",
    "recorded_at",
    "overlap_minutes",
    "shared_stays",
    "gates",
    "first_overlap_at",
    "last_overlap_at",
    "suspended",
)
CASE_PERSON_SQL = """
SELECT p.phone, p.organisation, s.name AS site_name, s.timezone
FROM people p, sites s WHERE p.id = $1 AND s.id = $2
"""


async def _report(request: web.Request, fmt: str) -> tuple[dict[str, Any], ZoneInfo]:
    """The case and its contacts as the report shows them; the export recorded."""
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        case = await visible_case(conn, request)
        contacts = await contacts_with_state(conn, case)
        extra = await conn.fetchrow(CASE_PERSON_SQL, case["person_id"], case["site_id"])
        await _record(conn, request, case, fmt, len(contacts))
    zone = ZoneInfo(extra["timezone"])
    return {"case": case, "extra": extra, "contacts": contacts}, zone


async def _record(
    conn: asyncpg.Connection, request: web.Request, case: asyncpg.Record, fmt: str, n: int
) -> None:
    await record_export(
        conn,
        principal(request).actor,
        site_id=case["site_id"],
        person_id=case["person_id"],
        detail={"what": "case_report", "case_id": case["id"], "format": fmt, "contacts": n},
    )


def _local(value: str | datetime, zone: ZoneInfo) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(zone)


def _gates(contact: dict[str, Any]) -> str:
    return ", ".join(g["name"] or str(g["id"]) for g in contact["gates"])


def csv_rows(report: dict[str, Any], zone: ZoneInfo) -> list[list[Any]]:
    case, extra = report["case"], report["extra"]
    rows: list[list[Any]] = [
        [
            case["id"],
            "F0",
            case["person_id"],
            case["full_name"],
            extra["phone"],
            extra["organisation"],
            case["onset_on"].isoformat(),
            _local(case["window_from"], zone),
            _local(case["window_to"], zone),
            _local(case["recorded_at"], zone),
            *[None] * 6,
        ]
    ]
    for c in report["contacts"]:
        rows.append(
            [
                case["id"],
                "F1",
                c["person_id"],
                c["name"],
                c["phone"],
                c["organisation"],
                *[None] * 4,
                c["overlap_minutes"],
                c["shared_stays"],
                _gates(c),
                _local(c["first_overlap_at"], zone),
                _local(c["last_overlap_at"], zone),
                "yes" if c["suspended"] else "no",
            ]
        )
    return rows


@requires(Role.ADMIN, Role.HEALTH, Role.AUDITOR)
async def case_report_csv(request: web.Request) -> web.Response:
    """A case and its contacts, with times and phones, as CSV (each export logged)."""
    report, zone = await _report(request, "csv")
    return web.Response(
        body=csv_document(COLUMNS, csv_rows(report, zone)),
        headers={
            "Content-Type": CONTENT_TYPES["csv"],
            "Content-Disposition": attachment(f"case-{report['case']['id']}", "csv"),
        },
    )


def case_page(
    request: web.Request, lang: Lang, report: dict[str, Any], zone: ZoneInfo
) -> web.Response:
    case, extra = report["case"], report["extra"]
    facts = [
        ("case", f"{case['full_name']} · {extra['phone'] or ''} · {extra['organisation'] or ''}"),
        ("onset", pages.day_text(case["onset_on"])),
        (
            "window",
            f"{pages.when(_local(case['window_from'], zone))} – "
            f"{pages.when(_local(case['window_to'], zone))}",
        ),
        ("recorded", f"{pages.when(_local(case['recorded_at'], zone))} · {case['recorded_by']}"),
        ("note", case["note"]),
    ]
    contacts = [
        (
            c["name"],
            c["phone"] or "",
            c["organisation"] or "",
            c["overlap_minutes"],
            _gates(c),
            pages.when(_local(c["first_overlap_at"], zone)),
            pages.when(_local(c["last_overlap_at"], zone)),
            t("yes" if c["suspended"] else "no", lang),
        )
        for c in report["contacts"]
    ]
    context = {
        "site_name": extra["site_name"],
        "case_id": case["id"],
        "facts": facts,
        "contacts": contacts,
    }
    title = t("case_report", lang)
    return pages.printable(request, lang, "case_report.html", title, datetime.now(zone), context)


@requires(Role.ADMIN, Role.HEALTH, Role.AUDITOR)
@documented(query={"lang": Q_LANG})
async def case_report_page(request: web.Request) -> web.Response:
    """A case's report as a printable page (each export logged)."""
    query = validate(pages.LangQuery, dict(request.query))
    report, zone = await _report(request, "html")
    return case_page(request, query.lang, report, zone)


def routes() -> list[web.RouteDef]:
    case = r"/api/v1/cases/{case_id:\d{1,18}}"
    return [
        web.get(case + "/report.csv", case_report_csv, name="case_report_csv"),
        web.get(case + "/report.html", case_report_page, name="case_report_page"),
    ]
