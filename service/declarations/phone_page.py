"""The pass on the holder's phone: a rotating QR code that a screenshot cannot reuse.

GET /passes/{id}/phone?key=  the page (script /static/pass-phone.js); it keeps working
                             with the network off (service worker, web manifest)
POST /passes/{id}/bind?key=  {"device_key": base64url of the phone's Ed25519 public key}
                             -> the bound pass (checkin_core.rotating), signed now
GET /passes/{id}/manifest.webmanifest?key=   "add to home screen" opens this pass
GET /passes/pass-sw.js       the service worker (its scope is /passes/)

The link's key (service.passes.links) is what lets a phone bind: the same secret that
shows the printable pass. Binding again (a new phone, a cleared browser) signs a new
bound pass; the old phone's codes stay genuine until the pass expires or is revoked,
as a printed copy does.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from checkin_core.rotating import STEP_S, bound_pass_b64
from service.declarations.filing import UUID_PATTERN
from service.declarations.pages import linked_pass, message_page, words
from service.declarations.words import both, lang_of, t
from service.passes.keys import KEYS_KEY, active_signing_key
from service.passes.links import PASS_LINKS_KEY
from service.passes.state import pass_state
from service.platform.db import DB_KEY
from service.platform.errors import worded_error
from service.web.auth import public
from service.web.openapi import Q_LANG, documented, q_text
from service.web.pages import CSP, STATIC_DIR, page
from service.web.public_limit import limit_public
from service.web.validation import read_model

# The page's own script, the vendored libraries and its calls to bind; nothing else.
PHONE_CSP = CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self';").replace(
    "img-src 'self';",
    "img-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self';",
)


class BindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_key: Annotated[str, Field(min_length=43, max_length=43, pattern="^[A-Za-z0-9_-]+$")]


@public
@documented(query={"key": q_text(64), "lang": Q_LANG})
async def phone_page(request: web.Request) -> web.Response:
    """The rotating pass page for the holder's phone."""
    limit_public(request)
    lang = lang_of(request.query.get("lang"))
    pass_id, row = await linked_pass(request)
    if row is None:
        return message_page(request, lang, t("phone_not_found", lang), status=404)
    context = words(lang) | {
        "title": t("phone_title", lang),
        "row": row,
        "pass_id": str(pass_id),
        "key": request.query["key"],
        "base": f"/passes/{pass_id}",
        "step_s": STEP_S,
    }
    return page(request, "phone.html", context, csp=PHONE_CSP)


@public
@documented(body=BindIn, query={"key": q_text(64)})
async def bind_device(request: web.Request) -> web.Response:
    """Bind the phone's public key to the pass: the answer is the bound pass, signed."""
    limit_public(request)
    body = await read_model(request, BindIn)
    try:
        device = base64.urlsafe_b64decode(body.device_key + "=")
    except (binascii.Error, ValueError):
        device = b""
    if len(device) != 32:
        raise worded_error(
            422, "bad_device_key", "Khóa thiết bị không hợp lệ.", "Not an Ed25519 public key."
        )
    pass_id, row = await linked_pass(request)
    now = datetime.now(UTC)
    if row is None or pass_state(row, now) != "valid":
        raise worded_error(
            404, "pass_not_found", t("phone_not_found", "vi"), "No such valid pass for this link."
        )
    async with request.app[DB_KEY].connection() as conn:
        key = await active_signing_key(conn, request.app[KEYS_KEY])
    bound = bound_pass_b64(
        key,
        pass_id=pass_id,
        site_id=row["site_id"],
        not_before=row["not_before"],
        not_after=row["not_after"],
        device_key=device,
    )
    return web.json_response(
        {"bound": bound, "step_s": STEP_S, "server_time": now.isoformat()},
        headers={"Cache-Control": "no-store"},
    )


@public
async def manifest(request: web.Request) -> web.Response:
    limit_public(request)
    pass_id = request.match_info["pass_id"]
    key = request.query.get("key", "")
    if not request.app[PASS_LINKS_KEY].valid(uuid.UUID(pass_id), key):
        raise worded_error(404, "pass_not_found", t("phone_not_found", "vi"), "No such pass.")
    doc = {
        "name": both("phone_title"),
        "short_name": "Mã QR / Pass",
        "start_url": f"/passes/{pass_id}/phone?key={key}",
        "scope": "/passes/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#00bb55",
        "lang": "vi",
    }
    return web.Response(
        text=json.dumps(doc, ensure_ascii=False),
        content_type="application/manifest+json",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@public
async def service_worker(request: web.Request) -> web.Response:
    return web.Response(
        body=(STATIC_DIR / "pass-sw.js").read_bytes(),
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def routes() -> list[web.RouteDef]:
    one = "/passes/{pass_id:" + UUID_PATTERN + "}"
    return [
        web.get(one + "/phone", phone_page, name="pass_phone"),
        web.post(one + "/bind", bind_device, name="pass_bind"),
        web.get(one + "/manifest.webmanifest", manifest, name="pass_manifest"),
        web.get("/passes/pass-sw.js", service_worker, name="pass_service_worker"),
    ]
