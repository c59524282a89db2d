"""A door that opened offline against its gate's policy: the replayed event is marked,
the mark reaches the consoles' feed and the exports. (The real kiosk doing it:
tests/test_scanner_e2e.py; the console's alert: tests/test_console_browser.py.)"""

from __future__ import annotations

import csv
import io
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service.web.auth import Role
from tests.checkin_helpers import Door, make_door, scan_body
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]
ALLOWED_OFFLINE = {"verdict": "allow", "reason": "offline_allowed"}


async def replay(client: Client, token: str, *bodies: dict[str, Any]) -> list[dict[str, Any]]:
    """Scans as the kiosk replays them after an outage (POST /api/v1/scans/batch)."""
    resp = await client.post(
        "/api/v1/scans/batch", json={"scans": list(bodies)}, headers=bearer(token)
    )
    assert resp.status == 200, await resp.text()
    decisions: list[dict[str, Any]] = (await resp.json())["decisions"]
    return decisions


async def flags(conn: asyncpg.Connection, kind: str = "scan") -> dict[str, str | None]:
    rows = await conn.fetch("SELECT event_id, detail FROM events WHERE kind = $1", kind)
    return {str(r["event_id"]): r["detail"].get("offline_against_policy") for r in rows}


async def verify_offline(conn: asyncpg.Connection, gate_id: int) -> None:
    await conn.execute("UPDATE gates SET offline_policy = 'verify-offline' WHERE id = $1", gate_id)


async def test_an_offline_allow_at_a_deny_gate_is_marked(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)  # gates are `deny` offline by default
    _, payload = await factory.issued_pass(door.key, door.site_id)
    allowed = scan_body(payload, offline=ALLOWED_OFFLINE)
    denied = scan_body(payload, offline={"verdict": "deny", "reason": "offline_denied"})
    answers = await replay(client, door.kiosk[door.entrance], allowed, denied)
    assert [a["decision"] for a in answers] == ["allow", "deny"]  # what the door did
    assert await flags(conn) == {allowed["event_id"]: "gate_policy_deny", denied["event_id"]: None}


async def test_at_a_verify_offline_gate_only_what_is_no_valid_pass_is_marked(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    await verify_offline(conn, door.entrance)
    _, good = await factory.issued_pass(door.key, door.site_id)
    _, elsewhere = await factory.issued_pass(door.key, await factory.site())
    bodies = [scan_body(p, offline=ALLOWED_OFFLINE) for p in (good, elsewhere, "https://x.vn")]
    await replay(client, door.kiosk[door.entrance], *bodies)
    assert await flags(conn) == {
        bodies[0]["event_id"]: None,
        bodies[1]["event_id"]: "not_a_valid_pass",  # another site's pass
        bodies[2]["event_id"]: "not_a_valid_pass",  # no pass at all
    }


async def test_a_late_answer_corrected_to_an_offline_allow_is_marked(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    """The live answer (deny) came after the kiosk had let the person in on its own."""
    door = await make_door(factory)
    body = scan_body("not a pass")
    live = await client.post("/api/v1/scans", json=body, headers=bearer(door.kiosk[door.exit]))
    assert (await live.json())["decision"] == "deny"
    await replay(client, door.kiosk[door.exit], body | {"offline": ALLOWED_OFFLINE})
    assert list((await flags(conn, "door_correction")).values()) == ["gate_policy_deny"]


async def test_the_mark_reaches_the_feed_and_the_export(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door: Door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    url = f"/api/v1/events/stream?site_id={door.site_id}&after_seq=0"
    async with client.ws_connect(url, headers=bearer(door.guard)) as console:
        assert (await console.receive_json())["type"] == "hello"
        plain, breach = scan_body(payload), scan_body(payload, offline=ALLOWED_OFFLINE)
        await replay(client, door.kiosk[door.entrance_b], plain, breach)
        events = [await console.receive_json(timeout=10) for _ in range(2)]
    by_id = {e["event_id"]: e for e in events}
    assert "offline_against_policy" not in by_id[plain["event_id"]]
    assert by_id[breach["event_id"]]["offline_against_policy"] == "gate_policy_deny"

    auditor = bearer(await factory.token(Role.AUDITOR, site_id=door.site_id))
    resp = await client.get(
        f"/api/v1/audit/events?format=csv&site_id={door.site_id}", headers=auditor
    )
    assert resp.status == 200, await resp.text()
    rows = list(csv.DictReader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    marked = [r["event_id"] for r in rows if "gate_policy_deny" in r["detail"]]
    assert marked == [breach["event_id"]]
