"""A site's webhook, set by an admin, and the log of its deliveries."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, require_site, requires
from service.web.openapi import documented
from service.web.validation import read_model

URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"  # http(s) only: no file:, ftp:, javascript:

# A new webhook hears of what happens from now on, not of the site's whole history.
SET_SQL = """
INSERT INTO webhooks (site_id, url, secret, queued_seq)
SELECT s.id, $2, $3, c.last_seq FROM sites s JOIN event_chains c ON c.chain_id = s.id
WHERE s.id = $1
ON CONFLICT (site_id) DO UPDATE SET url = excluded.url, updated_at = now()
RETURNING site_id, url, secret, updated_at
"""
GET_SQL = "SELECT site_id, url, updated_at FROM webhooks WHERE site_id = $1"
DELETE_SQL = "DELETE FROM webhooks WHERE site_id = $1 RETURNING site_id"
DELIVERIES_SQL = """
SELECT id, type, event_row, attempts, next_attempt_at, delivered_at, last_status, last_error,
       created_at
FROM webhook_deliveries WHERE site_id = $1 ORDER BY id DESC LIMIT 200
"""


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(pattern=URL_PATTERN, max_length=2000)]


def _site(request: web.Request) -> int:
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    return site_id


def _json(row: Any) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in dict(row).items()}


@requires(Role.ADMIN)
@documented(body=WebhookIn)
async def set_webhook(request: web.Request) -> web.Response:
    """Set the site's webhook URL; the answer holds the signing secret (made once, kept
    when the URL changes)."""
    site_id = _site(request)
    body = await read_model(request, WebhookIn)
    async with request.app[DB_KEY].connection() as conn:
        row = await conn.fetchrow(SET_SQL, site_id, body.url, secrets.token_urlsafe(32))
    if row is None:
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
    return web.json_response(_json(row))


@requires(Role.ADMIN, Role.AUDITOR)
async def get_webhook(request: web.Request) -> web.Response:
    site_id = _site(request)
    async with request.app[DB_KEY].connection() as conn:
        row = await conn.fetchrow(GET_SQL, site_id)
        deliveries = await conn.fetch(DELIVERIES_SQL, site_id)
    return web.json_response(
        {
            "site_id": site_id,
            "webhook": None if row is None else _json(row),
            "deliveries": [_json(d) for d in deliveries],
        }
    )


@requires(Role.ADMIN)
async def delete_webhook(request: web.Request) -> web.Response:
    site_id = _site(request)
    async with request.app[DB_KEY].connection() as conn:
        if await conn.fetchval(DELETE_SQL, site_id) is None:
            raise ApiError(404, "webhook_not_found", "This site has no webhook.")
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    hook = r"/api/v1/sites/{site_id:\d{1,18}}/webhook"
    return [
        web.get(hook, get_webhook, name="webhook"),
        web.put(hook, set_webhook, name="set_webhook"),
        web.delete(hook, delete_webhook, name="delete_webhook"),
    ]
