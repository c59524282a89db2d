"""The health desk's printable pages in real Chromium, opened from a health officer's
console login: their own stylesheet applies, nothing is refused by the page's policy,
and they run no script."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect

from service.web.auth import Role
from tests.factory import Factory, bearer
from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    Client,
    base_url,
    browser,
    open_console,
)
from tests.test_health_reports import staff_at


async def test_the_printable_pages_render_with_their_own_style_and_no_script(
    client: Client,
    factory: Factory,
    browser: Browser,  # noqa: F811
) -> None:
    site_id = await factory.site()
    person = await staff_at(factory, site_id, "Trương Thị Cần", "very_high")
    health = await factory.token(Role.HEALTH, site_id=site_id)
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    resp = await client.post(
        "/api/v1/cases", json={"person_id": person, "onset_on": today}, headers=bearer(health)
    )
    assert resp.status == 201, await resp.text()
    case_id = (await resp.json())["id"]
    username, password = await factory.account(Role.HEALTH, site_id=site_id)
    page = await open_console(browser, base_url(client), username, password)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: refused.append(str(e)))
    base = base_url(client)
    for path, heading, text in (
        (f"/api/v1/sites/{site_id}/tests-due.html", "Danh sách cần xét nghiệm", "Quá hạn"),
        (f"/api/v1/cases/{case_id}/report.html?lang=en", "Case report", "Contacts (F1): 0"),
        (
            f"/api/v1/sites/{site_id}/health-report.html?date={today}",
            "Báo cáo y tế",
            "case_confirmed",
        ),
    ):
        answer = await page.goto(base + path)
        assert answer is not None and answer.status == 200, path
        await expect(page.locator("h1")).to_contain_text(heading)
        await expect(page.locator("main")).to_contain_text(text)
        assert await page.locator("script").count() == 0
        width = await page.locator("main").evaluate("m => getComputedStyle(m).maxWidth")
        assert width == "900px", path  # 60rem of 15px: /static/health-print.css applied
    assert refused == []
