"""The journey of the `make run` demo: declare, get a pass, scan it at the door."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp.test_utils import TestClient

from service.cli.demo import seed_demo
from service.events.log import verify_chain
from service.identity.accounts import login_state, set_password
from service.web.auth import lookup_token, revoke_token
from tests.checkin_helpers import scan
from tests.declaring import declaration
from tests.factory import bearer
from tests.test_declare_form import form, post


async def test_declare_then_scan_twice_and_the_guard_sees_both(
    client: TestClient[Any, Any], conn: asyncpg.Connection, tmp_path: Path
) -> None:
    demo = await seed_demo(conn, tmp_path / "demo.json")
    resp = await client.post("/api/v1/declarations", json=declaration(demo.site_id))
    assert resp.status in (200, 201), await resp.text()
    declared = await resp.json()
    assert declared["status"] == "cleared"
    payload = declared["pass"]["payload"]

    url = f"/api/v1/events/stream?site_id={demo.site_id}"
    async with client.ws_connect(url, headers=bearer(demo.tokens["guard"])) as console:
        assert (await console.receive_json())["type"] == "hello"
        first = await scan(client, demo.tokens["kiosk-entrance"], payload)
        second = await scan(client, demo.tokens["kiosk-entrance"], payload)
        seen = []
        while len(seen) < 2:
            event = await asyncio.wait_for(console.receive_json(), 5)
            if event.get("kind") == "scan":
                seen.append(event)
    assert (first["decision"], first["reason"]) == ("allow", "welcome")
    assert (second["decision"], second["reason"]) == ("deny", "already_inside")
    assert [e["event_id"] for e in seen] == [first["event_id"], second["event_id"]]
    out = await scan(client, demo.tokens["kiosk-exit"], payload)
    assert (out["decision"], out["reason"]) == ("allow", "goodbye")
    assert (await verify_chain(conn, demo.site_id)).broken is None


def staff_declaration(site_id: int, member: Any, **overrides: Any) -> dict[str, Any]:
    """As the README tells staff: kind staff, their name and the phone of the staff list,
    no visitor part."""
    return (
        declaration(
            site_id,
            kind="staff",
            full_name=member.full_name,
            phone=member.phone,
            host_name=None,
            purpose=None,
        )
        | overrides
    )


async def test_demo_staff_declare_as_staff_and_get_a_pass_by_their_test_rule(
    client: TestClient[Any, Any], conn: asyncpg.Connection, tmp_path: Path
) -> None:
    demo = await seed_demo(conn, tmp_path / "demo.json")
    by_risk = {s.risk_level: (s, days) for s, days in demo.staff}
    assert sorted(by_risk) == ["high", "low", "very_high"]
    assert (by_risk["very_high"][1], by_risk["high"][1], by_risk["low"][1]) == (1, 7, None)

    low, _ = by_risk["low"]
    resp = await client.post("/api/v1/declarations", json=staff_declaration(demo.site_id, low))
    assert resp.status in (200, 201), await resp.text()
    declared = await resp.json()
    assert declared["status"] == "cleared" and declared["pass"]["payload"]
    entered = await scan(client, demo.tokens["kiosk-entrance"], declared["pass"]["payload"])
    assert (entered["decision"], entered["reason"]) == ("allow", "welcome")

    very_high, _ = by_risk["very_high"]
    untested = await client.post(
        "/api/v1/declarations", json=staff_declaration(demo.site_id, very_high)
    )
    body = await untested.json()
    assert body["status"] == "rejected" and body.get("pass") is None
    assert [r["code"] for r in body["reasons"]] == ["test_required"]
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    test = {"kind": "rapid_antigen", "result": "negative", "taken_at": today}
    tested = await client.post(
        "/api/v1/declarations",
        json=staff_declaration(demo.site_id, very_high, last_test=test),
    )
    assert (await tested.json())["status"] == "cleared"

    # The same on the web form: "Staff", the phone, the visitor part left empty.
    high, _ = by_risk["high"]
    pairs = form(
        demo.site_id,
        lang="en",
        kind="staff",
        full_name=high.full_name,
        phone=high.phone,
        host_name="",
        purpose="",
        last_test_kind="pcr",
        last_test_result="negative",
        last_test_taken_at=today,
    )
    status, page = await post(client, pairs)
    assert status == 200 and "Cleared to enter" in page, page
    assert 'class="qr"' in page


async def test_demo_start_keeps_what_works_and_says_what_it_changed(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    credentials = tmp_path / "demo.json"
    first = await seed_demo(conn, credentials)
    assert first.notes == []  # a new demo site: nothing to explain
    await revoke_token(conn, token=first.tokens["kiosk-exit"])
    await set_password(conn, "admin", "chosen by the admin")
    again = await seed_demo(conn, credentials)
    assert again.notes == [
        "The saved kiosk-exit token was revoked: this is a new one.",
        "The console login admin was changed since the demo made it: its password is not "
        "shown (--reset-demo sets a new one).",
    ]
    assert again.tokens["kiosk-exit"] != first.tokens["kiosk-exit"]
    assert {p: t for p, t in again.tokens.items() if p != "kiosk-exit"} == {
        p: t for p, t in first.tokens.items() if p != "kiosk-exit"
    }
    assert again.login_states == {"guard": "ok", "admin": "changed"}
    assert await login_state(conn, "admin", "chosen by the admin") == "ok"  # left alone
    assert await login_state(conn, "guard", first.logins["guard"]) == "ok"
    # The staff are imported once, not again at every start.
    imports = "SELECT count(*) FROM events WHERE detail->>'action' = 'staff_import'"
    assert await conn.fetchval(imports) == 1
    reset = await seed_demo(conn, credentials, reset=True)
    assert await lookup_token(conn, again.tokens["admin"]) is None
    assert await login_state(conn, "admin", reset.logins["admin"]) == "ok"
    assert reset.login_states == {"guard": "ok", "admin": "ok"}
