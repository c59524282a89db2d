"""Rotating passes (checkin_core/rotating.py): bound to a phone's key, a new code every
15 s, checked offline; printed passes under the site's static_pass rule; the guard's
one-tap ID check; kiosk clocks."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from checkin_core.keys import TrustList
from checkin_core.rotating import STEP_S, authenticate_any, time_step
from scanner.clock import KioskClock
from scanner.verdict import judge_offline
from service.passes.qr import qr_version
from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer
from tests.kiosk_helpers import Shot, write_video
from tests.rotating_helpers import bind_phone, link_key
from tests.test_scanner_e2e import FPS, KioskProcess, free_port

Client = TestClient[Any, Any]
GUARD_CHECK = '{"static_pass": "guard_check"}'


async def test_a_rotating_code_fits_a_phone_screen_and_is_authentic(
    client: Client, app: web.Application, factory: Factory
) -> None:
    door = await make_door(factory)
    pass_id, _ = await factory.issued_pass(door.key, door.site_id)
    phone = await bind_phone(client, app, pass_id, door.key)
    step = time_step(datetime.now(UTC))
    code = phone.code(step)
    assert len(code) == 4 + 296
    version = qr_version(code)
    print(f"\nrotating code: {len(code)} characters, QR version {version} at level M")
    assert version <= 10  # a webcam reads it off a phone screen
    claims = authenticate_any(code, TrustList([door.key.trusted_key()]))
    assert (claims.pass_id, getattr(claims, "step", None)) == (pass_id, step)
    # A code signed by another phone than the one the pass is bound to is a forgery.
    other = await bind_phone(client, app, pass_id, door.key)
    mixed = phone.code(step)[:-10] + other.code(step)[-10:]
    assert (await scan(client, door.kiosk[door.entrance], mixed))["reason"] == "bad_signature"


async def test_bind_needs_the_links_key_and_a_valid_key(
    client: Client, app: web.Application, factory: Factory
) -> None:
    door = await make_door(factory)
    pass_id, _ = await factory.issued_pass(door.key, door.site_id)
    wrong = await client.post(
        f"/passes/{pass_id}/bind", params={"key": "x" * 22}, json={"device_key": "A" * 43}
    )
    assert wrong.status == 404 and (await wrong.json())["error"]["code"] == "pass_not_found"
    bad = await client.post(
        f"/passes/{pass_id}/bind",
        params={"key": link_key(app, pass_id)},
        json={"device_key": "short"},
    )
    assert bad.status == 422
    # "Add to home screen" opens this pass's page; without the link's key, nothing.
    key = link_key(app, pass_id)
    manifest = await client.get(f"/passes/{pass_id}/manifest.webmanifest", params={"key": key})
    assert manifest.status == 200
    start = (await manifest.json(content_type=None))["start_url"]
    assert start == f"/passes/{pass_id}/phone?key={key}"
    assert (await client.get(f"/passes/{pass_id}/manifest.webmanifest")).status == 404


async def test_the_service_denies_an_old_code_and_applies_static_pass(
    client: Client, app: web.Application, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory, checkin_rules=GUARD_CHECK)
    person = await factory.person(full_name="Trần Thị Bình")
    pass_id, printed = await factory.issued_pass(door.key, door.site_id, person_id=person)
    phone = await bind_phone(client, app, pass_id, door.key)
    kiosk = door.kiosk[door.entrance]
    now = time_step(datetime.now(UTC))
    old = await scan(client, kiosk, phone.code(now - 2))  # made 30-45 s ago
    assert (old["decision"], old["reason"]) == ("deny", "code_expired")
    assert old["message_vi"] == "Mã đã hết hạn — mở lại trang mã QR"
    # The printed pass of the same person: the guard checks the papers.
    check = await scan(client, kiosk, printed)
    assert (check["decision"], check["reason"]) == ("deny", "guard_check")
    assert (check["message_vi"], check["message_en"]) == ("Kiểm tra giấy tờ", "Check ID")
    resp = await client.post(
        "/api/v1/id-checks", json={"event_id": check["event_id"]}, headers=bearer(door.guard)
    )
    assert resp.status == 201, await resp.text()
    event = await conn.fetchrow(
        "SELECT kind, actor, decision, reason, detail FROM events WHERE kind = 'id_check'"
    )
    assert event["actor"].startswith("guard:") and event["decision"] == "allow"
    assert event["detail"]["overrides"] == check["event_id"]
    assert await conn.fetchval(
        "SELECT count(*) FROM presence WHERE person_id = $1 AND exited_at IS NULL", person
    )
    again = await client.post(
        "/api/v1/id-checks", json={"event_id": check["event_id"]}, headers=bearer(door.guard)
    )
    assert again.status == 409
    # A denial that is not a guard check is not let through this way.
    assert (await scan(client, kiosk, phone.code(now - 3)))["reason"] == "code_expired"
    # The phone's current code opens (the person is inside already: strict anti-passback).
    live = await scan(client, kiosk, phone.code(now))
    assert live["reason"] == "already_inside"


async def test_a_rotating_only_site_denies_a_printed_pass(
    client: Client, app: web.Application, factory: Factory
) -> None:
    door = await make_door(factory, checkin_rules='{"static_pass": "deny"}')
    pass_id, printed = await factory.issued_pass(door.key, door.site_id)
    kiosk = door.kiosk[door.entrance]
    refused = await scan(client, kiosk, printed)
    assert (refused["decision"], refused["reason"]) == ("deny", "static_pass_refused")
    phone = await bind_phone(client, app, pass_id, door.key)
    live = await scan(client, kiosk, phone.code(time_step(datetime.now(UTC))))
    assert (live["decision"], live["reason"]) == ("allow", "welcome")


async def test_the_kiosk_judges_a_code_offline_on_the_services_clock(
    client: Client, app: web.Application, factory: Factory
) -> None:
    door = await make_door(factory, checkin_rules=GUARD_CHECK)
    pass_id, printed = await factory.issued_pass(door.key, door.site_id)
    phone = await bind_phone(client, app, pass_id, door.key)
    trust = TrustList([door.key.trusted_key()])
    service_now = datetime.now(UTC)
    code = phone.code(time_step(service_now))

    def judge(payload: str, kiosk_now: datetime, skew: timedelta = timedelta(0)) -> str:
        return judge_offline(
            payload,
            policy="verify-offline",
            trust=trust,
            site_id=door.site_id,
            now=kiosk_now,
            skew=skew,
            printed="guard_check",
        ).reason

    assert judge(code, service_now) == "offline_allowed"
    assert judge(code, service_now + timedelta(seconds=2 * STEP_S + 1)) == "code_expired"
    # A kiosk whose clock is 2 minutes slow, having measured it, still judges right ...
    slow = service_now - timedelta(minutes=2)
    assert judge(code, slow) == "code_expired"
    assert judge(code, slow, skew=timedelta(minutes=2)) == "offline_allowed"
    # ... and a screenshot is refused there too.
    assert judge(code, slow + timedelta(seconds=45), skew=timedelta(minutes=2)) == "code_expired"
    assert judge(printed, service_now) == "guard_check"


def test_the_kiosk_clock_measures_skew_at_the_midpoint(tmp_path: Path) -> None:
    clock = KioskClock(tmp_path / "clock.json")
    sent = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)
    received = sent + timedelta(milliseconds=200)
    server = sent + timedelta(seconds=30, milliseconds=100)  # 30 s ahead of the kiosk
    clock.observe({"server_time": server.isoformat(), "sent_at": sent.isoformat()}, received)
    assert clock.skew_ms == 30_000 and clock.too_large and clock.warning_s == 30.0
    assert KioskClock(tmp_path / "clock.json").skew_ms == 30_000  # kept for a cold start
    clock.observe({"server_time": "not a time"}, received)
    assert clock.skew_ms == 30_000


async def test_a_screenshot_replayed_after_30_s_is_denied_by_the_real_kiosk(
    aiohttp_server: Any,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    port = free_port()
    server = await aiohttp_server(app, port=port)
    url = str(server.make_url("")).rstrip("/")
    site_id = await factory.site(checkin_rules=GUARD_CHECK)
    gate_id = await factory.gate(site_id, name="Cổng chính", direction="entrance")
    token = await factory.token(Role.KIOSK, gate_id=gate_id)
    key = await factory.signing_key()
    pass_id, printed = await factory.issued_pass(key, site_id)
    async with aiohttp.ClientSession(base_url=url) as http:
        phone = await bind_phone(http, app, pass_id, key)
    # The code of this step: shown now, it has 15-30 s of its 30 s left, time enough for
    # a kiosk started on a loaded machine to read it.
    shown_step = time_step(datetime.now(UTC))
    shown = phone.code(shown_step)
    first = write_video(tmp_path / "a.avi", [Shot(None, 0.3), Shot(shown, 0.8), Shot(None, 0.3)])
    kiosk = await KioskProcess.start(url, token, first, tmp_path / "k", "--cooldown", "1")
    assert [(v["decision"], v["reason"]) for v in await kiosk.finish()] == [("allow", "welcome")]
    # The same QR (a screenshot of it) once its 30 s are over.
    window_ends = (shown_step + 2) * STEP_S  # Unix seconds: 30 s after it was made
    await asyncio.sleep(max(0.0, window_ends - datetime.now(UTC).timestamp()) + 0.5)
    again = write_video(
        tmp_path / "b.avi",
        [Shot(None, 0.3), Shot(shown, 0.8), Shot(None, 0.3), Shot(printed, 0.8), Shot(None, 0.3)],
        fps=FPS,
    )
    replay = await KioskProcess.start(url, token, again, tmp_path / "k", "--cooldown", "1")
    lines = await replay.finish()
    assert [(v["decision"], v["reason"]) for v in lines] == [
        ("deny", "code_expired"),
        ("deny", "guard_check"),
    ]
    assert lines[0]["message_en"] == "Code expired — reopen your pass page"
    assert lines[1]["message_vi"] == "Kiểm tra giấy tờ"
    recorded = await conn.fetch("SELECT reason FROM events WHERE kind = 'scan' ORDER BY id")
    assert [r["reason"] for r in recorded] == ["welcome", "code_expired", "guard_check"]
    # The kiosk measured its clock against the service's and reports it.
    beat = await conn.fetchval("SELECT report FROM kiosk_health")
    assert isinstance(beat["clock_skew_ms"], int) and abs(beat["clock_skew_ms"]) < 5000
    assert uuid.UUID(str(pass_id))
