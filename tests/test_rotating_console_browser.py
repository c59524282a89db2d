"""The guard console's side of issue 21 (real headless Chromium): a printed pass at a
guard_check site raises an alert the guard clears with one tap (an id_check event), and
a kiosk whose clock is far off shows its skew in the Kiosks tab and raises an alert."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer
from tests.test_console_browser import base_url, browser, open_console, person_with_pass, shot

__all__ = ["browser"]  # the fixture, shared with the console's other browser tests

Client = TestClient[Any, Any]


async def test_the_guard_confirms_a_printed_pass_with_one_tap(
    client: Client, factory: Factory, browser: Browser, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory, checkin_rules='{"static_pass": "guard_check"}')
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    person, printed = await person_with_pass(factory, door, "Lý Thị Giấy")
    answer = await scan(client, door.kiosk[door.entrance], printed)
    assert answer["reason"] == "guard_check"
    alert = page.locator(".alert")
    await expect(alert).to_have_count(1)
    await expect(alert).to_contain_text("Kiểm tra giấy tờ")
    await expect(alert.locator(".allow-once")).to_have_count(0)  # no reason to type
    await shot(page, "console-id-check")
    await alert.locator(".id-checked").click()
    await expect(alert).to_have_count(0)
    row = await conn.fetchrow("SELECT actor, person_id, detail FROM events WHERE kind = 'id_check'")
    assert username in row["actor"]  # the guard, as the event log names them
    assert row["person_id"] == person and row["detail"]["overrides"] == answer["event_id"]
    await expect(page.locator("#feed tr.kind-id_check")).to_have_count(1)


async def test_a_kiosk_clock_far_off_shows_in_the_kiosks_tab_with_an_alert(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    good, bad = door.kiosk[door.entrance], door.kiosk[door.entrance_b]
    for token, skew in ((good, -340), (bad, 42_000)):
        resp = await client.post(
            "/api/v1/kiosk/heartbeat", json={"clock_skew_ms": skew}, headers=bearer(token)
        )
        assert resp.status == 204, await resp.text()
    page = await open_console(browser, base_url(client), username, password)
    await page.click("[data-tab=kiosks]")
    skews = page.locator("#kiosks td.clock-skew")
    await expect(skews.filter(has_text="−0.3 s")).to_have_count(1)
    await expect(page.locator("#kiosks td.clock-skew.deny")).to_have_text("+42.0 s")
    await expect(page.locator(".alert.clock-alert")).to_have_count(1)
    await expect(page.locator(".alert.clock-alert")).to_contain_text("+42.0 s")
