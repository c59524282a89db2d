"""Deny alerts in the guard console (real headless Chromium): only for denials happening
now, and an override refused says why in the page's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory
from tests.test_console_browser import base_url, browser, open_console, person_with_pass

__all__ = ["browser"]  # the fixture, shared with the console's other browser tests

Client = TestClient[Any, Any]
OFFLINE_DENY = {"verdict": "deny", "reason": "offline_denied"}


async def test_stale_denials_replayed_by_an_offline_kiosk_raise_no_alert(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    long_ago = (datetime.now(UTC) - timedelta(minutes=14)).isoformat()
    # Replayed before the guard logs in: the feed shows it on login, no alert.
    _, first = await person_with_pass(factory, door, "Hoàng Văn Cũ")
    await scan(client, door.kiosk[door.entrance], first, seen_at=long_ago, offline=OFFLINE_DENY)
    page = await open_console(browser, base_url(client), username, password)
    await expect(page.locator("#feed tr")).to_have_count(1)
    await expect(page.locator("#feed tr").first).to_contain_text("H. V. Cũ")
    # Replayed while the guard watches, from a kiosk offline for days (beyond the replay
    # age the site trusts, so recorded at the time received): no alert either.
    _, second = await person_with_pass(factory, door, "Đinh Thị Muộn")
    days_ago = (datetime.now(UTC) - timedelta(days=4)).isoformat()
    await scan(client, door.kiosk[door.entrance_b], second, seen_at=days_ago, offline=OFFLINE_DENY)
    await expect(page.locator("#feed tr").first).to_contain_text("Đ. T. Muộn")
    await expect(page.locator(".alert")).to_have_count(0)
    # A denial happening now does raise one (after the stale ones, in feed order).
    await scan(client, door.kiosk[door.entrance], "not a pass")
    await expect(page.locator("#feed tr")).to_have_count(3)
    await expect(page.locator(".alert")).to_have_count(1)
    # And so does a kiosk's offline denial replayed at once (the link came back quickly).
    _, third = await person_with_pass(factory, door, "Mai Văn Ngay")
    await scan(client, door.kiosk[door.entrance_b], third, offline=OFFLINE_DENY)
    await expect(page.locator(".alert")).to_have_count(2)
    await expect(page.locator(".alert").first).to_contain_text("M. V. Ngay")


async def test_a_refused_override_says_why_in_english_too(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    await page.click("#lang-switch")
    await expect(page.locator("[data-tab=live]")).to_have_text("Live")
    alert = page.locator(".alert")
    person, listed = await person_with_pass(factory, door, "Tạ Văn Cấm")
    await factory.conn.execute(
        "INSERT INTO deny_list (person_id, site_id, reason, added_by) VALUES ($1, $2, 'x', 't')",
        person,
        door.site_id,
    )
    await scan(client, door.kiosk[door.entrance], listed)
    await expect(alert).to_have_count(1)
    await alert.locator(".override-reason").fill("Known to the guard")
    await alert.locator(".allow-once").click()
    await expect(alert.locator(".alert-message")).to_have_text(
        "Cannot let in: Only an admin may let someone in whose pass is revoked, who is on"
        " the deny list or who is suspended."
    )
    await expect(alert).to_have_count(1)  # still there, for the admin to decide
