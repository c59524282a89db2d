"""What confused a first-time guard and admin (issue 17), in a real headless Chromium
against the real service: exit rows that said "let in", a revoked pass still shown as
valid, feed rows without a name, revocations without a second thought, and a chart on
which two people were invisible."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from service.web.auth import Role
from tests import test_console_browser
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer
from tests.test_console_browser import base_url, open_console, person_with_pass

Client = TestClient[Any, Any]
browser = test_console_browser.browser  # the fixture: a headless Chromium


async def test_exit_rows_say_let_out(client: Client, factory: Factory, browser: Browser) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    _, payload = await person_with_pass(factory, door, "Nguyễn Văn An")
    await scan(client, door.kiosk[door.entrance], payload)
    await scan(client, door.kiosk[door.exit], payload)
    rows = page.locator("#feed tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0).locator(".badge")).to_have_text("CHO RA")
    await expect(rows.nth(0).locator(".reason")).to_have_text("Tạm biệt, hẹn gặp lại")
    await expect(rows.nth(1).locator(".badge")).to_have_text("CHO VÀO")
    # Leaving again without having come in: let out, and the guard is told.
    await scan(client, door.kiosk[door.exit], payload)
    await expect(rows.nth(0).locator(".reason")).to_contain_text("không có lượt vào")
    # Leaving through an entrance: the alert offers to let the person out.
    await scan(client, door.kiosk[door.entrance], payload, direction="out")
    alert = page.locator(".alert").first
    await expect(alert.locator(".alert-reason")).to_have_text(
        "Cổng này chỉ dùng để vào; hãy ra ở cổng ra"
    )
    await expect(alert.locator(".allow-once")).to_have_text("Cho ra một lần")
    await page.click("#lang-switch")
    await expect(rows.nth(1).locator(".badge")).to_have_text("LET OUT")
    await expect(rows.nth(3).locator(".badge")).to_have_text("LET IN")
    await expect(alert.locator(".allow-once")).to_have_text("Let out once")


async def search(page: Page, text: str) -> None:
    await page.click("[data-tab=search]")
    await page.fill("#search-q", text)
    await page.click("#search-form button")


async def test_revoke_asks_first_then_shows_the_pass_revoked(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    person, _ = await person_with_pass(factory, door, "Đỗ Văn Giang")
    admin, admin_password = await factory.account(Role.ADMIN)
    page = await open_console(browser, base_url(client), admin, admin_password)
    await search(page, "do van giang")
    result = page.locator("#search-results .result")
    await expect(result).to_contain_text("Mã QR: Còn hiệu lực")
    await result.click()
    pass_status = page.locator("#person .pass-status")
    await expect(pass_status).to_have_text("Còn hiệu lực")
    message = page.locator(".admin-actions .row-message")

    # The confirmation names the person and the reason; cancelling changes nothing.
    await page.locator(".admin-reason").fill("Kết quả xét nghiệm dương tính")
    await page.locator(".revoke").click()
    dialog = page.locator("#confirm")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#confirm-title")).to_have_text(
        "Thu hồi mọi mã QR của Đỗ Văn Giang?"
    )
    await expect(dialog).to_contain_text("Kết quả xét nghiệm dương tính")
    await expect(dialog.locator("#confirm-cancel")).to_be_focused()  # the safe default
    await dialog.locator("#confirm-cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(message).to_have_text("Đã huỷ; không có gì thay đổi.")
    detail = await (await client.get(f"/api/v1/people/{person}", headers=bearer(door.admin))).json()
    assert detail["current_declarations"][0]["pass"]["state"] == "valid"

    # Confirmed: revoked, and both the person and the result list say so at once.
    await page.locator(".revoke").click()
    await dialog.locator("#confirm-ok").click()
    await expect(message).to_have_text("Đã thu hồi 1 mã QR.")
    await expect(pass_status).to_have_text("Đã thu hồi")
    await expect(result).to_contain_text("Mã QR: Đã thu hồi")
    await expect(page.locator(".admin-reason")).to_have_value("")

    # The deny list asks too; Escape is a no.
    await page.locator(".admin-reason").fill("Vi phạm nội quy")
    await page.locator(".deny-add").click()
    await expect(dialog.locator("#confirm-title")).to_have_text(
        "Đưa Đỗ Văn Giang vào danh sách cấm?"
    )
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(message).to_have_text("Đã huỷ; không có gì thay đổi.")
    listed = await (await client.get("/api/v1/deny-list", headers=bearer(door.admin))).json()
    assert listed["entries"] == []
    await page.locator(".deny-add").click()
    await dialog.locator("#confirm-ok").click()
    await expect(message).to_have_text("Đã đưa vào danh sách cấm.")
    listed = await (await client.get("/api/v1/deny-list", headers=bearer(door.admin))).json()
    assert [e["person_id"] for e in listed["entries"]] == [person]

    # The feed names the person in both rows.
    await page.click("[data-tab=live]")
    await expect(page.locator("#feed tr.kind-pass_revoked")).to_contain_text("Đ. V. Giang")
    await expect(page.locator("#feed tr.kind-deny_list_add")).to_contain_text("Đ. V. Giang")
    # And after a reload the search still says revoked.
    await page.reload()
    await search(page, "Giang")
    await expect(page.locator("#search-results .result")).to_contain_text("Mã QR: Đã thu hồi")


async def test_a_revoke_or_review_elsewhere_shows_live(
    client: Client, factory: Factory, browser: Browser
) -> None:
    door = await make_door(factory)
    person, _ = await person_with_pass(factory, door, "Lý Thị Hoa")
    waiting = await factory.declaration(
        await factory.person(full_name="Vũ Văn Khánh"), door.site_id, status="review"
    )
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    await search(page, "Hoa")
    await page.locator("#search-results .result").click()
    await expect(page.locator("#person .pass-status")).to_have_text("Còn hiệu lực")

    # An admin revokes from the API (or another console): this console follows.
    resp = await client.post(
        f"/api/v1/people/{person}/revoke-passes",
        json={"reason": "F0"},
        headers=bearer(door.admin),
    )
    assert resp.status == 200, await resp.text()
    await expect(page.locator("#person .pass-status")).to_have_text("Đã thu hồi")
    await expect(page.locator("#search-results .result")).to_contain_text("Mã QR: Đã thu hồi")

    resp = await client.post(
        f"/api/v1/declarations/{waiting}/review",
        json={"decision": "reject"},
        headers=bearer(door.guard),
    )
    assert resp.status == 200, await resp.text()
    await page.click("[data-tab=live]")
    reviewed = page.locator("#feed tr.kind-declaration_reviewed")
    await expect(reviewed).to_contain_text("V. V. Khánh")
    await expect(reviewed.locator(".reason")).to_have_text("Duyệt khai báo: Không đạt")
    await expect(page.locator("#feed tr.kind-pass_revoked")).to_contain_text("L. T. Hoa")


CHART_GEOMETRY = """svg => {
    const zero = svg.querySelector("line.grid[data-value='0']");
    const grids = [...svg.querySelectorAll("line.grid")].map(l => Number(l.getAttribute("y1")));
    const line = svg.querySelector("polyline.inside-line");
    const ys = line.getAttribute("points").trim().split(/\\s+/).map(p => Number(p.split(",")[1]));
    const capacity = svg.querySelector("line.capacity-line");
    return {
        base: Number(zero.getAttribute("y1")),
        top: Math.min(...grids),
        peak: Math.min(...ys),
        capacity: capacity ? Number(capacity.getAttribute("y1")) : null,
    };
}"""


async def test_the_chart_is_scaled_to_the_day_with_capacity_as_a_line(
    client: Client, factory: Factory, browser: Browser, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory, capacity=500)
    for name in ("Khách Một", "Khách Hai"):
        _, payload = await person_with_pass(factory, door, name)
        await scan(client, door.kiosk[door.entrance], payload)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    page = await open_console(browser, base_url(client), username, password)
    await page.click("[data-tab=chart]")
    chart = page.locator("#chart svg")
    await expect(chart.locator("polyline.inside-line")).to_have_count(1)
    geometry = await chart.evaluate(CHART_GEOMETRY)
    # Two people inside reach well up the chart, not 2/500 of it.
    height = (geometry["base"] - geometry["peak"]) / (geometry["base"] - geometry["top"])
    assert height >= 0.5, geometry
    # The capacity far above: said at the top, not drawn off the scale.
    assert geometry["capacity"] is None
    await expect(chart.locator(".capacity-note")).to_have_text("▲ Sức chứa 500, cao hơn thang đo")
    await expect(page.locator("#chart .legend")).to_contain_text("Sức chứa: 500")

    # A capacity on the day's scale is a line at its height, above the two inside.
    await conn.execute("UPDATE sites SET capacity = 3 WHERE id = $1", door.site_id)
    await page.reload()
    await page.click("[data-tab=chart]")
    await expect(chart.locator("line.capacity-line")).to_have_count(1)
    geometry = await chart.evaluate(CHART_GEOMETRY)
    assert geometry["top"] <= geometry["capacity"] < geometry["peak"] < geometry["base"]
    await expect(chart.locator(".capacity-label")).to_have_text("Sức chứa 3")
