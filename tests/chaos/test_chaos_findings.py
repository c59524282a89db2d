"""What the chaos runs found, pinned down one case at a time (quick, deterministic)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from scanner.outbox import Outbox, Scan
from service.app import create_app
from service.events.fanout import FANOUT_KEY
from service.platform.db import DB_KEY
from service.platform.settings import Settings
from tests.checkin_helpers import Door, make_door, scan, scan_body
from tests.factory import Factory, bearer

DENIED = {"verdict": "deny", "reason": "offline_denied"}


def test_a_late_answer_against_the_kiosks_own_verdict_keeps_the_scan(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    judged, answered = (Scan.new("CG1:x", seen_at=datetime.now(UTC)) for _ in range(2))
    outbox.add(judged)
    outbox.add(answered)
    outbox.set_offline(judged.event_id, "deny", "offline_denied")  # the door stayed shut
    assert outbox.settle(judged.event_id, "allow") is True  # kept: replay it with the verdict
    assert outbox.pending()[0].offline == DENIED
    assert outbox.settle(judged.event_id, "deny") is False  # the record agrees: gone
    assert outbox.settle(answered.event_id, "allow") is False  # answered in time: gone
    assert outbox.pending() == []


async def replay_with_the_doors_verdict(
    client: TestClient[Any, Any], token: str, body: dict[str, Any]
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/scans/batch",
        json={"scans": [body | {"offline": DENIED}]},
        headers=bearer(token),
    )
    assert resp.status == 200, await resp.text()
    (decision,) = (await resp.json())["decisions"]
    assert decision["duplicate"] is True
    return dict(decision)


async def stays(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT e.event_id::text, x.event_id::text FROM presence p"
        " JOIN events e ON e.id = p.entry_event LEFT JOIN events x ON x.id = p.exit_event"
        " ORDER BY p.id"
    )
    return [tuple(r) for r in rows]


async def test_an_exit_the_door_refused_leaves_the_person_inside(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door: Door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    entry = await scan(client, door.kiosk[door.entrance], payload)
    exit_body = scan_body(payload)
    resp = await client.post("/api/v1/scans", json=exit_body, headers=bearer(door.kiosk[door.exit]))
    assert (await resp.json())["reason"] == "goodbye"  # too late: the door had stayed shut
    assert await stays(conn) == [(entry["event_id"], exit_body["event_id"])]

    await replay_with_the_doors_verdict(client, door.kiosk[door.exit], exit_body)
    assert await stays(conn) == [(entry["event_id"], None)]  # inside, as the door kept them
    again = await scan(client, door.kiosk[door.exit], payload)  # and they can leave
    assert (again["reason"], await stays(conn)) == (
        "goodbye",
        [(entry["event_id"], again["event_id"])],
    )


async def test_an_exit_refused_then_passed_on_a_retry_stays_passed(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    entry = await scan(client, door.kiosk[door.entrance], payload)
    refused = scan_body(payload)
    await client.post("/api/v1/scans", json=refused, headers=bearer(door.kiosk[door.exit]))
    retry = await scan(client, door.kiosk[door.exit], payload)  # this time the door opened
    assert retry["decision"] == "allow"
    await replay_with_the_doors_verdict(client, door.kiosk[door.exit], refused)
    assert await stays(conn) == [(entry["event_id"], refused["event_id"])]  # still outside


async def test_an_entry_the_door_refused_has_no_stay_even_once_closed(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    refused = scan_body(payload)
    resp = await client.post(
        "/api/v1/scans", json=refused, headers=bearer(door.kiosk[door.entrance])
    )
    assert (await resp.json())["reason"] == "welcome"
    await scan(client, door.kiosk[door.exit], payload)  # the stay is closed meanwhile
    second = await scan(client, door.kiosk[door.entrance], payload)  # and another open
    assert len(await stays(conn)) == 2

    await replay_with_the_doors_verdict(client, door.kiosk[door.entrance], refused)
    assert await stays(conn) == [(second["event_id"], None)]  # the open one untouched
    again = await scan(client, door.kiosk[door.entrance], payload)
    assert again["reason"] == "already_inside"


async def test_a_scan_and_its_replay_in_one_batch_record_what_the_door_did(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    live = scan_body(payload)  # still waiting in the service when the replay comes
    resp = await client.post(
        "/api/v1/scans/batch",
        json={"scans": [live, live | {"offline": DENIED}]},
        headers=bearer(door.kiosk[door.entrance]),
    )
    decisions = (await resp.json())["decisions"]
    assert [(d["decision"], d["reason"]) for d in decisions] == [("deny", "offline_denied")] * 2
    row = await conn.fetchrow("SELECT decision, detail FROM events WHERE kind = 'scan'")
    assert (row["decision"], row["detail"]["offline"]) == ("deny", DENIED)
    assert await stays(conn) == []


async def test_the_feed_outlives_a_pool_with_no_connection_free(
    aiohttp_client: Any, settings: Settings, factory: Factory
) -> None:
    tight = Settings(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        pool_max_size=1,
        db_acquire_timeout_s=0.1,
    )
    app: web.Application = create_app(settings=tight)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    async with client.ws_connect(
        f"/api/v1/events/stream?site_id={door.site_id}", headers=bearer(door.guard)
    ) as console:
        assert (await console.receive_json())["type"] == "hello"
        async with app[DB_KEY].connection():  # the only connection, held
            app[FANOUT_KEY].poke({door.site_id: 1})  # the reader finds none free
            await asyncio.sleep(0.5)
        decision = await scan(client, door.kiosk[door.entrance], payload)
        event = await asyncio.wait_for(console.receive_json(), 10)
    assert (event["type"], event["event_id"]) == ("event", decision["event_id"])
