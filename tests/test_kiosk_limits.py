"""A kiosk token's limits: HTTP scans at a rate (429 with Retry-After), a few sockets
(the oldest closed with 1008); and the real kiosk link (scanner/link.py) replaying an
outage's backlog through them without a refusal, or waiting as told and losing nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from scanner.link import Link
from scanner.outbox import AsyncOutbox, Outbox, Scan
from scanner.scan_life import ScanLife
from tests.checkin_helpers import make_door, scan_body
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]
BATCH = "/api/v1/scans/batch"


def junk(n: int) -> list[dict[str, Any]]:
    return [scan_body(f"junk {i}") for i in range(n)]


async def recorded(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT event_id FROM events WHERE kind = 'scan' ORDER BY id")
    return [str(r["event_id"]) for r in rows]


def link_for(session: aiohttp.ClientSession, base: str, token: str, outbox: AsyncOutbox) -> Link:
    scans = ScanLife(outbox, ack_timeout=1.0)
    return Link(session, base, token, scans, on_hello=lambda _: None, heartbeat=dict)


def outbox_with(path: Path, n: int) -> tuple[AsyncOutbox, list[str]]:
    box = Outbox(path)
    scans = [Scan.new(f"offline junk {i}", seen_at=datetime.now(UTC)) for i in range(n)]
    for scan in scans:
        box.add(scan)
    return AsyncOutbox(box), [s.event_id for s in scans]


@pytest.mark.limits(kiosk_http_scans_per_second=1)
async def test_http_scans_over_the_rate_get_429_with_retry_after(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    kiosk = bearer(door.kiosk[door.entrance])
    # Whatever the rate, a full batch fits in the bucket: a replay is never stuck.
    full = await client.post(BATCH, json={"scans": junk(500)}, headers=kiosk)
    assert full.status == 200, await full.text()
    for path, body in (("/api/v1/scans", scan_body("late")), (BATCH, {"scans": junk(2)})):
        resp = await client.post(path, json=body, headers=kiosk)
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        error = (await resp.json())["error"]
        assert error["code"] == "scan_rate_limited" and error["message_vi"]
    assert len(await recorded(conn)) == 500  # the refused ones are not recorded
    # The limit is the token's: another kiosk is not slowed.
    other = await client.post(
        "/api/v1/scans", json=scan_body("x"), headers=bearer(door.kiosk[door.exit])
    )
    assert other.status == 200


async def test_the_kiosk_replays_a_long_outage_without_a_refusal(
    client: Client, factory: Factory, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """Default limits; 1,200 scans taken offline (an hour of a busy door) go at once."""
    door = await make_door(factory)
    outbox, ids = outbox_with(tmp_path / "outbox.sqlite3", 1200)
    async with aiohttp.ClientSession() as session:
        link = link_for(session, str(client.make_url("")), door.kiosk[door.entrance], outbox)
        assert await link.replay() is True  # never paused by a 429
    assert await recorded(conn) == ids
    assert outbox.depth == 0
    outbox.close()


@pytest.mark.limits(kiosk_http_scans_per_second=1)
async def test_a_kiosk_told_to_wait_waits_and_loses_nothing(
    client: Client, factory: Factory, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    door = await make_door(factory)
    token = door.kiosk[door.entrance]
    drained = await client.post(BATCH, json={"scans": junk(500)}, headers=bearer(token))
    assert drained.status == 200
    outbox, ids = outbox_with(tmp_path / "outbox.sqlite3", 3)
    async with aiohttp.ClientSession() as session:
        link = link_for(session, str(client.make_url("")), token, outbox)
        assert await link.replay() is False  # 429: nothing sent, all kept
        assert outbox.depth == 3
        assert await link.replay() is False  # still within Retry-After: not even asked
        assert 0 < link.paused_s <= 3  # Retry-After: 3 scans at 1 a second at most
        await asyncio.sleep(link.paused_s)
        assert await link.replay() is True
    assert (await recorded(conn))[500:] == ids  # once each, in order
    assert outbox.depth == 0
    outbox.close()


@pytest.mark.limits(kiosk_sockets_per_token=2)
async def test_a_socket_beyond_the_limit_closes_the_oldest_with_1008(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    kiosk = bearer(door.kiosk[door.entrance])
    oldest, middle = [await client.ws_connect("/api/v1/kiosk/stream", headers=kiosk) for _ in "ab"]
    for ws in (oldest, middle):
        assert (await ws.receive_json())["type"] == "hello"
    other = await client.ws_connect("/api/v1/kiosk/stream", headers=bearer(door.kiosk[door.exit]))
    await other.receive_json()
    # The kiosk reconnects while its old sockets still look open here: the oldest goes.
    newest = await client.ws_connect("/api/v1/kiosk/stream", headers=kiosk)
    assert (await newest.receive_json())["type"] == "hello"
    closing = await oldest.receive(timeout=10)
    assert closing.type == WSMsgType.CLOSE
    assert (closing.data, closing.extra) == (
        1008,
        "replaced: a newer socket of this kiosk token opened",
    )
    for ws in (middle, newest, other):  # the others keep working
        body = scan_body("junk", event_id=str(uuid.uuid4()))
        await ws.send_json({"type": "scan", **body})
        assert (await ws.receive_json(timeout=10))["event_id"] == body["event_id"]
    for ws in (oldest, middle, newest, other):
        await ws.close()
