"""The phone's rotating pass page in headless Chromium: it makes its device key, binds
it, shows a code that the kiosk's decoder reads and that changes with the time step
(the page's clock driven by playwright), and shows again with the network off."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from checkin_core.keys import TrustList
from checkin_core.rotating import STEP_S, RotatingClaims, authenticate_any, time_step
from scanner.decode import make_decoder
from tests.checkin_helpers import make_door
from tests.factory import Factory
from tests.rotating_helpers import hold_key, link_key
from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    UI_TIMEOUT_MS,
    base_url,
    browser,
    shot,
)

Client = TestClient[Any, Any]


async def shown_code(page: Page) -> str:
    """What the kiosk's decoder reads off the page's QR canvas."""
    data_url = await page.locator("#rotating-qr canvas").evaluate("c => c.toDataURL('image/png')")
    png = np.frombuffer(base64.b64decode(data_url.split(",", 1)[1]), np.uint8)
    gray = cv2.imdecode(png, cv2.IMREAD_GRAYSCALE)
    found = make_decoder("pyzbar").decode(gray)
    assert len(found) == 1, "the decoder reads exactly one code"
    return found[0].text


async def test_the_phone_pass_rotates_and_shows_offline(
    client: Client,
    app: web.Application,
    factory: Factory,
    browser: Browser,  # noqa: F811
) -> None:
    door = await make_door(factory)
    hold_key(app, door.key)
    pass_id, _ = await factory.issued_pass(door.key, door.site_id)
    trust = TrustList([door.key.trusted_key()])
    base = base_url(client)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    await page.clock.install(time=datetime.now(UTC))
    url = f"{base}/passes/{pass_id}/phone?key={link_key(app, pass_id)}&lang=vi"
    await page.goto(url)
    box = page.locator("#rotating-qr")
    await expect(box.locator("canvas")).to_be_visible()
    # Screen-reader words, both languages; the brightness reminder.
    await expect(box).to_have_attribute("role", "img")
    label = await box.get_attribute("aria-label") or ""
    assert "Mã QR" in label and "QR code" in label
    await expect(page.locator(".brightness")).to_contain_text("độ sáng")
    await shot(page, "phone-pass")

    first = await shown_code(page)
    claims = authenticate_any(first, trust)
    assert isinstance(claims, RotatingClaims) and claims.pass_id == pass_id
    step = int(await box.get_attribute("data-step") or 0)
    assert claims.step == step and abs(step - time_step(datetime.now(UTC))) <= 1
    assert int(await box.get_attribute("data-qr-version") or 99) <= 10

    await page.clock.run_for(STEP_S * 1000)
    await expect(box).to_have_attribute("data-step", str(step + 1))
    second = await shown_code(page)
    assert second != first
    assert getattr(authenticate_any(second, trust), "step", None) == step + 1

    # The network off: the service worker has the page, IndexedDB the bound pass.
    cached = await page.evaluate(
        "async () => { await navigator.serviceWorker.ready;"
        " return !!(await caches.match(location.href)); }"
    )
    assert cached is True
    await context.set_offline(True)
    await page.reload(timeout=UI_TIMEOUT_MS)
    await expect(box.locator("canvas")).to_be_visible()
    await expect(page.locator("#offline-note")).to_be_visible()
    offline = await shown_code(page)
    assert authenticate_any(offline, trust).pass_id == pass_id
    await context.close()


# A browser whose WebCrypto has no Ed25519 (Safari before 17, Chrome before 137).
NO_ED25519 = """
const generate = crypto.subtle.generateKey.bind(crypto.subtle);
crypto.subtle.generateKey = (algorithm, ...rest) =>
  algorithm && algorithm.name === "Ed25519"
    ? Promise.reject(new DOMException("Unrecognized name", "NotSupportedError"))
    : generate(algorithm, ...rest);
"""


async def test_without_ed25519_in_webcrypto_the_vendored_library_signs(
    client: Client,
    app: web.Application,
    factory: Factory,
    browser: Browser,  # noqa: F811
) -> None:
    door = await make_door(factory)
    hold_key(app, door.key)
    pass_id, _ = await factory.issued_pass(door.key, door.site_id)
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    await context.add_init_script(NO_ED25519)
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    await page.goto(f"{base_url(client)}/passes/{pass_id}/phone?key={link_key(app, pass_id)}")
    await expect(page.locator("#rotating-qr canvas")).to_be_visible()
    claims = authenticate_any(await shown_code(page), TrustList([door.key.trusted_key()]))
    assert isinstance(claims, RotatingClaims) and claims.pass_id == pass_id
    await context.close()
