"""The guard console in a real headless Chromium (Debian's package, which `make test`
installs), against the real service on a real database.

Set CONSOLE_SCREENSHOTS=docs/screenshots (`make screenshots`) to save the main screens.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, async_playwright, expect

from service.app import create_app
from service.identity.login_guard import LOGIN_BURST_ATTEMPTS
from service.platform.settings import Settings
from service.web.auth import Role
from tests.chaos.cable import Cable
from tests.checkin_helpers import Door, make_door, scan, scan_body
from tests.factory import Factory, bearer
from tests.login_helpers import Browser as LoginVisitor

Client = TestClient[Any, Any]
# Generous bounds that only stop a hung test; the feed's delay is printed, not asserted.
UI_TIMEOUT_MS = 10_000
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
expect.set_options(timeout=UI_TIMEOUT_MS)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is missing: `make test` installs it (scripts/system-deps.sh chromium)"
        )
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield launched
        await launched.close()


async def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:  # playwright makes the folder
        await page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=True)


async def open_console(
    browser: Browser, base: str, username: str, password: str, *, width: int = 1280
) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 800}, locale="vi-VN")
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    await page.goto(f"{base}/console")
    await expect(page).to_have_url(f"{base}/console/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/console")
    await expect(page.locator("#link")).to_have_attribute("data-state", "live")
    return page


def base_url(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


async def person_with_pass(factory: Factory, door: Door, name: str) -> tuple[int, str]:
    person = await factory.person(full_name=name)
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    return person, payload


async def test_wrong_password_is_refused_then_the_console_opens(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    base = base_url(client)
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{base}/console")
    await expect(page).to_have_url(f"{base}/console/login")
    await page.fill("#username", username)
    await page.fill("#password", "not the password")
    await page.click("button[type=submit]")
    await expect(page.locator(".summary")).to_contain_text("Sai tên đăng nhập")
    await shot(page, "login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/console")
    await expect(page.locator("#link")).to_have_attribute("data-state", "live")
    # English on request, and it sticks across pages.
    await page.click("#lang-switch")
    await expect(page.locator("[data-tab=live]")).to_have_text("Live")
    await page.reload()
    await expect(page.locator("[data-tab=live]")).to_have_text("Live")


async def test_the_console_signs_out_when_its_session_ends(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    base = base_url(client)
    page = await open_console(browser, base, username, password)
    # Only the feed may tell the page: its API calls would see a 401 and sign out too.
    await page.route("**/api/v1/**", lambda route: route.abort())
    resp = await client.post(f"/api/v1/accounts/{username}/disable", headers=bearer(door.admin))
    assert resp.status == 200, await resp.text()
    # The feed is closed with 4401: the page goes to the login, once, and says why.
    await expect(page).to_have_url(f"{base}/console/login?ended=1")
    await expect(page.locator(".notice")).to_contain_text("Phiên đăng nhập đã kết thúc")


async def test_scan_alert_override_presence_and_history(
    client: Client, factory: Factory, browser: Browser, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory, capacity=50)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    await expect(page.locator("#inside-count")).to_have_text("0")

    _, payload = await person_with_pass(factory, door, "Nguyễn Văn An")
    sent = time.perf_counter()
    await scan(client, door.kiosk[door.entrance], payload)
    first_row = page.locator("#feed tr").first
    await expect(first_row).to_contain_text("N. V. An")
    print(f"scan to feed row: {(time.perf_counter() - sent) * 1000:.0f} ms")
    await expect(first_row.locator(".badge")).to_have_text("CHO VÀO")
    await expect(page.locator("#inside-count")).to_have_text("1")

    # A revoked pass: denied, with a loud alert that can be overridden once.
    denied, denied_payload = await person_with_pass(factory, door, "Trần Thị Bình")
    await conn.execute(
        "UPDATE passes SET revoked_at = now(), revoked_reason = 'lost' WHERE person_id = $1",
        denied,
    )
    await scan(client, door.kiosk[door.entrance_b], denied_payload)
    alert = page.locator(".alert").first
    await expect(alert).to_contain_text("T. T. Bình")
    await expect(page.locator("#feed tr").first.locator(".badge")).to_have_text("TỪ CHỐI")
    await shot(page, "live-feed-deny-alert")
    await alert.locator(".allow-once").click()
    await expect(alert.locator(".alert-message")).to_contain_text("lý do")
    await alert.locator(".override-reason").fill("Giấy tờ gốc đã kiểm tra tại cổng")
    await alert.locator(".allow-once").click()
    # A revoked pass is not the guard's to override: the alert says why, in words.
    await expect(alert.locator(".alert-message")).to_contain_text(
        "Không thể cho vào: Chỉ quản trị viên"
    )
    await expect(alert.locator(".alert-message")).to_have_attribute(
        "data-code", "override_admin_only"
    )
    # An admin lets them in; the guard's alert goes as the override arrives.
    event_id = await alert.get_attribute("data-event-id")
    body = {"event_id": event_id, "reason": "Giấy tờ gốc đã kiểm tra tại cổng"}
    resp = await client.post("/api/v1/overrides", json=body, headers=bearer(door.admin))
    assert resp.status == 201, await resp.text()
    await expect(page.locator(".alert")).to_have_count(0)
    await expect(page.locator("#feed tr.kind-override")).to_contain_text("Giấy tờ gốc")
    await expect(page.locator("#inside-count")).to_have_text("2")

    # Who is inside, and the person's history, with the override as the entry.
    await page.click("[data-tab=inside]")
    await expect(page.locator("#inside tr")).to_have_count(2)
    await shot(page, "inside-now")
    await page.click("[data-tab=search]")
    await page.fill("#search-q", "tran thi binh")  # no diacritics, as guards type
    await page.click("#search-form button")
    result = page.locator("#search-results .result")
    await expect(result).to_have_count(1)
    await expect(result).to_contain_text("Trần Thị Bình")
    await result.click()
    await expect(page.locator("#person .movements tbody tr")).to_have_count(1)
    await expect(page.locator("#person .movements tbody tr")).to_contain_text("Còn ở trong")
    await expect(page.locator("#person .pass-status")).to_have_text("Đã thu hồi")
    await expect(page.locator("#person .admin-actions")).to_have_count(0)  # a guard
    await shot(page, "person-search")

    # A manual exit from the inside list.
    await page.click("[data-tab=inside]")
    row = page.locator(f"#inside tr[data-person-id='{denied}']")
    await row.locator(".exit-reason").fill("Ra bằng cổng phụ")
    await row.locator("button.record-exit").click()
    await expect(page.locator("#inside tr")).to_have_count(1)
    await expect(page.locator("#inside-count")).to_have_text("1")


async def test_feed_resumes_after_a_network_drop_without_loss_or_repeat(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    cable = Cable(client.server.port)  # the browser's only way to the service
    await cable.plug()
    try:
        page = await open_console(browser, cable.url, username, password)
        payloads = [(await person_with_pass(factory, door, f"Khách {i}"))[1] for i in range(3)]
        await scan(client, door.kiosk[door.entrance], payloads[0])
        await expect(page.locator("#feed tr")).to_have_count(1)

        await cable.cut()
        await expect(page.locator("#link")).to_have_attribute("data-state", "down")
        await shot(page, "disconnected")
        for payload in payloads[1:]:
            await scan(client, door.kiosk[door.entrance], payload)
        await cable.plug()

        await expect(page.locator("#link")).to_have_attribute("data-state", "live")
        await expect(page.locator("#feed tr")).to_have_count(3)
        seqs = await page.locator("#feed tr").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.seq))"
        )
        assert seqs == sorted(set(seqs), reverse=True)  # each once, newest first
        names = await page.locator("#feed tr td:nth-child(3)").all_inner_texts()
        assert names == ["K. 2", "K. 1", "K. 0"]  # the short names of "Khách i"
    finally:
        await cable.cut()


async def test_a_kiosk_going_silent_raises_an_alert(
    client: Client, factory: Factory, browser: Browser, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    kiosk = door.kiosk[door.entrance]
    beat = {"fps": 14.5, "decode_attempts": 40, "decode_successes": 38, "outbox_depth": 2}
    beat["knowledge_age_s"] = 7200  # its offline copy is two hours old
    resp = await client.post("/api/v1/kiosk/heartbeat", json=beat, headers=bearer(kiosk))
    assert resp.status in (200, 204), await resp.text()
    page = await open_console(browser, base_url(client), username, password)
    await page.click("[data-tab=kiosks]")
    online = page.locator("#kiosks tr.online")
    await expect(online).to_have_count(1)
    await expect(online).to_contain_text("95 %")
    await expect(online.locator("td.copy-age")).to_have_text("2.0 h")
    await expect(page.locator("#tab-kiosks th").nth(7)).to_have_text("Dữ liệu ngoại tuyến")
    await shot(page, "kiosks")

    # The kiosk stops reporting: its last heartbeat ages past the silence limit.
    await conn.execute("UPDATE kiosk_health SET reported_at = now() - interval '5 minutes'")
    await expect(page.locator(".alert.kiosk-alert")).to_contain_text("mất tín hiệu")
    await expect(page.locator("#kiosks tr.offline")).to_have_count(3)


async def test_a_door_opened_offline_against_its_policy_raises_an_alert(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)  # its gates deny everyone while offline
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    _, payload = await person_with_pass(factory, door, "Lê Văn Cường")
    # The kiosk's replay after an outage, hours later: the door had let the person in.
    seen = (datetime.now(ZoneInfo("UTC")) - timedelta(hours=2)).isoformat()
    body = scan_body(
        payload, seen_at=seen, offline={"verdict": "allow", "reason": "offline_allowed"}
    )
    resp = await client.post(
        "/api/v1/scans/batch", json={"scans": [body]}, headers=bearer(door.kiosk[door.entrance])
    )
    assert resp.status == 200, await resp.text()
    alert = page.locator(".alert.policy-alert")
    await expect(alert).to_contain_text("Cửa đã mở khi ngoại tuyến trái chính sách")
    await expect(alert).to_contain_text("L. V. Cường")
    await expect(page.locator("#feed tr").first.locator(".badge.breach")).to_be_visible()
    await shot(page, "offline-policy-alert")
    await page.click("#lang-switch")
    await expect(alert).to_contain_text("The door opened offline against its policy")
    await alert.locator(".dismiss").click()
    await expect(page.locator(".alert")).to_have_count(0)


async def test_the_server_refuses_what_the_page_does_not_offer(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    person, _ = await person_with_pass(factory, door, "Lê Văn Cường")
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    post = """async ([path, body, csrf]) => {
        const headers = {"Content-Type": "application/json"};
        if (csrf) headers["X-CSRF-Token"] = JSON.parse(document.body.dataset.config).csrf;
        const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
        return [r.status, (await r.json()).error?.code ?? null];
    }"""
    deny = {"person_id": person, "site_id": door.site_id, "reason": "thử"}
    assert await page.evaluate(post, ["/api/v1/deny-list", deny, False]) == [403, "csrf_failed"]
    assert await page.evaluate(post, ["/api/v1/deny-list", deny, True]) == [403, "forbidden"]

    admin, admin_password = await factory.account(Role.ADMIN)
    admin_page = await open_console(browser, base_url(client), admin, admin_password)
    await admin_page.click("[data-tab=search]")
    await admin_page.fill("#search-q", "Cường")
    await admin_page.click("#search-form button")
    await admin_page.locator("#search-results .result").click()
    await admin_page.locator(".admin-reason").fill("Vi phạm nội quy")
    await admin_page.locator(".deny-add").click()
    await admin_page.locator("#confirm-ok").click()
    await expect(admin_page.locator(".admin-actions .row-message")).to_have_text(
        "Đã đưa vào danh sách cấm."
    )
    listed = await (await client.get("/api/v1/deny-list", headers=bearer(door.admin))).json()
    assert [e["person_id"] for e in listed["entries"]] == [person]


async def a_working_day(conn: asyncpg.Connection, factory: Factory, door: Door, day: date) -> None:
    """Yesterday's stays: arrivals from 7:00 to 9:00, a lunch wave, departures from 16:30."""
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    rows = []
    for i in range(60):
        person = await factory.person(full_name=f"Cán bộ {i}")
        arrive = datetime.combine(day, dt_time(7), zone) + timedelta(minutes=2 * i)
        leave = datetime.combine(day, dt_time(16, 30), zone) + timedelta(minutes=(7 * i) % 90)
        rows.append((door.site_id, person, arrive, door.entrance, -i - 1, leave, door.exit))
        if i % 4 == 0:  # out for lunch and back
            rows[-1] = (*rows[-1][:5], arrive.replace(hour=11, minute=30), door.exit)
            back = datetime.combine(day, dt_time(13), zone) + timedelta(minutes=i)
            rows.append((door.site_id, person, back, door.entrance, -1000 - i, leave, door.exit))
    await conn.executemany(
        "INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event,"
        " exited_at, exit_gate_id, exit_kind) VALUES ($1, $2, $3, $4, $5, $6, $7, 'scan')",
        rows,
    )


async def test_chart_and_roll_call(
    client: Client, factory: Factory, browser: Browser, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory, capacity=80)
    for i in range(3):
        _, payload = await person_with_pass(factory, door, f"Khách {i}")
        await scan(client, door.kiosk[door.entrance], payload)
    yesterday = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() - timedelta(days=1)
    await a_working_day(conn, factory, door, yesterday)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    await page.click("[data-tab=chart]")
    await expect(page.locator("#chart svg rect.bar")).to_have_count(1)  # today: one bucket
    await page.fill("#chart-date", yesterday.isoformat())
    await page.dispatch_event("#chart-date", "change")
    await expect(page.locator("#chart svg rect.bar")).not_to_have_count(1)
    bars = await page.locator("#chart svg rect.bar").count()
    assert bars > 8  # arrivals over two hours and the lunch wave
    await shot(page, "occupancy")
    await page.click("[data-tab=inside]")
    await page.click("#rollcall-link")
    await expect(page.locator("table.rollcall tbody tr")).to_have_count(3)
    await shot(page, "rollcall")
    # A tablet in portrait: the same console, one column.
    tablet = await open_console(browser, base_url(client), username, password, width=800)
    await expect(tablet.locator("#feed tr")).to_have_count(3)
    await shot(tablet, "tablet")


async def test_a_burst_of_bad_logins_is_an_alert_on_the_admin_console_only(
    aiohttp_client: Any, settings: Settings, factory: Factory, browser: Browser
) -> None:
    # Three logins a minute from an address: the admin's, the guard's, one guess.
    client = await aiohttp_client(
        create_app(settings=replace(settings, login_per_minute_per_address=3))
    )
    door = await make_door(factory)
    admin_name, admin_password = await factory.account(Role.ADMIN)
    guard_name, guard_password = await factory.account(Role.GUARD, site_id=door.site_id)
    base = base_url(client)
    admin = await open_console(browser, base, admin_name, admin_password)
    guard = await open_console(browser, base, guard_name, guard_password)
    attacker = LoginVisitor(client)
    try:
        for _ in range(LOGIN_BURST_ATTEMPTS):
            await attacker.login(guard_name, "a guess")
    finally:
        await attacker.session.close()
    await admin.reload()
    alert = admin.locator(".alert.security-alert")
    await expect(alert).to_contain_text("Nhiều lượt đăng nhập sai")
    await expect(alert).to_contain_text(f"{LOGIN_BURST_ATTEMPTS} lượt trong 60")
    await expect(alert).to_contain_text("127.0.0.1")
    await admin.click(".security-alert .dismiss")
    await expect(alert).to_have_count(0)
    await guard.reload()
    await expect(guard.locator("#link")).to_have_attribute("data-state", "live")
    await expect(guard.locator(".alert.security-alert")).to_have_count(0)
