"""The console's ES modules in a real headless Chromium: for each role, the page loads
them under its CSP without a script error, shows the tabs that role may use and no
other, and every shown tab opens in both languages."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from service.web.auth import Role
from tests.factory import Factory
from tests.test_console_browser import base_url, browser, make_door, open_console

__all__ = ["browser"]  # the fixture

Client = TestClient[Any, Any]
ALL_TABS = ("live", "inside", "search", "kiosks", "chart", "review", "health", "settings")
TABS = {
    Role.GUARD: ("live", "inside", "search", "kiosks", "chart"),
    Role.AUDITOR: ("live", "inside", "search", "kiosks", "chart", "settings"),
    Role.HEALTH: ("live", "search", "review", "health"),
    Role.ADMIN: ALL_TABS,
}
HEADINGS = {"chart": ("Lưu lượng trong ngày", "Occupancy"), "kiosks": ("Máy quét", "Kiosks")}


def script_error(kind: str, text: str) -> bool:
    return kind == "error" and not text.startswith("Failed to load resource")


@pytest.mark.parametrize("role", list(TABS))
async def test_each_role_gets_its_tabs_without_a_script_error(
    client: Client, factory: Factory, browser: Browser, role: Role
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(role, site_id=door.site_id)
    errors: list[str] = []
    page = await open_console(browser, base_url(client), username, password)
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A refused fetch is logged by the browser; what the API refuses is its business.
    # A script error is the page's.
    page.on("console", lambda m: errors.append(m.text) if script_error(m.type, m.text) else None)
    for name in ALL_TABS:
        button = page.locator(f"[data-tab={name}]")
        if name in TABS[role]:
            await expect(button).to_be_visible()
        else:
            await expect(button).to_be_hidden()
    for name in TABS[role]:
        await page.click(f"[data-tab={name}]")
        await expect(page.locator(f"#tab-{name}")).to_be_visible()
        await expect(page.locator(f"[data-tab={name}]")).not_to_have_text(f"tab_{name}")
        if name in HEADINGS:
            await expect(page.locator(f"#tab-{name} h2").first).to_have_text(HEADINGS[name][0])
    await page.click("#lang-switch")
    await expect(page.locator("[data-tab=live]")).to_have_text("Live")
    for name in TABS[role]:
        await page.click(f"[data-tab={name}]")
        if name in HEADINGS:
            await expect(page.locator(f"#tab-{name} h2").first).to_have_text(HEADINGS[name][1])
    await expect(page.locator("#link")).to_have_attribute("data-state", "live")
    assert errors == []
