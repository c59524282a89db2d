"""The health desk's views for the health authority: tests due by cadence, a case's
report (CSV and printable page, each export logged), the daily site health report."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from service.web.auth import Role
from tests.declaring import declaration
from tests.factory import Factory, bearer
from tests.health_helpers import Client, call, door, make_desk, official_test
from tests.test_health_desk import SITE_TZ, new_case, overlapping_pair, site_today


def site_noon(days_ago: int) -> datetime:
    day = datetime.now(SITE_TZ).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(12), tzinfo=SITE_TZ)


async def staff_at(factory: Factory, site_id: int, name: str, risk: str) -> int:
    person_id = await factory.person(full_name=name)
    await factory.conn.execute("UPDATE people SET risk_level = $2 WHERE id = $1", person_id, risk)
    await factory.declaration(person_id, site_id)
    return person_id


async def get(client: Client, url: str, token: str) -> tuple[int, str, Any]:
    resp = await client.get(url, headers=bearer(token))
    text = await resp.text()
    return resp.status, resp.headers.get("Content-Type", ""), text


async def test_tests_due_lists_who_must_be_tested_today_per_risk_level(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    a = await staff_at(factory, desk.site_id, "An Văn Một", "very_high")
    b = await staff_at(factory, desk.site_id, "Bùi Thị Hai", "very_high")
    c = await staff_at(factory, desk.site_id, "Cao Văn Ba", "high")
    d = await staff_at(factory, desk.site_id, "Đỗ Thị Bốn", "high")
    await staff_at(factory, desk.site_id, "Lê Văn Năm", "low")  # no cadence
    other = await make_desk(factory)
    await staff_at(factory, other.site_id, "Mai Thị Sáu", "very_high")  # another site's
    await official_test(client, desk.health, a, "negative", site_noon(1))
    await official_test(client, desk.health, b, "negative", site_noon(3))
    await official_test(client, desk.health, b, "negative", datetime.now(UTC), kind="rapid")
    await official_test(client, desk.health, c, "negative", site_noon(2))
    url = f"/api/v1/sites/{desk.site_id}/tests-due"
    due = await call(client, "GET", url, desk.health, 200)
    assert (due["date"], due["due"], due["done"]) == (site_today(), 3, 1)
    groups = [(g["risk_level"], g["cadence_days"], g["due"], g["done"]) for g in due["groups"]]
    assert groups == [("very_high", 1, 2, 1), ("high", 7, 1, 0)]
    people = [
        (p["person_id"], p["overdue"], p["done"], p["covered_until"])
        for g in due["groups"]
        for p in g["people"]
    ]
    yesterday = site_noon(1).date()
    assert people == [
        (a, False, False, site_today()),  # covered today: a test today for tomorrow
        (b, True, True, (yesterday - timedelta(days=1)).isoformat()),
        (d, True, False, None),
    ]
    # Another day: yesterday nobody was covered by an earlier test; a was tested then.
    before = await call(client, "GET", f"{url}?date={yesterday.isoformat()}", desk.admin, 200)
    assert [(p["person_id"], p["done"]) for g in before["groups"] for p in g["people"]] == [
        (a, True),
        (b, False),
        (d, False),
    ]
    # The printable list: same people, no script.
    status, kind, page = await get(client, url.replace("tests-due", "tests-due.html"), desk.health)
    assert status == 200 and kind.startswith("text/html"), page
    assert "Đỗ Thị Bốn" in page and "Quá hạn" in page and "<script" not in page
    assert "Lê Văn Năm" not in page and "Mai Thị Sáu" not in page
    status, _, page = await get(client, url + ".html?lang=en", desk.health)
    assert status == 200 and "Tests due" in page and "Overdue" in page


async def test_the_desk_views_refuse_other_roles_sites_and_bad_queries(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    other = await make_desk(factory)
    guard = await factory.token(Role.GUARD, site_id=desk.site_id)
    auditor = await factory.token(Role.AUDITOR)
    base = f"/api/v1/sites/{desk.site_id}"
    for path in ("/tests-due", "/tests-due.html"):
        for token, status in ((guard, 403), (auditor, 403), (other.health, 403)):
            got = await call(client, "GET", base + path, token, status)
            assert got["error"]["code"] == "forbidden"
    for path in ("/health-report?date=2026-12-01", "/health-report.html?date=2026-12-01"):
        assert (await get(client, base + path, auditor))[0] == 200
        for token in (guard, other.health):
            await call(client, "GET", base + path, token, 403)
    missing = f"/api/v1/sites/{desk.site_id + 1000}"
    for path in ("/tests-due", "/health-report?date=2026-12-01"):
        got = await call(client, "GET", missing + path, desk.admin, 404)
        assert got["error"]["code"] == "site_not_found"
    for path, field in (
        ("/tests-due?date=03/12/2026", "date"),
        ("/tests-due?date=0001-01-01", "date"),
        ("/tests-due?site=1", "site"),
        ("/tests-due.html?lang=fr", "lang"),
        ("/health-report", "date"),
        ("/health-report?date=9999-12-31", "date"),
        ("/health-report.html?date=2026-02-30", "date"),
    ):
        got = await call(client, "GET", base + path, desk.health, 422)
        assert [f["field"] for f in got["error"]["fields"]] == [field], path
        assert all(f["reason_vi"] and f["reason_en"] for f in got["error"]["fields"])


async def test_a_case_report_has_the_case_its_contacts_times_and_phones_and_is_logged(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    desk = await make_desk(factory)
    a, b = await overlapping_pair(client, desk)
    await conn.execute("UPDATE people SET organisation = '=1+2 Công ty' WHERE id = $1", b.person_id)
    case = await new_case(client, desk, a)
    await call(
        client, "POST", f"/api/v1/cases/{case['id']}/contacts/suspend", desk.health, 200, all=True
    )
    url = f"/api/v1/cases/{case['id']}/report.csv"
    status, kind, text = await get(client, url, desk.health)
    assert status == 200 and kind.startswith("text/csv"), text
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:6] == ["case_id", "role", "person_id", "name", "phone", "organisation"]
    f0, f1 = (dict(zip(rows[0], r, strict=True)) for r in rows[1:])
    phones = dict(
        await conn.fetch(
            "SELECT id, phone FROM people WHERE id = ANY($1)", [a.person_id, b.person_id]
        )
    )
    assert (f0["role"], f0["person_id"], f0["phone"], f0["onset_on"]) == (
        "F0",
        str(a.person_id),
        "'" + phones[a.person_id],  # a leading + is a formula to a spreadsheet
        site_today(),
    )
    assert f0["window_from"].endswith("+07:00")
    assert (f1["role"], f1["person_id"], f1["phone"], f1["suspended"]) == (
        "F1",
        str(b.person_id),
        "'" + phones[b.person_id],
        "yes",
    )
    assert f1["organisation"] == "'=1+2 Công ty"  # no formula for a spreadsheet
    assert f1["gates"] == "Cổng A" and float(f1["overlap_minutes"]) > 0
    status, kind, page = await get(client, url.replace(".csv", ".html"), desk.health)
    assert (
        status == 200 and kind.startswith("text/html") and b.name in page and "<script" not in page
    )
    auditor = await factory.token(Role.AUDITOR)
    assert (await get(client, url, auditor))[0] == 200
    exports = await conn.fetch(
        "SELECT actor, detail FROM events WHERE kind = 'export' AND detail->>'what' = 'case_report'"
        " ORDER BY seq"
    )
    assert [(e["detail"]["format"], e["detail"]["case_id"]) for e in exports] == [
        ("csv", case["id"]),
        ("html", case["id"]),
        ("csv", case["id"]),
    ]
    # Nobody else: a guard is refused, another site's officer finds no such case.
    guard = await factory.token(Role.GUARD, site_id=desk.site_id)
    assert (await get(client, url, guard))[0] == 403
    other = await make_desk(factory)
    got = await call(client, "GET", url, other.health, 404)
    assert got["error"]["code"] == "case_not_found"
    assert len(await conn.fetch("SELECT 1 FROM events WHERE kind = 'export'")) == 3


async def test_the_daily_health_report_counts_the_day(client: Client, factory: Factory) -> None:
    desk = await make_desk(factory)
    a, _ = await overlapping_pair(client, desk)
    case = await new_case(client, desk, a)
    await call(
        client, "POST", f"/api/v1/cases/{case['id']}/contacts/suspend", desk.health, 200, all=True
    )
    assert await door(client, desk.entrance, a) == ("deny", "case_confirmed")
    resp = await client.post(
        "/api/v1/declarations",
        json=declaration(
            desk.site_id, full_name="Hồ Văn Sốt", phone="0913 000 077", symptoms=["fever"]
        ),
    )
    assert resp.status == 201 and (await resp.json())["status"] == "review"
    report = await call(
        client,
        "GET",
        f"/api/v1/sites/{desk.site_id}/health-report?date={site_today()}",
        desk.health,
        200,
    )
    assert (report["entries"], report["denials"], report["cases_recorded"]) == (2, 1, 1)
    assert report["denials_by_reason"] == {"case_confirmed": 1}
    assert report["suspensions_by_cause"] == {
        "case_confirmed": {"new": 1, "cleared": 0, "active": 1},
        "contact_traced": {"new": 1, "cleared": 0, "active": 1},
        "area_flagged": {"new": 0, "cleared": 0, "active": 0},
    }
    assert report["tests"] == {
        "due": 0,
        "done": 0,
        "by_risk_level": {"very_high": {"due": 0, "done": 0}, "high": {"due": 0, "done": 0}},
    }
    queue = report["review_queue"]
    assert queue["waiting"] == 1 and queue["oldest_s"] == queue["median_s"] >= 0
    # A day before: nothing yet.
    day_before = (date.fromisoformat(site_today()) - timedelta(days=1)).isoformat()
    empty = await call(
        client,
        "GET",
        f"/api/v1/sites/{desk.site_id}/health-report?date={day_before}",
        desk.health,
        200,
    )
    assert (empty["entries"], empty["cases_recorded"], empty["review_queue"]["waiting"]) == (
        0,
        0,
        0,
    )
    status, kind, page = await get(
        client, f"/api/v1/sites/{desk.site_id}/health-report.html?date={site_today()}", desk.health
    )
    assert (
        status == 200
        and kind.startswith("text/html")
        and "case_confirmed" in page
        and "<script" not in page
    )
