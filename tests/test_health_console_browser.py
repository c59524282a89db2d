"""The console's live feed shows the health desk's suspensions with the person's name
(real Chromium, a health officer's console account)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect

from service.web.auth import Role
from tests.checkin_helpers import make_door
from tests.factory import Factory, bearer
from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    Client,
    base_url,
    browser,
    open_console,
    person_with_pass,
)


async def test_a_health_officer_sees_a_suspension_in_the_feed(
    client: Client,
    factory: Factory,
    browser: Browser,  # noqa: F811
) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.HEALTH, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    person, _ = await person_with_pass(factory, door, "Nguyễn Thị Hạnh")
    health = await factory.token(Role.HEALTH, site_id=door.site_id)
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    resp = await client.post(
        "/api/v1/cases",
        json={"person_id": person, "onset_on": today},
        headers=bearer(health),
    )
    assert resp.status == 201, await resp.text()
    row = page.locator("#feed tr.kind-suspension").first
    await expect(row).to_contain_text("Nguyễn Thị Hạnh")
    await expect(row).to_contain_text("Tạm dừng ra vào")
