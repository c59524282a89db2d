"""The console's site settings in a real headless Chromium, against the real service:
an admin's door-rules form that saves and shows a refused field beside it (vi and en),
and the webhook panel (the secret once, the delivery log after a denial at the door,
sent to a real local HTTP receiver). An auditor reads both and changes neither."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, expect

from service.web.auth import Role
from tests.checkin_helpers import Door, scan
from tests.factory import Factory, bearer
from tests.test_console_browser import base_url, browser, make_door, open_console, shot

__all__ = ["browser"]  # the fixture

Client = TestClient[Any, Any]
# The webhook sender's rounds, short so the delivery is in the log soon; the log is
# asked for every 5 s: a bound that only stops a hung test.
DELIVERY_TIMEOUT_MS = 30_000


async def door_rules(client: Client, site_id: int, token: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/sites/{site_id}/door-rules", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    rules: dict[str, Any] = (await resp.json())["rules"]
    return rules


async def open_settings(page: Page) -> None:
    await page.click("[data-tab=settings]")
    await expect(page.locator("#rules-form")).to_be_visible()


async def settings_as(
    client: Client, factory: Factory, browser: Browser, role: Role
) -> tuple[Door, Page]:
    """A new site, and its console's Site settings tab opened by an account of `role`."""
    door = await make_door(factory)
    username, password = await factory.account(role, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    await open_settings(page)
    return door, page


def field(page: Page, name: str) -> Any:
    return page.locator(f'#rules-form [data-field="{name}"]')


async def test_the_form_saves_the_door_rules(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door, page = await settings_as(client, factory, browser, Role.ADMIN)
    before = await door_rules(client, door.site_id, door.admin)
    await expect(field(page, "anti_passback").locator("select")).to_have_value("strict")
    await field(page, "anti_passback").locator("select").select_option("warn")
    await field(page, "auto_checkout.at").locator("input").fill("22:30")
    await field(page, "auto_checkout.after_minutes").locator("input").fill("600")
    await field(page, "trace_estimated_end").locator("select").select_option("last_evidence")
    await page.click("#rules-form .save-rules")
    await expect(page.locator("#rules-message")).to_have_text("Đã lưu.")

    after = await door_rules(client, door.site_id, door.admin)
    assert after["anti_passback"] == "warn"
    assert after["auto_checkout"]["at"] == "22:30"
    assert after["auto_checkout"]["after_minutes"] == 600
    assert after["trace_estimated_end"] == "last_evidence"
    # What the form does not change stays as it was (the factory's printed passes).
    assert after["static_pass"] == before["static_pass"]
    assert after["override_window_s"] == before["override_window_s"]
    # Emptied, a rule is off again; a reload shows what is stored.
    await field(page, "auto_checkout.after_minutes").locator("input").fill("")
    await page.click("#rules-form .save-rules")
    await expect(page.locator("#rules-message")).to_have_text("Đã lưu.")
    assert (await door_rules(client, door.site_id, door.admin))["auto_checkout"][
        "after_minutes"
    ] is None
    await page.reload()
    await open_settings(page)
    await expect(field(page, "auto_checkout.at").locator("input")).to_have_value("22:30")
    await expect(field(page, "auto_checkout.after_minutes").locator("input")).to_have_value("")


async def test_a_bad_time_shows_the_field_error_beside_the_field(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door, page = await settings_as(client, factory, browser, Role.ADMIN)
    before = await door_rules(client, door.site_id, door.admin)
    await field(page, "auto_checkout.at").locator("input").fill("25:00")
    await field(page, "silent_after_minutes").locator("input").fill("0")
    await page.click("#rules-form .save-rules")
    at = field(page, "auto_checkout.at")
    await expect(at.locator(".field-error")).to_have_text("Không đúng định dạng")
    await expect(at.locator("input")).to_have_attribute("aria-invalid", "true")
    await expect(at.locator("input")).to_have_value("25:00")  # what was typed stays
    silent = field(page, "silent_after_minutes")
    await expect(silent.locator(".field-error")).to_have_text("Giá trị phải từ 1 trở lên")
    await expect(field(page, "anti_passback").locator(".field-error")).to_have_text("")
    await expect(page.locator("#rules-message")).to_contain_text("Chưa lưu")
    await shot(page, "console-door-rules")
    # In English, the same refusal in English words.
    await page.click("#lang-switch")
    await expect(at.locator(".field-error")).to_have_text("The format is not valid")
    await expect(silent.locator(".field-error")).to_have_text("Must be 1 or more")
    await expect(at.locator("input")).to_have_value("25:00")
    assert await door_rules(client, door.site_id, door.admin) == before
    # Corrected, it saves.
    await at.locator("input").fill("23:00")
    await silent.locator("input").fill("90")
    await page.click("#rules-form .save-rules")
    await expect(page.locator("#rules-message")).to_have_text("Saved.")
    await expect(at.locator(".field-error")).to_have_text("")
    after = await door_rules(client, door.site_id, door.admin)
    assert (after["auto_checkout"]["at"], after["silent_after_minutes"]) == ("23:00", 90)


@pytest.mark.limits(webhook_interval_s=0.2, webhook_retry_base_s=0.2)
async def test_the_delivery_log_lists_a_deny_sent_to_the_webhook(
    client: Client,
    factory: Factory,
    browser: Browser,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    taken: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        taken.append(await request.read())
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    server = await aiohttp_server(receiver)
    door, page = await settings_as(client, factory, browser, Role.ADMIN)
    await expect(page.locator(".webhook-current")).to_have_text("Chưa đặt webhook.")
    await expect(page.locator("#webhook")).not_to_contain_text("null")
    # Not http(s): refused beside the field, nothing set.
    await page.fill("#webhook-url", "ftp://example.org/hook")
    await page.click(".save-webhook")
    await expect(page.locator("#webhook-form .field-error")).to_have_text("Không đúng định dạng")
    await expect(page.locator(".webhook-secret")).to_have_count(0)
    url = str(server.make_url("/hook"))
    await page.fill("#webhook-url", url)
    await page.click(".save-webhook")
    await expect(page.locator("#webhook-message")).to_have_text("Đã lưu webhook.")
    await expect(page.locator(".webhook-current")).to_contain_text(url)
    secret = page.locator(".webhook-secret code")
    await expect(secret).to_have_text(await webhook_secret(client, door.site_id, door.admin, url))
    await expect(page.locator("#deliveries")).to_contain_text("Chưa gửi lần nào.")

    denied = await scan(client, door.kiosk[door.entrance], "not a pass")
    assert denied["decision"] == "deny"
    row = page.locator("#deliveries tr[data-type=deny_alert]")
    await expect(row).to_have_attribute("data-state", "delivered", timeout=DELIVERY_TIMEOUT_MS)
    await expect(row.locator(".delivery-type")).to_have_text("Cảnh báo từ chối")
    await expect(row.locator(".delivery-state")).to_have_text("Đã gửi")
    await expect(row.locator(".attempts")).to_have_text("1")
    await expect(row.locator(".last-status")).to_have_text("204")
    assert len(taken) == 1
    await page.click("#alerts .dismiss")  # the denial's banner, for the screenshot
    await shot(page, "console-webhook")
    # The secret is shown once: not after a reload.
    await page.reload()
    await open_settings(page)
    await expect(page.locator("#deliveries tr[data-type=deny_alert]")).to_have_count(1)
    await expect(page.locator(".webhook-secret")).to_have_count(0)
    # Deleted after the confirmation step.
    await page.click(".delete-webhook")
    await page.click("#confirm-ok")
    await expect(page.locator("#webhook-message")).to_have_text("Đã xoá webhook; không gửi gì nữa.")
    await expect(page.locator(".webhook-current")).to_have_text("Chưa đặt webhook.")
    resp = await client.get(f"/api/v1/sites/{door.site_id}/webhook", headers=bearer(door.admin))
    assert (await resp.json())["webhook"] is None


async def webhook_secret(client: Client, site_id: int, token: str, url: str) -> str:
    """The secret as the API gives it (setting the same URL again keeps it)."""
    resp = await client.put(
        f"/api/v1/sites/{site_id}/webhook", json={"url": url}, headers=bearer(token)
    )
    assert resp.status == 200, await resp.text()
    secret: str = (await resp.json())["secret"]
    return secret


async def test_an_auditor_reads_the_settings_and_changes_nothing(
    client: Client, factory: Factory, browser: Browser
) -> None:
    _, page = await settings_as(client, factory, browser, Role.AUDITOR)
    await expect(field(page, "anti_passback").locator("select")).to_be_disabled()
    await expect(page.locator("#rules-form .save-rules")).to_have_count(0)
    await expect(page.locator("#rules-form")).to_contain_text("Chỉ quản trị viên được thay đổi.")
    await expect(page.locator(".webhook-current")).to_have_text("Chưa đặt webhook.")
    await expect(page.locator("#webhook-form")).to_have_count(0)
    await expect(page.locator("#webhook")).not_to_contain_text("null")
    await expect(page.locator("#deliveries")).to_contain_text("Chưa gửi lần nào.")
