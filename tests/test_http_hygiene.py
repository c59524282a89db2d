"""HTTP hygiene: the API docs page under a strict CSP, no-store and nosniff on answers,
Allow on 405, and the parser's own refusals (an 8 KB request line) in the JSON shape."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from playwright.async_api import Browser

from service.web.auth import Role
from tests.cli_helpers import env_for, free_port, wait_ready
from tests.factory import Factory, bearer
from tests.test_console_browser import base_url, browser  # noqa: F401 (a fixture)

Client = TestClient[Any, Any]


async def test_api_docs_have_a_strict_csp_and_still_render_in_chromium(
    client: Client,
    browser: Browser,  # noqa: F811
) -> None:
    resp = await client.get("/api/v1/docs")
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    page = await browser.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text))
    await page.goto(f"{base_url(client)}/api/v1/docs")
    assert await page.locator("h1").inner_text() == "checkin-gateway API"
    assert await page.get_by_text("POST /api/v1/sites", exact=True).count() == 1
    # The style sheet loaded under the policy: the page has its margins and font.
    style = await page.evaluate(
        "() => { const s = getComputedStyle(document.body); return [s.marginLeft, s.fontFamily] }"
    )
    assert style == ["32px", "sans-serif"]
    # (a 404 for /favicon.ico is Chromium asking, not the page)
    assert [m for m in refused if "Refused" in m or "Content Security Policy" in m] == []
    await page.close()


async def test_json_answers_are_not_stored_or_sniffed_and_public_ones_say_so(
    client: Client, factory: Factory, tokens: dict[Role, str]
) -> None:
    person = await factory.person()
    admin = bearer(tokens[Role.ADMIN])
    for path, headers in [
        (f"/api/v1/people/{person}", admin),  # personal data
        ("/api/v1/people/999999", admin),  # an error
        ("/api/v1/sites", {}),  # 401
        ("/api/v1/openapi.json", {}),
    ]:
        resp = await client.get(path, headers=headers)
        assert resp.content_type == "application/json", path
        assert resp.headers["Cache-Control"] == "no-store", path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
    keys = await client.get("/api/v1/keys")
    assert keys.headers["Cache-Control"] == "public, max-age=60"
    assert keys.headers["X-Content-Type-Options"] == "nosniff"


async def test_405_carries_allow_in_the_json_shape(client: Client, tokens: dict[Role, str]) -> None:
    resp = await client.delete("/api/v1/sites", headers=bearer(tokens[Role.ADMIN]))
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


def _raw_answer(port: int, request: bytes) -> tuple[int, dict[str, Any] | None, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and b"Connection: close" not in data:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body), head
    except ValueError:
        return status, None, head


def test_overlong_request_lines_and_headers_get_the_json_shape_and_no_error_log(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = env_for(db_url, tmp_path) | {"CHECKIN_PORT": str(port), "CHECKIN_LOG_LEVEL": "INFO"}
    service = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", service, 60)
        long_path = b"/api/v1/people?q=" + b"a" * 9000
        status, body, head = _raw_answer(
            port, b"GET " + long_path + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert (status, body and body["error"]["code"]) == (414, "uri_too_long"), head
        assert b"Content-Type: application/json" in head
        status, body, _ = _raw_answer(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"
        )
        assert (status, body and body["error"]["code"]) == (431, "headers_too_large")
        status, body, _ = _raw_answer(port, b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n")
        assert (status, body and body["error"]["code"]) == (400, "bad_request")
        # Just under the limit is an ordinary request (a 401: no token).
        fits = b"/api/v1/people?q=" + b"a" * 8000
        status, body, _ = _raw_answer(port, b"GET " + fits + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 401
    finally:
        service.terminate()
        _, stderr = service.communicate(timeout=30)
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    refused = [r for r in logged if r.get("msg") == "refused a malformed request"]
    assert [r.get("code") for r in refused] == ["uri_too_long", "headers_too_large", "bad_request"]
    assert [r for r in logged if r.get("level") in ("ERROR", "CRITICAL")] == []
    assert "Traceback" not in stderr
    assert service.returncode == 0  # a SIGTERM is a clean stop
