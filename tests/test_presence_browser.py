"""The Inside tab and the printed roll call in three groups, in a real headless
Chromium: inside, probably gone, checked out automatically today; a guard's one tap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web
from playwright.async_api import Browser, expect

from service.web.auth import Role
from tests.checkin_helpers import scan
from tests.factory import Factory
from tests.presence_helpers import (
    Client,
    FakeClock,
    clock,
    enter,
    person_with_pass,
    set_door_rules,
    settings,
    sweep,
)
from tests.test_console_browser import base_url, browser, make_door, open_console, shot

__all__ = ["browser", "clock", "settings"]  # fixtures


def midday_zone() -> str:
    """A zone where it is about noon now, so "today" holds every stay of the test."""
    offset = 12 - datetime.now(UTC).hour
    return f"Etc/GMT{-offset:+d}"  # the Etc zones count the other way round


async def test_inside_probably_gone_and_checked_out_today(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    browser: Browser,
    clock: FakeClock,
) -> None:
    door = await make_door(factory, name="Sở Y tế", capacity=10)
    await conn.execute("UPDATE sites SET timezone = $2 WHERE id = $1", door.site_id, midday_zone())
    await set_door_rules(client, door, auto_checkout={"after_minutes": 60}, silent_after_minutes=30)
    here, here_payload = await person_with_pass(factory, door, full_name="Nguyễn Văn An")
    quiet, quiet_payload = await person_with_pass(factory, door, full_name="Trần Thị Bình")
    left, left_payload = await person_with_pass(factory, door, full_name="Lê Văn Cường")
    await enter(client, door, here_payload)
    for payload, minutes_ago in ((quiet_payload, 45), (left_payload, 65)):
        seen = datetime.now(UTC) - timedelta(minutes=minutes_ago)  # a kiosk's outbox
        offline = {"verdict": "allow", "reason": "welcome"}
        await scan(
            client, door.kiosk[door.entrance], payload, seen_at=seen.isoformat(), offline=offline
        )
    clock.now = datetime.now(UTC)
    assert (await sweep(app)).closed == 1  # Cường, at the hour

    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    await page.click("[data-tab=inside]")
    await expect(page.locator("#inside tr")).to_have_count(1)
    await expect(page.locator(f"#inside tr[data-person-id='{here}']")).to_contain_text("Cổng A")
    gone_row = page.locator(f"#probably-gone tr[data-person-id='{quiet}']")
    await expect(gone_row).to_contain_text("lâu không quét")
    await expect(page.locator(f"#checked-out-today tr[data-person-id='{left}']")).to_contain_text(
        "quá thời lượng"
    )
    await expect(page.locator("#likely-inside")).to_have_text("1")
    await shot(page, "inside-groups")

    # One tap each: Bình is seen (back to inside), An has gone (checked out).
    await gone_row.locator("button.seen").click()
    await expect(page.locator(f"#inside tr[data-person-id='{quiet}']")).to_have_count(1)
    await expect(page.locator("#probably-gone tr")).to_have_count(0)
    await page.locator(f"#inside tr[data-person-id='{here}'] button.gone").click()
    await expect(page.locator(f"#checked-out-today tr[data-person-id='{here}']")).to_contain_text(
        "bảo vệ xác nhận đã về"
    )
    actors = await conn.fetch(
        "SELECT actor, detail->>'status' AS status FROM events"
        " WHERE kind = 'presence_confirmed' ORDER BY seq"
    )
    assert [(a["actor"], a["status"]) for a in actors] == [
        (f"guard:user:{username}", "seen"),
        (f"guard:user:{username}", "gone"),
    ]

    # The printed roll call: the same groups, the site's name and the time.
    await page.click("#rollcall-link")
    await expect(page.locator("h1")).to_contain_text("Sở Y tế")
    await expect(page.locator("p.count")).to_contain_text("Lập lúc")
    groups = page.locator("section.group")
    await expect(groups).to_have_count(3)
    await expect(page.locator("[data-group=inside] tbody tr")).to_have_count(1)
    await expect(page.locator("[data-group=inside]")).to_contain_text("Trần Thị Bình")
    await expect(page.locator("[data-group=probably_gone]")).to_contain_text("Không có ai")
    await expect(page.locator("[data-group=checked_out_today] tbody tr")).to_have_count(2)
    await shot(page, "rollcall-groups")
