"""The console's ES modules as the service serves them: every module another imports is
there, each under ~400 lines (the message catalogue aside), and the caching keeps a new
version from running beside an old one (a page's hashed URL is kept; a module's plain
import is checked again)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from service.web.pages import STATIC_DIR

Client = TestClient[Any, Any]
IMPORT = re.compile(r'^import (?:[^"]* from )?"\./([a-z0-9-]+\.js)";$', re.MULTILINE)
CATALOGUE = "console-i18n.js"
MAX_LINES = 400


def console_modules() -> list[str]:
    return sorted(p.name for p in STATIC_DIR.glob("console*.js"))


async def test_every_import_is_served(client: Client) -> None:
    for name in console_modules():
        text = (STATIC_DIR / name).read_text()
        for imported in IMPORT.findall(text):
            assert imported in console_modules(), (name, imported)
            resp = await client.get(f"/static/{imported}")
            assert resp.status == 200, imported
            assert resp.content_type == "text/javascript"


def test_each_module_is_short() -> None:
    for name in console_modules():
        if name != CATALOGUE:
            lines = (STATIC_DIR / name).read_text().count("\n")
            assert lines <= MAX_LINES, (name, lines)


async def test_a_plain_url_is_checked_again_a_hashed_one_is_kept(client: Client) -> None:
    plain = await client.get("/static/console-api.js")
    assert plain.headers["Cache-Control"] == "no-cache"
    etag = plain.headers["ETag"]
    again = await client.get("/static/console-api.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    hashed = await client.get("/static/console.js?v=abc")
    assert hashed.headers["Cache-Control"] == "public, max-age=3600"
    changed = await client.get("/static/console-api.js", headers={"If-None-Match": '"other"'})
    assert changed.status == 200
    assert await changed.text() == (STATIC_DIR / "console-api.js").read_text()
