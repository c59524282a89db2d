"""Guards and admins at the door: overrides, manual exits, the deny list, presence,
kiosk health; and the door when the database goes away and comes back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from aiohttp.test_utils import TestClient

from service.events.log import verify_chain
from tests.checkin_helpers import Door, make_door, scan
from tests.factory import Factory, bearer


async def test_guard_overrides_a_denial_once(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door: Door = await make_door(factory)
    person = await factory.person(full_name="Trần Thị Bình")
    decl = await factory.declaration(person, door.site_id, status="review")
    _, payload = await factory.issued_pass(
        door.key, door.site_id, person_id=person, declaration_id=decl
    )
    denied = await scan(client, door.kiosk[door.entrance], payload)
    assert denied["reason"] == "declaration_review"

    guard = bearer(door.guard)
    resp = await client.post(
        "/api/v1/overrides", json={"event_id": denied["event_id"]}, headers=guard
    )
    assert resp.status == 422  # a reason is required
    body = {"event_id": denied["event_id"], "reason": "Cán bộ y tế đã xác nhận"}
    resp = await client.post("/api/v1/overrides", json=body, headers=guard)
    assert resp.status == 201, await resp.text()
    assert (await client.post("/api/v1/overrides", json=body, headers=guard)).status == 409

    row = await conn.fetchrow("SELECT actor, detail, decision FROM events WHERE kind = 'override'")
    assert row["decision"] == "allow" and row["actor"].startswith("guard:")
    assert row["detail"]["reason"] == "Cán bộ y tế đã xác nhận"
    presence = await (
        await client.get(f"/api/v1/sites/{door.site_id}/presence", headers=guard)
    ).json()
    assert presence["inside"] == 1 and presence["people"][0]["full_name"] == "Trần Thị Bình"
    assert (await verify_chain(conn, door.site_id)).broken is None


async def test_override_of_an_allowed_scan_or_another_site_is_refused(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    door = await make_door(factory)
    other = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    allowed = await scan(client, door.kiosk[door.entrance], payload)
    body = {"event_id": allowed["event_id"], "reason": "thử"}
    resp = await client.post("/api/v1/overrides", json=body, headers=bearer(door.guard))
    assert (await resp.json())["error"]["code"] == "not_denied"
    denied = await scan(client, door.kiosk[door.entrance], "junk")
    body = {"event_id": denied["event_id"], "reason": "quen dien thoai"}
    resp = await client.post("/api/v1/overrides", json=body, headers=bearer(other.guard))
    assert resp.status == 403
    resp = await client.post("/api/v1/overrides", json=body, headers=bearer(door.guard))
    assert (await resp.json())["error"]["code"] == "person_required"


async def test_manual_exit_closes_the_stay(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    person = await factory.person()
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    await scan(client, door.kiosk[door.entrance], payload)
    url = f"/api/v1/sites/{door.site_id}/presence/{person}/exit"
    resp = await client.post(url, json={"reason": "Ra cùng đoàn khách"}, headers=bearer(door.guard))
    assert resp.status == 201, await resp.text()
    assert (await conn.fetchval("SELECT exit_kind FROM presence")) == "manual"
    again = await client.post(url, json={"reason": "again"}, headers=bearer(door.guard))
    assert (await again.json())["error"]["code"] == "not_inside"


async def test_deny_list_add_and_remove(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    person = await factory.person()
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    admin = bearer(door.admin)
    body = {"person_id": person, "site_id": door.site_id, "reason": "Khai báo gian dối"}
    resp = await client.post("/api/v1/deny-list", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    entry = (await resp.json())["id"]
    assert (await client.post("/api/v1/deny-list", json=body, headers=admin)).status == 409
    assert (await scan(client, door.kiosk[door.entrance], payload))["reason"] == "deny_listed"
    listed = await (await client.get("/api/v1/deny-list", headers=bearer(door.guard))).json()
    assert [e["person_id"] for e in listed["entries"]] == [person]
    resp = await client.post(
        f"/api/v1/deny-list/{entry}/remove", json={"reason": "Đã xác minh"}, headers=admin
    )
    assert resp.status == 204
    assert (await scan(client, door.kiosk[door.entrance], payload))["reason"] == "welcome"
    kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM events ORDER BY seq")]
    assert kinds == ["deny_list_add", "scan", "deny_list_remove", "scan"]


async def test_kiosk_health_shows_online_and_silent_kiosks(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    beat = {"fps": 30, "decode_attempts": 100, "decode_successes": 3, "camera_up": True}
    resp = await client.post(
        "/api/v1/kiosk/heartbeat", json=beat, headers=bearer(door.kiosk[door.entrance])
    )
    assert resp.status == 204
    await client.post("/api/v1/kiosk/heartbeat", json=beat, headers=bearer(door.kiosk[door.exit]))
    await conn.execute(
        "UPDATE kiosk_health SET reported_at = now() - interval '5 minutes' WHERE gate_id = $1",
        door.exit,
    )
    resp = await client.get(f"/api/v1/sites/{door.site_id}/kiosks", headers=bearer(door.guard))
    kiosks = {k["gate_id"]: k for k in (await resp.json())["kiosks"]}
    assert kiosks[door.entrance]["online"] is True and kiosks[door.entrance]["report"]["fps"] == 30
    assert kiosks[door.exit]["online"] is False
    assert kiosks[door.entrance_b]["last_heartbeat"] is None


async def test_database_away_gives_service_unavailable_then_recovers(
    client: TestClient[Any, Any], factory: Factory, db_url: str, server_url: str
) -> None:
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    await factory.conn.close()
    name = urlsplit(db_url).path.lstrip("/")
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        kiosk = bearer(door.kiosk[door.entrance])
        body = {
            "event_id": "6f1c1f0e-6f7e-4b7b-9a39-3d1f3f1d2b10",
            "payload": payload,
            "seen_at": "2030-01-01T00:00:00+00:00",
        }
        resp = await client.post("/api/v1/scans", json=body, headers=kiosk)
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "service_unavailable"
        assert (await client.get("/readyz")).status == 503
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        for _ in range(50):
            if (await client.get("/readyz")).status == 200:
                break
            await asyncio.sleep(0.1)
        resp = await client.post("/api/v1/scans", json=body, headers=kiosk)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["decision"] == "allow"
    finally:
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        finally:
            await admin.close()


async def test_an_http_heartbeat_with_its_send_time_is_answered_with_the_service_s_time(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    door = await make_door(factory)
    sent = datetime.now(UTC).isoformat()
    resp = await client.post(
        "/api/v1/kiosk/heartbeat",
        json={"fps": 30, "sent_at": sent},
        headers=bearer(door.kiosk[door.entrance]),
    )
    assert resp.status == 200
    answer = await resp.json()
    assert answer["type"] == "time" and answer["sent_at"] == sent
    skew = datetime.fromisoformat(answer["server_time"]) - datetime.fromisoformat(sent)
    assert timedelta(0) <= skew < timedelta(seconds=30)  # the same machine's clock
