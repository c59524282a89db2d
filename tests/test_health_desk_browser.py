"""The health officer's desk in the console, in real headless Chromium against the real
service: the review queue (approve shows the pass, reject shows none), and the loop
of a case: record it, see the contact, suspend them, see the hold in the list and the
feed, record an official negative and see the hold cleared; a flagged area's re-screen
and the clearance of its holds. The declarer's own result page shows the pass once
approved, and never a pass for a result in review or rejected.

CONSOLE_SCREENSHOTS=docs/screenshots saves console-review.png, console-case.png and
console-health.png.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import Browser, Page, expect

from service.web.auth import Role
from tests.declaring import declaration
from tests.factory import Factory
from tests.health_helpers import Client, call, declare, door, make_desk
from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    base_url,
    browser,
    open_console,
    shot,
)


async def in_review(client: Client, site_id: int, name: str, phone: str, **answers: object) -> int:
    resp = await client.post(
        "/api/v1/declarations",
        json=declaration(site_id, full_name=name, phone=phone, **answers),
    )
    body = await resp.json()
    assert resp.status == 201 and body["status"] == "review", body
    declaration_id: int = body["declaration_id"]
    return declaration_id


async def confirm(page: Page, title: str) -> None:
    dialog = page.locator("#confirm")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#confirm-title")).to_contain_text(title)
    await page.click("#confirm-ok")
    await expect(dialog).to_be_hidden()


async def test_the_review_desk_approves_with_a_pass_and_rejects_without(
    client: Client,
    factory: Factory,
    browser: Browser,  # noqa: F811
) -> None:
    desk = await make_desk(factory)
    ill = await in_review(
        client, desk.site_id, "Phạm Văn Sốt", "0913 000 001", symptoms=["fever", "cough"]
    )
    near = await in_review(
        client,
        desk.site_id,
        "Đỗ Thị Gần",
        "0913 000 002",
        contact_f1=True,
        travel_areas=["Đông Triều"],
    )
    username, password = await factory.account(Role.HEALTH, site_id=desk.site_id)
    page = await open_console(browser, base_url(client), username, password)
    await page.click("[data-tab=review]")
    items = page.locator("#reviews li.review")
    await expect(items).to_have_count(2)
    await expect(page.locator("#review-count")).to_have_text("2")
    # Oldest first, with the answers that sent each one here.
    first, second = items.nth(0), items.nth(1)
    await expect(first).to_have_attribute("data-declaration-id", str(ill))
    await expect(first.locator(".review-reasons")).to_contain_text("triệu chứng")
    await expect(first.locator(".review-answers dd.flagged")).to_contain_text("Sốt")
    await expect(second.locator(".review-answers")).to_contain_text("Đông Triều")
    await expect(second.locator(".review-reasons li[data-code=contact_f1]")).to_have_count(1)
    await shot(page, "console-review")

    # Approve with a note: the confirmation names the person; the pass is shown.
    await first.locator("textarea").fill("Sốt do tiêm vắc-xin, đã khám")
    await first.locator("button.approve").click()
    await confirm(page, "Phạm Văn Sốt")
    done = page.locator(f"#reviews li.decided[data-declaration-id='{ill}']")
    await expect(done.locator(".decision")).to_contain_text("Đã duyệt")
    await expect(done.locator("img.qr")).to_be_visible()
    print_url = await done.locator("a.print-pass").get_attribute("href")
    assert print_url is not None
    printed = await client.get(print_url)
    assert printed.status == 200 and "Phạm Văn Sốt" in await printed.text()

    # Reject, after a cancel that changes nothing.
    waiting = page.locator(f"#reviews li.review:not(.decided)[data-declaration-id='{near}']")
    await waiting.locator("button.reject").click()
    await page.click("#confirm-cancel")
    await expect(waiting.locator(".row-message")).to_contain_text("Đã huỷ")
    await waiting.locator("button.reject").click()
    await confirm(page, "Đỗ Thị Gần")
    rejected = page.locator(f"#reviews li.decided[data-declaration-id='{near}']")
    await expect(rejected.locator(".decision")).to_contain_text("Đã từ chối")
    await expect(rejected.locator("img")).to_have_count(0)
    await expect(page.locator("#review-count")).to_have_text("0")
    queue = await call(client, "GET", f"/api/v1/sites/{desk.site_id}/reviews", desk.health, 200)
    assert queue["declarations"] == []
    # In English on request, the decided ones too.
    await page.click("#lang-switch")
    await expect(page.locator("[data-tab=review]")).to_have_text("Review")
    await expect(done.locator(".decision")).to_contain_text("Approved: a pass was issued.")
    await expect(rejected.locator(".decision")).to_contain_text("Rejected: no pass.")
    # A guard's console has no review desk.
    guard, guard_password = await factory.account(Role.GUARD, site_id=desk.site_id)
    guard_page = await open_console(browser, base_url(client), guard, guard_password)
    await expect(guard_page.locator("[data-tab=review]")).to_be_hidden()
    await expect(guard_page.locator("[data-tab=health]")).to_be_hidden()


async def declare_on_the_form(page: Page, name: str, phone: str, symptom: str) -> None:
    """Fill in the form open on the page as a visitor, and send it."""
    await page.check("input[name=kind][value=visitor]")
    await page.fill("input[name=full_name]", name)
    await page.fill("input[name=phone]", phone)
    await page.fill("input[name=host_name]", "Trần Thị Bình")
    await page.fill("input[name=purpose]", "Họp")
    await page.check("input[name=contact_f0][value=no]")
    await page.check("input[name=contact_f1][value=no]")
    await page.check(f"input[name=symptoms][value={symptom}]")
    await page.select_option("select[name=vaccination_doses]", "2")
    await page.click("button[type=submit]")


async def decide_the_only_one(client: Client, site_id: int, token: str, decision: str) -> None:
    queue = await call(client, "GET", f"/api/v1/sites/{site_id}/reviews", token, 200)
    (waiting,) = queue["declarations"]
    url = f"/api/v1/declarations/{waiting['id']}/review"
    await call(client, "POST", url, token, 200, decision=decision)


async def not_valid(page: Page, status: str) -> None:
    """A result in review or rejected: its own colour, no pass anywhere on the page."""
    await expect(page.locator(f"section.result.status-{status}")).to_be_visible()
    await expect(page.locator("img")).to_have_count(0)
    await expect(page.locator(".valid")).to_have_count(0)
    colour = await page.locator("section.result").evaluate(
        "e => getComputedStyle(e).borderLeftColor"
    )
    assert colour != "rgb(26, 127, 55)"  # the cleared result's green


async def test_the_declarer_sees_the_pass_once_approved(
    client: Client,
    factory: Factory,
    browser: Browser,  # noqa: F811
) -> None:
    desk = await make_desk(factory)
    base = base_url(client)
    page = await (await browser.new_context(locale="vi-VN")).new_page()
    await page.goto(f"{base}/declare?site={desk.site_id}")
    await declare_on_the_form(page, "Vũ Thị Chờ", "0914 000 001", "fever")
    await not_valid(page, "review")
    # The page left after the form asks again by itself (no script: a meta refresh).
    refresh = await page.locator("meta[http-equiv=refresh]").get_attribute("content")
    assert refresh is not None and "/declare/result?key=" in refresh
    await page.click("a.follow")
    await expect(page).to_have_url(f"{base}/declare/result?" + refresh.split("?", 1)[1])
    await not_valid(page, "review")

    await decide_the_only_one(client, desk.site_id, desk.health, "approve")
    await page.reload()
    await expect(page.locator("section.result.status-cleared")).to_be_visible()
    await expect(page.locator("img.qr")).to_be_visible()
    await expect(page.locator("meta[http-equiv=refresh]")).to_have_count(0)
    png = await page.locator("img.qr").get_attribute("src")
    assert png is not None and (await client.get(png)).status == 200

    # The re-declare link still works: a clean declaration with it is cleared at once.
    await page.click("p.again a")
    await declare_on_the_form(page, "Vũ Thị Chờ", "0914 000 001", "none")
    await expect(page.locator("section.result.status-cleared")).to_be_visible()
    await expect(page.locator("img.qr")).to_be_visible()
    # The old result's link now says it was replaced, and shows no pass.
    await page.goto(f"{base}/declare/result?" + refresh.split("?", 1)[1])
    await expect(page.locator("main")).to_contain_text("đã được thay bằng một khai báo mới hơn")
    await expect(page.locator("img")).to_have_count(0)

    # A rejected one: never a pass, however often reloaded.
    await page.goto(f"{base}/declare?site={desk.site_id}")
    await declare_on_the_form(page, "Lý Văn Không", "0914 000 002", "cough")
    await page.click("a.follow")
    await decide_the_only_one(client, desk.site_id, desk.health, "reject")
    await page.reload()
    await not_valid(page, "rejected")
    await expect(page.locator("meta[http-equiv=refresh]")).to_have_count(0)
    assert (await client.get("/declare/result?key=not-a-key")).status == 404


async def dismiss_alerts(page: Page) -> None:
    alerts = page.locator("#alerts .alert")
    while await alerts.count():
        await alerts.first.locator("button.dismiss").click()


async def pick(page: Page, form: str, query: str, name: str) -> None:
    box = page.locator(f"#{form} .person-pick")
    await box.locator("input.pick-q").fill(query)
    await box.locator("input.pick-q").press("Enter")
    await box.locator("button.result", has_text=name).click()
    await expect(box.locator(".pick-chosen")).to_contain_text(name)


async def test_a_case_from_the_desk_to_the_door_and_back(
    client: Client,
    factory: Factory,
    browser: Browser,  # noqa: F811
) -> None:
    desk = await make_desk(factory)
    site = desk.site_id
    first = await declare(client, site, "Nguyễn Văn An", "0912 000 001")
    second = await declare(client, site, "Trần Thị Bình", "0912 000 002")
    third = await declare(
        client, site, "Lê Văn Cường", "0912 000 003", travel_areas=["Phường Thạch Bàn"]
    )
    # The first two overlap for two minutes; the second left two minutes ago.
    assert await door(client, desk.entrance, first, 280) == ("allow", "welcome")
    assert await door(client, desk.entrance, second, 240) == ("allow", "welcome")
    assert await door(client, desk.exit, second, 120) == ("allow", "goodbye")
    username, password = await factory.account(Role.HEALTH, site_id=site)
    page = await open_console(browser, base_url(client), username, password)
    await page.click("[data-tab=health]")

    # Record the case: the contact is listed with their overlap and gate.
    await pick(page, "case-form", "Nguyen Van An", "Nguyễn Văn An")
    await page.fill("#case-form textarea[name=note]", "PCR dương tính, CDC quận báo")
    await page.click("#case-form button[type=submit]")
    await confirm(page, "Nguyễn Văn An")
    contact = page.locator(f"#case table.contacts tr[data-person-id='{second.person_id}']")
    await expect(contact).to_contain_text("Trần Thị Bình")
    await expect(contact).to_contain_text("Cổng A")
    await expect(contact.locator("td.num")).to_have_text(re.compile(r"^(1\.9|2|2\.1)$"))
    await expect(contact.locator(".state")).to_contain_text("Chưa tạm dừng")
    await page.click("#case button.show-f2")
    await expect(page.locator("#case .f2 h3")).to_contain_text("0")

    # Suspend the chosen contact: held in the case, in the list, in the feed, at the door.
    await contact.locator("input.pick").check()
    await page.click("#case button.suspend-selected")
    await confirm(page, "1")
    await expect(contact.locator(".state")).to_contain_text("Đang tạm dừng")
    held = page.locator("#suspensions tr")
    await expect(held).to_have_count(2)
    held_contact = page.locator(f"#suspensions tr[data-person-id='{second.person_id}']")
    await expect(held_contact).to_contain_text("Trần Thị Bình")
    await expect(held_contact.locator(".cause")).to_have_text("Tiếp xúc với ca bệnh (F1)")
    alert = page.locator(f".suspension-alert[data-person-id='{second.person_id}']")
    await expect(alert).to_contain_text("Trần Thị Bình")
    await expect(alert).to_contain_text("cần kết quả xét nghiệm âm tính")
    await dismiss_alerts(page)
    await shot(page, "console-case")
    assert await door(client, desk.entrance, second) == ("deny", "contact_traced")
    assert await door(client, desk.entrance, first) == ("deny", "case_confirmed")
    # The officer sees the denials, but may not let anyone in (guards and admins may).
    denied = page.locator("#alerts .alert[data-event-id]", has_text="T. T. Bình")
    await expect(denied).to_contain_text("Tạm dừng ra vào")
    await expect(denied.locator("button.allow-once")).to_have_count(0)

    # An official negative after the exposure: cleared, and the door opens.
    await pick(page, "test-form", "0912 000 002", "Trần Thị Bình")
    await page.fill("#test-form input[name=source]", "CDC Hà Nội")
    await page.click("#test-form button[type=submit]")
    await expect(page.locator("#test-form .row-message")).to_contain_text("Đã gỡ tạm dừng: 1")
    await expect(held).to_have_count(1)
    await expect(
        page.locator(f"#suspensions tr[data-person-id='{first.person_id}']")
    ).to_be_visible()
    await expect(contact.locator(".state")).to_contain_text("Chưa tạm dừng")
    assert await door(client, desk.entrance, second) == ("allow", "welcome")

    # Flag the area the third travelled to: re-screened, held; removing the flag lifts
    # nothing until the officer clears every area hold in one action.
    today = datetime.now(UTC).date()
    await page.fill("#area-form input[name=name]", "Phường Thạch Bàn")
    await page.fill("#area-form input[name=flagged_from]", (today - timedelta(days=3)).isoformat())
    await page.click("#area-form button[type=submit]")
    await expect(page.locator("#area-message")).to_have_text(
        "Đã rà soát 1 khai báo; tạm dừng 1 người."
    )
    await expect(
        page.locator(f"#suspensions tr[data-person-id='{third.person_id}']")
    ).to_contain_text("Lê Văn Cường")
    await dismiss_alerts(page)
    await shot(page, "console-health")
    await page.click("#areas button.remove-area")
    await confirm(page, "Phường Thạch Bàn")
    await expect(page.locator("#areas tr")).to_have_count(0)
    assert await door(client, desk.entrance, third) == ("deny", "area_flagged")
    await page.click("#clear-areas")
    await expect(page.locator("#suspension-message")).to_contain_text("Cần ghi chú")
    await page.fill("#clear-note", "Vùng đã hết dịch theo CDC")
    await page.click("#clear-areas")
    await confirm(page, "vùng dịch")
    await expect(page.locator("#suspension-message")).to_have_text("Đã gỡ: 1.")
    await expect(held).to_have_count(1)
    assert await door(client, desk.entrance, third) == ("allow", "welcome")

    # The feed, by name and in words.
    await page.click("[data-tab=live]")
    feed = page.locator("#feed tr.kind-suspension_cleared", has_text="Trần Thị Bình")
    await expect(feed.first).to_contain_text("Hết tạm dừng ra vào: Tiếp xúc với ca bệnh (F1)")
    # An error from the API is shown in words, naming the field: a test in the future.
    await page.click("[data-tab=health]")
    await pick(page, "test-form", "0912 000 001", "Nguyễn Văn An")
    later = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    await page.fill("#test-form input[name=taken_at]", later)
    await page.click("#test-form button[type=submit]")
    await expect(page.locator("#test-form .row-message")).to_contain_text("taken_at")

    # Every word of the desk has its English too.
    await page.click("#lang-switch")
    await expect(page.locator("[data-tab=health]")).to_have_text("Health")
    untranslated = await page.evaluate(
        """() => [...document.querySelectorAll("[data-t], #tab-health th, #tab-health button")]
            .map((e) => e.textContent.trim()).filter((s) => /^[a-z0-9]+_[a-z0-9_]+$/.test(s))"""
    )
    assert untranslated == []
    await expect(page.locator("#case h3").first).to_contain_text("Contacts (F1)")
