"""Live fan-out: consoles see events from any instance, and resume without gaps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.events.fanout import SUBSCRIBER_BUFFER, LiveEvent, Subscription
from service.platform.settings import Settings
from tests.checkin_helpers import make_door, scan, scan_body
from tests.factory import Factory, bearer


async def receive_events(ws: Any, count: int) -> list[dict[str, Any]]:
    events = []
    while len(events) < count:
        message = await asyncio.wait_for(ws.receive_json(), 10)
        if message["type"] == "event":
            events.append(message)
    return events


async def test_event_recorded_on_one_instance_reaches_a_console_on_another(
    aiohttp_client: Any, settings: Settings, factory: Factory
) -> None:
    instance_a: TestClient[Any, Any] = await aiohttp_client(create_app(settings=settings))
    instance_b: TestClient[Any, Any] = await aiohttp_client(create_app(settings=settings))
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    async with instance_b.ws_connect(
        f"/api/v1/events/stream?site_id={door.site_id}", headers=bearer(door.guard)
    ) as console:
        assert (await console.receive_json())["type"] == "hello"
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = await scan(instance_a, door.kiosk[door.entrance], payload)
        second = await scan(instance_a, door.kiosk[door.entrance], payload)
        events = await receive_events(console, 2)
        assert loop.time() - started < 5
    assert [e["event_id"] for e in events] == [first["event_id"], second["event_id"]]
    assert [e["reason"] for e in events] == ["welcome", "already_inside"]
    assert [e["seq"] for e in events] == [1, 2]


async def test_reconnect_with_replay_has_no_gap_and_no_duplicate(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    door = await make_door(factory)
    url = f"/api/v1/events/stream?site_id={door.site_id}"
    kiosk = door.kiosk[door.entrance]
    async with client.ws_connect(url + "&after_seq=0", headers=bearer(door.guard)) as console:
        await console.receive_json()
        for _ in range(3):
            await scan(client, kiosk, "junk")
        seen = await receive_events(console, 3)
    # While the console is away, more happens.
    for _ in range(4):
        await scan(client, kiosk, "junk")
    last = seen[-1]["seq"]
    async with client.ws_connect(f"{url}&after_seq={last}", headers=bearer(door.guard)) as console:
        hello = await console.receive_json()
        assert hello["replayed"] == 4
        await scan(client, kiosk, "junk")
        resumed = await receive_events(console, 5)
        with pytest.raises(TimeoutError):  # and nothing twice
            await asyncio.wait_for(console.receive_json(), 0.5)
    assert [e["seq"] for e in seen + resumed] == list(range(1, 9))


async def test_guard_of_another_site_cannot_subscribe(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    door = await make_door(factory)
    other = await make_door(factory)
    resp = await client.get(
        f"/api/v1/events/stream?site_id={door.site_id}", headers=bearer(other.guard)
    )
    assert resp.status == 403
    resp = await client.get("/api/v1/events/stream?site_id=abc", headers=bearer(door.admin))
    assert resp.status == 400
    resp = await client.get("/api/v1/events/stream?site_id=99999", headers=bearer(door.admin))
    assert resp.status == 404


def test_a_consumer_that_does_not_read_is_cut_off_not_waited_for() -> None:
    sub = Subscription(site_id=1, last_seq=0)
    for seq in range(1, SUBSCRIBER_BUFFER + 10):
        sub.offer(LiveEvent(seq, "{}"))
    assert sub.overflowed
    assert len(sub.pending) == SUBSCRIBER_BUFFER
    assert sub.last_seq == SUBSCRIBER_BUFFER  # where it resumes from after a resync


async def test_a_slow_console_is_cut_off_and_others_keep_up(
    client: TestClient[Any, Any], app: web.Application, factory: Factory
) -> None:
    from service.events.fanout import FANOUT_KEY

    door = await make_door(factory)
    slow, _ = await app[FANOUT_KEY].subscribe(door.site_id, None)  # never reads
    total = SUBSCRIBER_BUFFER + 200
    async with client.ws_connect(
        f"/api/v1/events/stream?site_id={door.site_id}", headers=bearer(door.guard)
    ) as healthy:
        await healthy.receive_json()
        reader = asyncio.create_task(receive_events(healthy, total))
        for _ in range(total // 400):
            resp = await client.post(
                "/api/v1/scans/batch",
                json={"scans": [scan_body("junk") for _ in range(400)]},
                headers=bearer(door.kiosk[door.entrance]),
            )
            assert resp.status == 200
        events = await reader
    assert [e["seq"] for e in events] == list(range(1, total + 1))
    assert slow.overflowed and slow.last_seq == SUBSCRIBER_BUFFER


async def test_revocations_and_reviews_name_the_person(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    door = await make_door(factory)
    person = await factory.person(full_name="Phạm Thị Dung")
    await factory.issued_pass(door.key, door.site_id, person_id=person)
    waiting = await factory.declaration(
        await factory.person(full_name="Hoàng Văn Em"), door.site_id, status="review"
    )
    url = f"/api/v1/events/stream?site_id={door.site_id}&after_seq=0"
    async with client.ws_connect(url, headers=bearer(door.guard)) as console:
        assert (await console.receive_json())["type"] == "hello"
        resp = await client.post(
            f"/api/v1/people/{person}/revoke-passes",
            json={"reason": "Kết quả xét nghiệm dương tính"},
            headers=bearer(door.admin),
        )
        assert resp.status == 200, await resp.text()
        resp = await client.post(
            f"/api/v1/declarations/{waiting}/review",
            json={"decision": "reject"},
            headers=bearer(door.guard),
        )
        assert resp.status == 200, await resp.text()
        revoked, reviewed = await receive_events(console, 2)
    assert (revoked["kind"], revoked["name"]) == ("pass_revoked", "P. T. Dung")
    assert (reviewed["kind"], reviewed["name"]) == ("declaration_reviewed", "H. V. Em")
