"""A declaration that contradicts the official record goes to review with the reason
`declaration_mismatch`, counted per person and shown to the site's health officer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.declaring import declaration
from tests.factory import Factory, bearer
from tests.health_helpers import Client, call, declare, make_desk, official_test


async def redeclare(client: Client, site_id: int, key: str, **answers: Any) -> dict[str, Any]:
    body = declaration(
        site_id, full_name="Lý Thị Hoa", phone="0916 000 001", redeclare_key=key, **answers
    )
    resp = await client.post("/api/v1/declarations", json=body)
    assert resp.status == 201, await resp.text()
    out: dict[str, Any] = await resp.json()
    return out


async def test_a_declared_negative_over_an_official_positive_is_reviewed_and_counted(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    who = await declare(client, desk.site_id, "Lý Thị Hoa", "0916 000 001")
    now = datetime.now(UTC)
    await official_test(client, desk.health, who.person_id, "positive", now - timedelta(days=2))
    # A negative of their own, newer than the official positive: not believed blindly.
    said = {"kind": "rapid_antigen", "result": "negative", "taken_at": now.isoformat()}
    answer = await redeclare(client, desk.site_id, who.redeclare_key, last_test=said)
    assert answer["status"] == "review"
    (mismatch,) = answer["reasons"]
    assert mismatch["code"] == "declaration_mismatch"
    assert mismatch["message_vi"].startswith("Khai báo xét nghiệm của bạn không khớp")
    assert mismatch["message_en"].startswith("Your declared test does not match")
    queue = await call(client, "GET", f"/api/v1/sites/{desk.site_id}/reviews", desk.health, 200)
    (item,) = queue["declarations"]
    assert (item["person_id"], item["mismatches"]) == (who.person_id, 1)
    # Once more, counted twice; the person's health view says so too.
    again = await redeclare(client, desk.site_id, answer["redeclare_key"], last_test=said)
    assert again["status"] == "review"
    view = await call(client, "GET", f"/api/v1/people/{who.person_id}/tests", desk.health, 200)
    assert view["mismatches"] == 2
    (item,) = (
        await call(client, "GET", f"/api/v1/sites/{desk.site_id}/reviews", desk.health, 200)
    )["declarations"]
    assert item["mismatches"] == 2
    # Another site's officer sees nothing of it.
    other = await make_desk(factory)
    await call(client, "GET", f"/api/v1/people/{who.person_id}/tests", other.health, 404)


async def test_a_clean_declaration_and_an_old_positive_are_no_mismatch(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    who = await declare(client, desk.site_id, "Lý Thị Hoa", "0916 000 001")
    now = datetime.now(UTC)
    for taken, result in ((now - timedelta(days=20), "positive"), (now, "negative")):
        await official_test(client, desk.admin, who.person_id, result, taken, site_id=desk.site_id)
    said = {"kind": "pcr", "result": "negative", "taken_at": now.isoformat()}
    answer = await redeclare(client, desk.site_id, who.redeclare_key, last_test=said)
    assert [r["code"] for r in answer["reasons"]] == []
    view = await call(client, "GET", f"/api/v1/people/{who.person_id}/tests", desk.health, 200)
    assert view["mismatches"] == 0


async def test_where_official_results_are_required_a_test_day_without_a_record_is_a_mismatch(
    client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    resp = await client.put(
        f"/api/v1/sites/{desk.site_id}/rules",
        json={"official_tests_required": True},
        headers=bearer(desk.admin),
    )
    assert resp.status == 200, await resp.text()
    who = await declare(client, desk.site_id, "Lý Thị Hoa", "0916 000 001")
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    said = {"kind": "pcr", "result": "negative", "taken_at": day}
    answer = await redeclare(client, desk.site_id, who.redeclare_key, last_test=said)
    assert (answer["status"], [r["code"] for r in answer["reasons"]]) == (
        "review",
        ["declaration_mismatch"],
    )
