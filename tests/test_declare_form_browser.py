"""The public declaration form in headless Chromium: a visitor fills it in, with an
expected departure, sees the field named when it cannot be read, corrects it and gets
a pass; the departure is kept with the declaration (issue 22)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from playwright.async_api import Browser, expect

from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    UI_TIMEOUT_MS,
    base_url,
    browser,
    shot,
)
from tests.test_declare_form import Client


async def test_a_visitor_declares_with_an_expected_departure(
    client: Client,
    site_id: int,
    conn: asyncpg.Connection,
    browser: Browser,  # noqa: F811
) -> None:
    zone = ZoneInfo(await conn.fetchval("SELECT timezone FROM sites WHERE id = $1", site_id))
    tomorrow = (datetime.now(zone) + timedelta(days=1)).date()
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    await page.goto(f"{base_url(client)}/declare")
    await expect(page.locator("label[for=expected_departure]")).to_have_text("Giờ dự kiến về")
    await page.check("input[name=kind][value=visitor]")
    await page.fill("input[name=full_name]", "Lê Văn Khách")
    await page.fill("input[name=phone]", "0912345670")
    await page.fill("input[name=host_name]", "Trần Thị Bình")
    await page.fill("input[name=purpose]", "Họp")
    await page.fill("input[name=expected_departure]", "chiều nay")
    await page.check("input[name=contact_f0][value=no]")
    await page.check("input[name=contact_f1][value=no]")
    await page.check("input[name=symptoms][value=none]")
    await page.select_option("select[name=vaccination_doses]", "2")
    await page.click("button[type=submit]")

    error = page.locator("#expected_departure-error")
    await expect(error).to_contain_text("Giờ dự kiến về cần là giờ (17:30)")
    field = page.locator("input[name=expected_departure]")
    await expect(field).to_have_value("chiều nay")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("input[name=full_name]")).to_have_value("Lê Văn Khách")
    await shot(page, "declare-departure-error")

    await page.locator("a[hreflang=en]").click()  # the form in English, the site kept
    await expect(page.locator("label[for=expected_departure]")).to_have_text("Expected departure")
    await page.check("input[name=kind][value=visitor]")
    await page.fill("input[name=full_name]", "Lê Văn Khách")
    await page.fill("input[name=phone]", "0912345670")
    await page.fill("input[name=host_name]", "Trần Thị Bình")
    await page.fill("input[name=purpose]", "Họp")
    await page.fill("input[name=expected_departure]", f"{tomorrow} 17:30")
    await page.check("input[name=contact_f0][value=no]")
    await page.check("input[name=contact_f1][value=no]")
    await page.check("input[name=symptoms][value=none]")
    await page.select_option("select[name=vaccination_doses]", "2")
    await page.click("button[type=submit]")

    await expect(page.locator("section.result.status-cleared")).to_be_visible()
    await expect(page.locator("img.qr")).to_be_visible()
    await expect(page.locator("dd.name")).to_have_text("Lê Văn Khách")
    stored = await conn.fetchval(
        "SELECT answers->>'expected_departure' FROM declarations WHERE site_id = $1", site_id
    )
    assert datetime.fromisoformat(stored) == datetime(
        tomorrow.year, tomorrow.month, tomorrow.day, 17, 30, tzinfo=zone
    )
    await context.close()
