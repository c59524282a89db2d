"""Shared set-up for the presence tests: a clock the test moves, wired into the real
app through the settings, people let in at a door, and the sweep run on demand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.door.auto_checkout import SweepReport, sweep_now
from service.events.fanout import FANOUT_KEY
from service.platform.clock import CLOCK_KEY
from service.platform.db import DB_KEY
from service.platform.settings import Settings
from tests.checkin_helpers import Door, make_door, scan
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]


class FakeClock:
    """Starts at the real time (the kiosks' scans are checked against it) and moves
    only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, clock: FakeClock) -> Settings:
    """The service's settings on the test's clock (replaces conftest's)."""
    return presence_settings(db_url, tmp_path, clock)


def presence_settings(db_url: str, data_dir: Path, clock: FakeClock, **more: Any) -> Settings:
    # The background sweep waits long between rounds: the tests sweep when they choose.
    return Settings(
        database_url=db_url,
        data_dir=data_dir,
        db_acquire_timeout_s=2.0,
        clock=clock,
        **({"auto_checkout_interval_s": 30.0} | more),
    )


async def sweep(app: web.Application) -> SweepReport:
    """One sweep at the app's clock, waiting for the background one if it is running."""
    while True:
        report = await sweep_now(app[DB_KEY], app[CLOCK_KEY], app[FANOUT_KEY])
        if report is not None:
            return report
        await asyncio.sleep(0.05)


async def set_door_rules(client: Client, door: Door, **rules: Any) -> dict[str, Any]:
    """PUT replaces the whole rules: printed passes stay let in, as tests/factory.py
    makes sites, unless the test sets static_pass itself."""
    body = {"static_pass": "allow", **rules}
    resp = await client.put(
        f"/api/v1/sites/{door.site_id}/door-rules", json=body, headers=bearer(door.admin)
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body["rules"]


async def person_with_pass(factory: Factory, door: Door, **person: Any) -> tuple[int, str]:
    person_id = await factory.person(**person)
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person_id)
    return person_id, payload


async def enter(client: Client, door: Door, payload: str, **scan_fields: Any) -> dict[str, Any]:
    answer = await scan(client, door.kiosk[door.entrance], payload, **scan_fields)
    assert answer["decision"] == "allow", answer
    return answer


async def let_in_hours_ago(client: Client, door: Door, payload: str, hours: float) -> None:
    """An entry recorded that long ago (a kiosk replaying its offline outbox)."""
    seen = datetime.now(UTC) - timedelta(hours=hours)
    answer = await scan(
        client,
        door.kiosk[door.entrance],
        payload,
        seen_at=seen.isoformat(),
        offline={"verdict": "allow", "reason": "welcome"},
    )
    assert answer["decision"] == "allow", answer


async def stay_of(conn: asyncpg.Connection, person_id: int) -> asyncpg.Record:
    """The person's latest stay."""
    row = await conn.fetchrow(
        "SELECT * FROM presence WHERE person_id = $1 ORDER BY id DESC LIMIT 1", person_id
    )
    assert row is not None
    return row


async def auto_exits(conn: asyncpg.Connection, site_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM events WHERE site_id = $1 AND kind = 'auto_exit' ORDER BY seq", site_id
    )


async def one_inside(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> tuple[Door, int, datetime]:
    """A door with one person let in now: (door, person id, when they entered)."""
    door = await make_door(factory)
    person, payload = await person_with_pass(factory, door)
    await enter(client, door, payload)
    return door, person, (await stay_of(conn, person))["entered_at"]
