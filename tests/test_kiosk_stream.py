"""The kiosk socket: hello, scans answered on the same socket, bad messages answered
with an error while the socket stays open, heartbeats kept."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from service.identity.login_watch import CHECK_INTERVAL_S, CLOSE_CODE, TOKEN_REVOKED
from service.web.auth import revoke_token
from tests.checkin_helpers import Door, make_door, scan_body
from tests.factory import Factory, bearer


async def test_kiosk_socket_round_trip(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door: Door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    async with client.ws_connect(
        "/api/v1/kiosk/stream", headers=bearer(door.kiosk[door.entrance])
    ) as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "hello"
        assert hello["gate"] == {
            "id": door.entrance,
            "name": "Cổng A",
            "direction": "entrance",
            "offline_policy": "deny",
        }

        await ws.send_str("{not json")
        assert (await ws.receive_json())["code"] == "invalid_message"
        await ws.send_json({"type": "dance"})
        assert (await ws.receive_json())["code"] == "invalid_message"
        await ws.send_json({"type": "scan", "event_id": "nope", "payload": 1})
        error = await ws.receive_json()
        assert error["code"] == "invalid_message"
        assert {f["field"] for f in error["fields"]} == {"event_id", "payload", "seen_at"}
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive_json())["code"] == "invalid_message"
        # A kiosk cannot name another gate: the gate comes from its token.
        await ws.send_json({"type": "scan", "gate_id": door.exit, **scan_body(payload)})
        assert (await ws.receive_json())["code"] == "invalid_message"

        body = scan_body(payload)
        await ws.send_json({"type": "scan", **body})
        decision = await ws.receive_json()
        assert decision["type"] == "decision" and decision["event_id"] == body["event_id"]
        assert decision["decision"] == "allow"

        oversized = scan_body("CG1:" + "A" * 20000)
        await ws.send_json({"type": "scan", **oversized})
        assert (await ws.receive_json())["reason"] == "malformed"

        await ws.send_json(
            {
                "type": "heartbeat",
                "fps": 29.5,
                "decode_attempts": 10,
                "decode_successes": 2,
                "outbox_depth": 0,
                "camera_up": True,
            }
        )
        await ws.send_json({"type": "scan", **scan_body("junk")})
        assert (await ws.receive_json())["reason"] == "malformed"  # still open and serving
        assert not ws.closed

    # A heartbeat has no answer: it is recorded while the socket goes on, maybe after
    # the answers that followed it.
    for _ in range(100):
        report = await conn.fetchval("SELECT report FROM kiosk_health")
        if report is not None:
            break
        await asyncio.sleep(0.05)
    assert report is not None and report["fps"] == 29.5
    detail = await conn.fetchval(
        "SELECT detail FROM events WHERE event_id = $1", uuid.UUID(oversized["event_id"])
    )
    assert detail["payload_len"] == 20004 and len(detail["payload_head"]) == 256


async def test_batch_endpoint_replays_in_order(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    scans = [scan_body(payload), scan_body(payload)]
    resp = await client.post(
        "/api/v1/scans/batch", json={"scans": scans}, headers=bearer(door.kiosk[door.entrance])
    )
    assert resp.status == 200, await resp.text()
    decisions = (await resp.json())["decisions"]
    assert [d["reason"] for d in decisions] == ["welcome", "already_inside"]
    # Replaying the same batch changes nothing and answers the same.
    again = await client.post(
        "/api/v1/scans/batch", json={"scans": scans}, headers=bearer(door.kiosk[door.entrance])
    )
    assert [(d["reason"], d["duplicate"]) for d in (await again.json())["decisions"]] == [
        ("welcome", True),
        ("already_inside", True),
    ]


async def test_offline_verdict_replayed_is_what_happened(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    pass_id, payload = await factory.issued_pass(door.key, door.site_id)
    await conn.execute(
        "UPDATE passes SET revoked_at = now(), revoked_reason = 'F1' WHERE id = $1", pass_id
    )
    body = scan_body(payload, offline={"verdict": "allow", "reason": "offline_allowed"})
    resp = await client.post(
        "/api/v1/scans/batch", json={"scans": [body]}, headers=bearer(door.kiosk[door.entrance])
    )
    (decision,) = (await resp.json())["decisions"]
    assert (decision["decision"], decision["reason"]) == ("allow", "offline_allowed")
    detail = await conn.fetchval(
        "SELECT detail FROM events WHERE event_id = $1", uuid.UUID(body["event_id"])
    )
    assert detail["server_verdict"] == {"decision": "deny", "reason": "pass_revoked"}
    assert await conn.fetchval("SELECT count(*) FROM presence WHERE exited_at IS NULL") == 1


async def test_kiosk_token_cannot_open_the_console_feed(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    door = await make_door(factory)
    resp = await client.get(
        f"/api/v1/events/stream?site_id={door.site_id}", headers=bearer(door.kiosk[door.entrance])
    )
    assert resp.status == 403


async def test_batch_limits(client: TestClient[Any, Any], factory: Factory) -> None:
    door = await make_door(factory)
    headers = bearer(door.kiosk[door.entrance])
    too_many = {"scans": [scan_body("x") for _ in range(501)]}
    resp = await client.post("/api/v1/scans/batch", json=too_many, headers=headers)
    assert resp.status == 422
    resp = await client.post("/api/v1/scans/batch", json={"scans": []}, headers=headers)
    assert resp.status == 422


async def test_closing_the_socket_mid_scan_loses_nothing(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    ws = await client.ws_connect("/api/v1/kiosk/stream", headers=bearer(door.kiosk[door.entrance]))
    await ws.receive_json()
    bodies = [scan_body("junk") for _ in range(10)]
    for body in bodies:
        await ws.send_json({"type": "scan", **body})
    await ws.close()
    assert ws.closed and (await ws.receive()).type in (WSMsgType.CLOSED, WSMsgType.CLOSE)
    # What was received is decided and recorded even though nobody hears the answer
    # (the kiosk replays those and gets duplicates).
    for _ in range(200):
        recorded = await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'scan'")
        if recorded == 10:
            break
        await asyncio.sleep(0.05)
    assert recorded == 10


async def test_a_replay_that_says_the_door_did_otherwise_is_recorded_as_a_correction(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    """The live answer came too late: the kiosk had applied its offline policy (deny)
    and kept the door shut, then replays the scan with that verdict."""
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    kiosk = bearer(door.kiosk[door.entrance])
    body = scan_body(payload)
    live = await client.post("/api/v1/scans", json=body, headers=kiosk)
    assert (await live.json())["reason"] == "welcome"
    assert await conn.fetchval("SELECT count(*) FROM presence") == 1

    replay = body | {"offline": {"verdict": "deny", "reason": "offline_denied"}}
    resp = await client.post("/api/v1/scans/batch", json={"scans": [replay]}, headers=kiosk)
    (answer,) = (await resp.json())["decisions"]
    assert answer["duplicate"] is True
    row = await conn.fetchrow(
        "SELECT decision, reason, detail FROM events WHERE kind = 'door_correction'"
    )
    assert (row["decision"], row["reason"]) == ("deny", "offline_denied")
    assert row["detail"]["recorded"] == {"decision": "allow", "reason": "welcome"}
    assert await conn.fetchval("SELECT count(*) FROM presence") == 0  # never went in
    # Replaying again corrects nothing more.
    await client.post("/api/v1/scans/batch", json={"scans": [replay]}, headers=kiosk)
    assert await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'door_correction'") == 1


async def test_a_revoked_kiosk_token_closes_its_socket_and_only_it(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door: Door = await make_door(factory)
    async with (
        client.ws_connect(
            "/api/v1/kiosk/stream", headers=bearer(door.kiosk[door.entrance])
        ) as gone,
        client.ws_connect("/api/v1/kiosk/stream", headers=bearer(door.kiosk[door.exit])) as kept,
    ):
        for ws in (gone, kept):
            assert (await ws.receive_json())["type"] == "hello"
        assert await revoke_token(conn, token=door.kiosk[door.entrance])
        closing = await gone.receive(timeout=CHECK_INTERVAL_S + 2.0)
        assert (closing.type, closing.data, closing.extra) == (
            WSMsgType.CLOSE,
            CLOSE_CODE,
            TOKEN_REVOKED,
        )
        await kept.send_json({"type": "scan", **scan_body("junk")})
        assert (await kept.receive_json())["reason"] == "malformed"  # still serving
    # Reconnecting with it is refused.
    resp = await client.get("/api/v1/kiosk/stream", headers=bearer(door.kiosk[door.entrance]))
    assert resp.status == 401
