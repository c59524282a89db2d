"""The health desk's API: each refusal, re-screening, clearance, F2, official results."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.declarations.policy import area_key
from service.retention.purge import purge
from service.web.auth import Role
from tests.declaring import declaration
from tests.factory import Factory, bearer
from tests.health_helpers import (
    Client,
    Declared,
    Desk,
    call,
    declare,
    door,
    filed_for,
    make_desk,
)
from tests.test_console_auth import login

SITE_TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # the sites' default time zone


async def overlapping_pair(client: Client, desk: Desk) -> tuple[Declared, Declared]:
    """Two people who were inside together for two minutes, both gone now."""
    a = await declare(client, desk.site_id, "Phạm Minh Đức", "0913 000 001")
    b = await declare(client, desk.site_id, "Hoàng Thu Hà", "0913 000 002")
    assert await door(client, desk.entrance, a, 240) == ("allow", "welcome")
    assert await door(client, desk.entrance, b, 180) == ("allow", "welcome")
    assert await door(client, desk.exit, b, 60) == ("allow", "goodbye")
    assert await door(client, desk.exit, a, 30) == ("allow", "goodbye")
    return a, b


def site_today() -> str:
    return datetime.now(SITE_TZ).date().isoformat()


async def new_case(client: Client, desk: Desk, who: Declared) -> dict[str, Any]:
    today = site_today()
    return await call(
        client, "POST", "/api/v1/cases", desk.health, 201, person_id=who.person_id, onset_on=today
    )


def fields(body: dict[str, Any]) -> set[str]:
    assert body["error"]["code"] == "validation_failed", body
    return {f["field"] for f in body["error"]["fields"]}


async def test_a_case_for_an_unknown_person_or_one_of_another_site_is_404(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    other = await make_desk(factory)
    elsewhere = await declare(client, other.site_id, "Vũ Thị Lan", "0914 000 001")
    today = site_today()
    for person_id in (2**40, elsewhere.person_id):
        body = await call(
            client, "POST", "/api/v1/cases", desk.health, 404, person_id=person_id, onset_on=today
        )
        assert body["error"]["code"] == "person_not_found"
    # The other site's officer may: the person is known there.
    await call(
        client,
        "POST",
        "/api/v1/cases",
        other.health,
        201,
        person_id=elsewhere.person_id,
        onset_on=today,
    )
    body = await call(
        client, "GET", f"/api/v1/people/{elsewhere.person_id}/tests", desk.health, 404
    )
    assert body["error"]["code"] == "person_not_found"


async def test_suspending_someone_not_on_the_case_list_is_409_and_suspends_nobody(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    desk = await make_desk(factory)
    a, b = await overlapping_pair(client, desk)
    stranger = await declare(client, desk.site_id, "Đỗ Văn Hùng", "0913 000 003")
    case = await new_case(client, desk, a)
    url = f"/api/v1/cases/{case['id']}/contacts/suspend"
    body = await call(
        client, "POST", url, desk.health, 409, person_ids=[b.person_id, stranger.person_id]
    )
    assert body["error"]["code"] == "not_a_contact"
    assert body["error"]["person_ids"] == [stranger.person_id]
    held = await conn.fetchval(
        "SELECT count(*) FROM suspensions WHERE cause = 'contact_traced' AND site_id = $1",
        desk.site_id,
    )
    assert held == 0
    assert await door(client, desk.entrance, b) == ("allow", "welcome")
    # Named properly it works, and twice is once.
    done = await call(client, "POST", url, desk.health, 200, person_ids=[b.person_id])
    assert [s["person_id"] for s in done["suspended"]] == [b.person_id]
    again = await call(client, "POST", url, desk.health, 200, person_ids=[b.person_id])
    assert (again["suspended"], again["already_suspended"]) == ([], [b.person_id])
    # An unknown case, or one of another site, is 404 either way.
    other = await make_desk(factory)
    for token in (desk.health, other.health):
        missing = f"/api/v1/cases/{case['id'] + (1000 if token == desk.health else 0)}"
        body = await call(client, "POST", missing + "/contacts/suspend", token, 404, all=True)
        assert body["error"]["code"] == "case_not_found"


async def test_bad_bodies_get_422_with_the_field_named(client: Client, factory: Factory) -> None:
    desk = await make_desk(factory)
    a, _ = await overlapping_pair(client, desk)
    future = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    cases = [
        ({"person_id": a.person_id, "onset_on": "03/12/2026"}, {"onset_on"}),
        ({"onset_on": "2026-12-01"}, {"person_id"}),
        ({"person_id": "1", "onset_on": "2026-12-01"}, {"person_id"}),
        ({"person_id": a.person_id, "onset_on": future}, {"onset_on"}),
        ({"person_id": a.person_id, "onset_on": "0001-01-01"}, {"onset_on"}),
        ({"person_id": 2**63, "onset_on": "2026-12-01"}, {"person_id"}),
        ({"person_id": a.person_id, "onset_on": "2026-12-01", "x": 1}, {"x"}),
    ]
    for body, named in cases:
        got = await call(client, "POST", "/api/v1/cases", desk.health, 422, **body)
        assert fields(got) == named, body
    test = {
        "person_id": a.person_id,
        "kind": "pcr",
        "taken_at": datetime.now(UTC).isoformat(),
        "result": "negative",
        "source": "CDC",
    }
    tests = [
        ({"kind": "antigen"}, {"kind"}),
        ({"result": "unclear"}, {"result"}),
        ({"taken_at": "2026-12-01T08:00:00"}, {"taken_at"}),
        ({"taken_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, {"taken_at"}),
        ({"source": "  "}, {"source"}),
    ]
    for change, named in tests:
        got = await call(client, "POST", "/api/v1/tests", desk.health, 422, **(test | change))
        assert fields(got) == named, change
    case = await new_case(client, desk, a)
    url = f"/api/v1/cases/{case['id']}/contacts/suspend"
    for body in ({}, {"all": True, "person_ids": [1]}, {"all": False}, {"person_ids": []}):
        await call(client, "POST", url, desk.health, 422, **body)
    got = await call(
        client, "GET", f"/api/v1/cases/{case['id']}/contacts?depth=3", desk.health, 422
    )
    assert fields(got) == {"depth"}
    clear = f"/api/v1/sites/{desk.site_id}/suspensions/clear"
    got = await call(client, "POST", clear, desk.health, 422, cause="fever", note="x")
    assert fields(got) == {"cause"}
    got = await call(client, "POST", clear, desk.health, 422, cause="area_flagged")
    assert fields(got) == {"note"}
    got = await call(
        client,
        "POST",
        clear,
        desk.health,
        422,
        cause="case_confirmed",
        note="x",
        person_ids=[2**63],
    )
    assert fields(got) == {"person_ids.0"}
    got = await call(
        client, "GET", f"/api/v1/sites/{desk.site_id}/suspensions?cause=fever", desk.health, 422
    )
    assert fields(got) == {"cause"}


async def test_guards_and_kiosks_may_not_act_for_health(client: Client, factory: Factory) -> None:
    desk = await make_desk(factory)
    a, b = await overlapping_pair(client, desk)
    case = await new_case(client, desk, a)
    guard = await factory.token(Role.GUARD, site_id=desk.site_id)
    today = site_today()
    writes = [
        ("/api/v1/cases", {"person_id": b.person_id, "onset_on": today}),
        (f"/api/v1/cases/{case['id']}/contacts/suspend", {"all": True}),
        (
            "/api/v1/tests",
            {
                "person_id": b.person_id,
                "kind": "rapid",
                "taken_at": datetime.now(UTC).isoformat(),
                "result": "negative",
                "source": "x",
            },
        ),
        (
            f"/api/v1/sites/{desk.site_id}/suspensions/clear",
            {"cause": "case_confirmed", "note": "x"},
        ),
    ]
    for url, body in writes:
        for token in (guard, desk.entrance):
            got = await call(client, "POST", url, token, 403, **body)
            assert got["error"]["code"] == "forbidden"
    # A health officer of another site may not act on this one.
    other = await make_desk(factory)
    got = await call(client, "GET", f"/api/v1/sites/{desk.site_id}/suspensions", other.health, 403)
    assert got["error"]["code"] == "forbidden"
    assert await door(client, desk.entrance, b) == ("allow", "welcome")


async def test_rescreen_follows_the_rules_a_widened_period_and_clears_in_one_action(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    desk = await make_desk(factory)
    site = desk.site_id
    went = await declare(client, site, "Bùi Văn Nam", "0915 000 001", travel_areas=["Đông Triều"])
    also = await declare(
        client, site, "Ngô Thị Mai", "0915 000 002", travel_areas=["Hà Nội", "dong trieu"]
    )
    stayed = await declare(client, site, "Lý Văn Tâm", "0915 000 003", travel_areas=["Huế"])
    today = datetime.now(UTC).date()
    areas = f"/api/v1/sites/{site}/flagged-areas"
    # Flagged long before they could have been there: nobody touched.
    long_ago = {"flagged_from": (today - timedelta(days=40)).isoformat()}
    old = long_ago | {
        "name": "Đông Triều",
        "flagged_until": (today - timedelta(days=30)).isoformat(),
    }
    area = await call(client, "POST", areas, desk.health, 201, **old)
    assert (area["rescreened"], area["suspended"]) == (0, 0)
    # Widened to now: both who went are held; the one who did not is not.
    widened = await call(
        client,
        "PUT",
        f"{areas}/{area['id']}",
        desk.health,
        200,
        **(long_ago | {"name": "Đông Triều"}),
    )
    assert (widened["rescreened"], widened["suspended"]) == (2, 2)
    for who in (went, also):
        assert await door(client, desk.entrance, who) == ("deny", "area_flagged")
    assert await door(client, desk.entrance, stayed) == ("allow", "welcome")
    listed = await call(
        client, "GET", f"/api/v1/sites/{site}/suspensions?cause=area_flagged", desk.health, 200
    )
    assert {s["person_id"] for s in listed["suspensions"]} == {went.person_id, also.person_id}
    assert {s["area_id"] for s in listed["suspensions"]} == {area["id"]}
    # Removing the flag lifts nothing silently ...
    resp = await client.delete(f"{areas}/{area['id']}", headers=bearer(desk.health))
    assert resp.status == 204
    assert await door(client, desk.entrance, went) == ("deny", "area_flagged")
    # ... the officer clears them, one action for all, each an event.
    cleared = await call(
        client,
        "POST",
        f"/api/v1/sites/{site}/suspensions/clear",
        desk.health,
        200,
        cause="area_flagged",
        area_id=area["id"],
        note="Khu vực đã hết phong tỏa",
    )
    assert {c["person_id"] for c in cleared["cleared"]} == {went.person_id, also.person_id}
    assert await door(client, desk.entrance, went) == ("allow", "welcome")
    events = await conn.fetch(
        "SELECT person_id, detail->>'note' AS note FROM events"
        " WHERE site_id = $1 AND kind = 'suspension_cleared'",
        site,
    )
    assert {e["person_id"] for e in events} == {went.person_id, also.person_id}
    assert {e["note"] for e in events} == {"Khu vực đã hết phong tỏa"}
    # Where the rules only note such travel, a new flag re-screens and suspends nobody.
    resp = await client.put(
        f"/api/v1/sites/{site}/rules",
        json={"actions": {"travel_flagged_area": "allow"}},
        headers=bearer(desk.admin),
    )
    assert resp.status == 200, await resp.text()
    again = await call(client, "POST", areas, desk.health, 201, **(long_ago | {"name": "Huế"}))
    assert (again["rescreened"], again["suspended"]) == (1, 0)


async def test_quarantine_days_keep_a_contact_held_after_an_early_negative(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    resp = await client.put(
        f"/api/v1/sites/{desk.site_id}/rules",
        json={"quarantine_days": 2, "infectious_days_before_onset": 3},
        headers=bearer(desk.admin),
    )
    assert resp.status == 200, await resp.text()
    a, b = await overlapping_pair(client, desk)
    case = await new_case(client, desk, a)
    done = await call(
        client, "POST", f"/api/v1/cases/{case['id']}/contacts/suspend", desk.health, 200, all=True
    )
    exposure = datetime.fromisoformat(case["contacts"][0]["last_overlap_at"])
    assert datetime.fromisoformat(done["suspended"][0]["clear_after"]) == exposure + timedelta(
        days=2
    )
    test = await call(
        client,
        "POST",
        "/api/v1/tests",
        desk.health,
        201,
        person_id=b.person_id,
        kind="rapid",
        taken_at=datetime.now(UTC).isoformat(),
        result="negative",
        source="Trạm y tế phường",
    )
    assert test["cleared"] == []
    assert [s["cause"] for s in test["suspensions"]] == ["contact_traced"]
    assert await door(client, desk.entrance, b) == ("deny", "contact_traced")
    got = await call(client, "GET", f"/api/v1/cases/{case['id']}", desk.health, 200)
    onset = date.fromisoformat(got["onset_on"])
    start = datetime.combine(onset - timedelta(days=3), time(0), tzinfo=SITE_TZ)
    assert datetime.fromisoformat(got["window"]["from"]) == start
    assert [c["suspended"] for c in got["contacts"]] == [True]


async def test_second_degree_contacts_on_request(client: Client, factory: Factory) -> None:
    desk = await make_desk(factory)
    site = desk.site_id
    f0 = await declare(client, site, "Trịnh Văn Long", "0916 000 001")
    f1 = await declare(client, site, "Mai Thị Hoa", "0916 000 002")
    f2 = await declare(client, site, "Đặng Văn Khoa", "0916 000 003")
    assert await door(client, desk.entrance, f0, 240) == ("allow", "welcome")
    assert await door(client, desk.entrance, f1, 200) == ("allow", "welcome")
    assert await door(client, desk.exit, f0, 150) == ("allow", "goodbye")
    assert await door(client, desk.entrance, f2, 120) == ("allow", "welcome")
    assert await door(client, desk.exit, f1, 60) == ("allow", "goodbye")
    assert await door(client, desk.exit, f2, 30) == ("allow", "goodbye")
    case = await new_case(client, desk, f0)
    assert [c["person_id"] for c in case["contacts"]] == [f1.person_id]
    url = f"/api/v1/cases/{case['id']}/contacts"
    depth1 = await call(client, "GET", url, desk.health, 200)
    assert [(c["person_id"], c["depth"]) for c in depth1["contacts"]] == [(f1.person_id, 1)]
    depth2 = await call(client, "GET", url + "?depth=2", desk.health, 200)
    assert [(c["person_id"], c["depth"]) for c in depth2["contacts"]] == [
        (f1.person_id, 1),
        (f2.person_id, 2),
    ]
    assert depth2["contacts"][1]["via"] == [f1.person_id]
    # F2 are listed, not suspendable through the case.
    body = await call(client, "POST", url + "/suspend", desk.health, 409, person_ids=[f2.person_id])
    assert body["error"]["code"] == "not_a_contact"


async def test_an_official_positive_opens_a_case_and_outranks_a_declared_negative(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    a, b = await overlapping_pair(client, desk)
    taken = datetime.now(UTC) - timedelta(hours=1)
    test = await call(
        client,
        "POST",
        "/api/v1/tests",
        desk.health,
        201,
        person_id=a.person_id,
        kind="pcr",
        taken_at=taken.isoformat(),
        result="positive",
        source="CDC Hà Nội",
    )
    (case,) = test["cases"]
    assert case["site_id"] == desk.site_id
    assert [c["person_id"] for c in case["contacts"]] == [b.person_id]
    assert await door(client, desk.entrance, a) == ("deny", "case_confirmed")
    listed = await call(client, "GET", f"/api/v1/people/{a.person_id}/tests", desk.health, 200)
    assert [(t["result"], t["source"]) for t in listed["tests"]] == [("positive", "CDC Hà Nội")]
    # Declaring an older negative does not hide the official positive.
    older = {
        "kind": "pcr",
        "result": "negative",
        "taken_at": (taken - timedelta(hours=2)).isoformat(),
    }
    resp = await client.post(
        "/api/v1/declarations",
        json={
            "site_id": desk.site_id,
            "kind": "visitor",
            "full_name": a.name,
            "phone": "0913 000 001",
            "organisation": "Công ty TNHH Minh Phát",
            "host_name": "Trần Thị Bình",
            "purpose": "Làm thủ tục hải quan",
            "symptoms": [],
            "contact_f0": False,
            "contact_f1": False,
            "travel_areas": [],
            "vaccination_doses": 2,
            "last_test": older,
            "redeclare_key": a.redeclare_key,
        },
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["status"] == "rejected"
    # ... and the contradiction is marked for the officer (issue 19, item 3).
    assert [r["code"] for r in body["reasons"]] == ["positive_test", "declaration_mismatch"]


async def test_health_accounts_log_in_to_the_console_and_act_for_their_site(
    client: Client, factory: Factory, db_url: str
) -> None:
    desk = await make_desk(factory)
    username, password = await factory.account(Role.HEALTH, site_id=desk.site_id)
    status, csrf = await login(client, username, password)
    assert status == 303
    a, _ = await overlapping_pair(client, desk)
    today = site_today()
    resp = await client.post(
        "/api/v1/cases",
        json={"person_id": a.person_id, "onset_on": today},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 201, await resp.text()
    resp = await client.get(f"/api/v1/sites/{desk.site_id}/suspensions?cause=case_confirmed")
    (held,) = (await resp.json())["suspensions"]
    assert (held["person_id"], held["created_by"]) == (a.person_id, f"health:user:{username}")
    # No tokens, accounts or gates for health.
    assert (await client.get("/api/v1/accounts")).status == 403
    made = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "account",
        "create",
        "y.te",
        "--role",
        "health",
        "--site",
        str(desk.site_id),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
    )
    _, err = await made.communicate()
    assert made.returncode == 0, err
    assert b"created health account y.te" in err


async def test_the_case_rules_are_validated(client: Client, factory: Factory) -> None:
    desk = await make_desk(factory)
    url = f"/api/v1/sites/{desk.site_id}/rules"
    for bad, named in (
        ({"quarantine_days": -1}, "quarantine_days"),
        ({"quarantine_days": "2"}, "quarantine_days"),
        ({"infectious_days_before_onset": 15}, "infectious_days_before_onset"),
    ):
        resp = await client.put(url, json=bad, headers=bearer(desk.admin))
        assert resp.status == 422, bad
        assert fields(await resp.json()) == {named}
    # Rules are the admin's: the health officer reads them.
    resp = await client.put(url, json={"quarantine_days": 1}, headers=bearer(desk.health))
    assert resp.status == 403
    got = await call(client, "GET", url, desk.health, 200)
    assert (got["rules"]["infectious_days_before_onset"], got["rules"]["quarantine_days"]) == (2, 0)


async def test_sql_area_keys_match_the_declaration_rules(conn: asyncpg.Connection) -> None:
    names = [
        "Đông Triều",
        "  dong   TRIEU ",
        "Phường Thạch Bàn",
        "Quận Hoàn Kiếm",
        "Thừa Thiên Huế",
        "ĐẮK LẮK",
        "Bà Rịa – Vũng Tàu",
        "Hải Phòng\tcity",
    ]
    got = await conn.fetch("SELECT area_key(n) AS key FROM unnest($1::text[]) AS n", names)
    assert [r["key"] for r in got] == [area_key(n) for n in names]


async def test_where_the_site_requires_official_results_only_they_meet_the_cadence(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    resp = await client.put(
        f"/api/v1/sites/{desk.site_id}/rules",
        json={"visitor_test_required": True, "official_tests_required": True},
        headers=bearer(desk.admin),
    )
    assert resp.status == 200, await resp.text()
    taken = datetime.now(UTC) - timedelta(hours=3)
    said = {"kind": "rapid_antigen", "result": "negative", "taken_at": taken.isoformat()}
    body = {"full_name": "Cao Thị Yến", "phone": "0917 000 001", "last_test": said}

    async def declared() -> dict[str, Any]:
        resp = await client.post("/api/v1/declarations", json=declaration(desk.site_id, **body))
        assert resp.status == 201, await resp.text()
        out: dict[str, Any] = await resp.json()
        return out

    first = await declared()
    # A declared test with no official record that day is a mismatch too.
    assert (first["status"], [r["code"] for r in first["reasons"]]) == (
        "rejected",
        ["test_required", "declaration_mismatch"],
    )
    await call(
        client,
        "POST",
        "/api/v1/tests",
        desk.health,
        201,
        person_id=await filed_for(client, first),
        kind="rapid",
        taken_at=taken.isoformat(),
        result="negative",
        source="Trạm y tế phường",
    )
    again = await declared()
    assert (again["status"], again["reasons"]) == ("cleared", [])


async def test_the_retention_purge_takes_old_health_records_but_not_a_hold_in_force(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    desk = await make_desk(factory)
    a, b = await overlapping_pair(client, desk)
    case = await new_case(client, desk, a)
    url = f"/api/v1/cases/{case['id']}/contacts/suspend"
    await call(client, "POST", url, desk.health, 200, all=True)
    await call(
        client,
        "POST",
        "/api/v1/tests",
        desk.health,
        201,
        person_id=b.person_id,
        kind="pcr",
        taken_at=datetime.now(UTC).isoformat(),
        result="negative",
        source="CDC",
    )
    later = datetime.now(UTC) + timedelta(hours=1)  # everything so far is "old"
    report = await purge(conn, older_than=later, actor="test")
    assert report is not None
    assert report.health_records_deleted == 2  # b's lifted suspension and b's test
    assert await door(client, desk.entrance, a) == ("deny", "case_confirmed")
    await call(
        client,
        "POST",
        f"/api/v1/sites/{desk.site_id}/suspensions/clear",
        desk.health,
        200,
        cause="case_confirmed",
        person_ids=[a.person_id],
        note="Khỏi bệnh, có giấy ra viện",
    )
    report = await purge(conn, older_than=later, actor="test")
    assert report is not None and report.health_records_deleted == 2  # a's hold, the case
    left = await conn.fetchval(
        "SELECT (SELECT count(*) FROM suspensions) + (SELECT count(*) FROM health_cases)"
        " + (SELECT count(*) FROM official_tests)"
    )
    assert left == 0


async def test_an_official_positive_for_someone_known_nowhere_says_no_case_was_recorded(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    nobody = await factory.person()
    got = await call(
        client,
        "POST",
        "/api/v1/tests",
        desk.admin,
        201,
        person_id=nobody,
        kind="pcr",
        taken_at=datetime.now(UTC).isoformat(),
        result="positive",
        source="CDC",
    )
    assert got["cases"] == [] and "no case" in got["no_case"]
    # A site's officer does not see them at all.
    await call(
        client,
        "POST",
        "/api/v1/tests",
        desk.health,
        404,
        person_id=nobody,
        kind="pcr",
        taken_at=datetime.now(UTC).isoformat(),
        result="positive",
        source="CDC",
    )
