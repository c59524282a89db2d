"""The door comes first: while scans are coming in, an export streams at a paced rate
(service.platform.door_activity), and in full."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from service.events.log import append_events
from service.platform.door_activity import DOOR_ACTIVITY_KEY, DoorActivity, paced
from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer, scan_record

Client = TestClient[Any, Any]
MIB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_busy_door_paces_the_bytes_and_an_idle_one_does_not() -> None:
    clock = Clock()
    door = DoorActivity(busy_for_s=2.0, clock=clock)
    written: list[int] = []
    slept: list[float] = []
    write_takes = 0.0

    async def write(chunk: bytes) -> None:
        written.append(len(chunk))
        clock.now += write_takes

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    out = paced(write, door, bytes_per_s=MIB, sleep=sleep)
    await out(b"x" * MIB)  # nobody has scanned yet
    assert slept == []
    door.scanned()
    for _ in range(3):
        await out(b"x" * (MIB // 2))
    assert slept == [0.5, 0.5, 0.5]  # a megabyte a second
    clock.now += 1.5  # a pause is not saved up for a burst after it ...
    door.scanned()
    await out(b"x" * (MIB // 2))
    assert slept[-1] == pytest.approx(0.5)
    write_takes = 0.2  # ... but the time a write takes counts
    await out(b"x" * (MIB // 2))
    assert slept[-1] == pytest.approx(0.3)
    clock.now += 2.0  # the door has been quiet long enough since its scan
    await out(b"x" * MIB)
    assert len(slept) == 5
    assert written == [MIB, *[MIB // 2] * 5, MIB]


@pytest.mark.limits(export_bytes_per_s_door_busy=64 * 1024, db_command_timeout_s=1.0)
async def test_a_scan_makes_the_export_yield_and_the_export_is_whole(
    client: Client, app: Application, factory: Factory, conn: asyncpg.Connection
) -> None:
    """Paced, an export outlasts the pool's command timeout, and it is whole."""
    door = await make_door(factory)
    person = await factory.person(full_name="Phạm Văn Đồng")
    async with conn.transaction():
        now = datetime.now(UTC)
        seeded = [scan_record(door.site_id, door.entrance, person, now) for _ in range(300)]
        await append_events(conn, seeded)
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    assert not app[DOOR_ACTIVITY_KEY].busy()
    await scan(client, door.kiosk[door.entrance], payload)
    assert app[DOOR_ACTIVITY_KEY].busy()  # what the kiosk just did
    auditor = bearer(await factory.token(Role.AUDITOR))
    resp = await client.get(
        "/api/v1/audit/events",
        params={"format": "jsonl", "site_id": str(door.site_id), "kind": "scan"},
        headers=auditor,
    )
    assert resp.status == 200
    body = await resp.read()
    assert len(body) > 64 * 1024  # over a second's worth at the paced rate
    assert len(body.splitlines()) == 301
