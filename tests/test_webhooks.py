"""Webhooks against a real local HTTP receiver: signed JSON for deny alerts, automatic
check-outs and overstays, retried with backoff until it is taken, and the delivery log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.platform.settings import Settings
from service.retention.purge import purge
from service.web.auth import Role
from tests.checkin_helpers import Door, make_door, scan
from tests.factory import Factory, bearer
from tests.presence_helpers import (
    Client,
    FakeClock,
    clock,
    enter,
    person_with_pass,
    presence_settings,
    set_door_rules,
    sweep,
)

__all__ = ["clock"]  # the fixture


@pytest.fixture
def settings(db_url: str, tmp_path: Path, clock: FakeClock) -> Settings:
    return presence_settings(
        db_url, tmp_path, clock, webhook_interval_s=0.05, webhook_retry_base_s=0.05
    )


class Receiver:
    """A local HTTP endpoint that refuses the first `failures` requests with a 500."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[dict[str, str], bytes, int]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = 500 if len(self.calls) < self.failures else 204
        self.calls.append((dict(request.headers), body, status))
        return web.Response(status=status)

    def taken(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, status in self.calls if status == 204]


async def hooked(
    client: Client,
    door: Door,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    failures: int,
) -> tuple[Receiver, str]:
    """A receiver set as the door's site's webhook: (receiver, signing secret)."""
    got = Receiver(failures)
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    server = await aiohttp_server(app)
    resp = await client.put(
        f"/api/v1/sites/{door.site_id}/webhook",
        json={"url": str(server.make_url("/hook"))},
        headers=bearer(door.admin),
    )
    assert resp.status == 200, await resp.text()
    return got, (await resp.json())["secret"]


async def delivered(got: Receiver) -> None:
    for _ in range(400):  # stops a hung test only; nothing is timed
        if got.taken():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not delivered")


async def test_only_http_urls_are_taken(client: Client, factory: Factory) -> None:
    door = await make_door(factory)
    url = f"/api/v1/sites/{door.site_id}/webhook"
    for bad in ("ftp://example.org/x", "javascript:alert(1)", "file:///etc/passwd", "example.org"):
        resp = await client.put(url, json={"url": bad}, headers=bearer(door.admin))
        assert resp.status == 422, bad
        assert [f["field"] for f in (await resp.json())["error"]["fields"]] == ["url"]
    resp = await client.put(url, json={"url": "https://example.org/x"}, headers=bearer(door.guard))
    assert resp.status == 403


async def test_a_deny_alert_is_signed_retried_and_logged(
    client: Client,
    factory: Factory,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    door = await make_door(factory)
    got, secret = await hooked(client, door, aiohttp_server, failures=2)
    await scan(client, door.kiosk[door.entrance], "not a pass")  # denied: malformed
    await delivered(got)
    assert [status for _, _, status in got.calls] == [500, 500, 204]
    headers, body, _ = got.calls[-1]
    stamp, mac = (part.split("=", 1)[1] for part in headers["X-Checkin-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)
    (alert,) = got.taken()
    assert (alert["type"], alert["kind"], alert["site_id"]) == ("deny_alert", "scan", door.site_id)
    assert alert["reason"] == "malformed"

    log = await client.get(f"/api/v1/sites/{door.site_id}/webhook", headers=bearer(door.admin))
    (delivery,) = (await log.json())["deliveries"]
    assert (delivery["attempts"], delivery["last_status"]) == (3, 204)
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None


async def test_an_automatic_check_out_is_sent(
    client: Client,
    app: web.Application,
    factory: Factory,
    clock: FakeClock,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    door = await make_door(factory)
    got, _ = await hooked(client, door, aiohttp_server, failures=0)
    await set_door_rules(client, door, auto_checkout={"after_minutes": 1})
    person, payload = await person_with_pass(factory, door)
    await enter(client, door, payload)  # allowed: not an alert
    clock.advance(minutes=2)
    assert (await sweep(app)).closed == 1
    await delivered(got)
    (sent,) = got.taken()
    assert (sent["type"], sent["person_id"]) == ("auto_checkout", person)
    assert sent["detail"]["rule"] == "after_minutes"


async def test_no_webhook_for_a_site_that_does_not_exist(client: Client, factory: Factory) -> None:
    admin = await factory.token(Role.ADMIN)
    for site in (0, 999):
        resp = await client.put(
            f"/api/v1/sites/{site}/webhook", json={"url": "http://0"}, headers=bearer(admin)
        )
        assert resp.status == 404, await resp.text()


async def test_deliveries_go_with_the_retention_purge(
    client: Client,
    factory: Factory,
    conn: asyncpg.Connection,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    door = await make_door(factory)
    got, _ = await hooked(client, door, aiohttp_server, failures=0)
    await scan(client, door.kiosk[door.entrance], "not a pass")
    await delivered(got)
    report = await purge(conn, older_than=datetime.now(UTC) + timedelta(days=1), actor="test")
    assert report is not None and report.webhook_deliveries_deleted == 1
    assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 0


async def test_an_overstay_is_raised_once_signed_and_sent(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    clock: FakeClock,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    """A visitor past the departure they declared, then a staff member silent longer
    than the site allows: one `overstay` each, at the time it became one."""
    door = await make_door(factory)
    await set_door_rules(client, door, silent_after_minutes=90)
    got, secret = await hooked(client, door, aiohttp_server, failures=1)
    visitor, visitor_pass = await person_with_pass(factory, door, kind="visitor")
    staff, staff_pass = await person_with_pass(factory, door)
    departure = clock.now + timedelta(minutes=45)
    await conn.execute(
        "UPDATE declarations SET answers = answers"
        " || jsonb_build_object('expected_departure', $2::text) WHERE person_id = $1",
        visitor,
        departure.isoformat(),
    )
    await enter(client, door, visitor_pass)
    await enter(client, door, staff_pass)
    entered = await conn.fetchval("SELECT entered_at FROM presence WHERE person_id = $1", staff)

    clock.advance(minutes=44)
    assert (await sweep(app)).overstays == 0
    clock.advance(minutes=2)
    assert (await sweep(app)).overstays == 1
    assert (await sweep(app)).overstays == 0  # once
    await delivered(got)
    assert [status for _, _, status in got.calls] == [500, 204]  # retried like the others
    headers, body, _ = got.calls[-1]
    stamp, mac = (part.split("=", 1)[1] for part in headers["X-Checkin-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)
    (sent,) = got.taken()
    assert (sent["type"], sent["kind"], sent["person_id"]) == ("overstay", "overstay", visitor)
    assert sent["detail"]["why"] == ["past_departure"]
    assert datetime.fromisoformat(sent["occurred_at"]) == departure

    clock.advance(minutes=60)  # 106 minutes since the staff member's entry scan
    assert (await sweep(app)).overstays == 1
    for _ in range(400):  # stops a hung test only; nothing is timed
        if len(got.taken()) == 2:
            break
        await asyncio.sleep(0.05)
    silent = got.taken()[1]
    assert (silent["type"], silent["person_id"]) == ("overstay", staff)
    assert silent["detail"]["why"] == ["silent"]
    assert datetime.fromisoformat(silent["occurred_at"]) == entered + timedelta(minutes=90)
    assert (await sweep(app)).overstays == 0
    events = await conn.fetch(
        "SELECT person_id, actor FROM events WHERE site_id = $1 AND kind = 'overstay' ORDER BY seq",
        door.site_id,
    )
    assert [(e["person_id"], e["actor"]) for e in events] == [
        (visitor, "service:overstay"),
        (staff, "service:overstay"),
    ]
    # Both still inside: an overstay closes nothing.
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM presence WHERE site_id = $1 AND exited_at IS NULL", door.site_id
        )
        == 2
    )
