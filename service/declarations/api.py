"""The declarations' JSON API: filing one (public), a person's current declarations and
passes, and a pass's QR image (public, with the link's key)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from service.declarations.filing import (
    MAX_DECLARATION_BYTES,
    PASS_PAYLOAD_SQL,
    UUID_PATTERN,
    IssuedPass,
    Outcome,
    file_declaration,
    parse_declaration,
    pass_urls,
)
from service.declarations.model import Declaration
from service.passes.keys import KEYS_KEY
from service.passes.links import PASS_LINKS_KEY
from service.passes.qr import render
from service.passes.state import pass_state
from service.people.records import person_json
from service.people.scope import person_not_found, require_visible
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, public, requires
from service.web.openapi import documented
from service.web.public_limit import limit_public
from service.web.validation import read_json

PERSON_SQL = """
SELECT id, kind, full_name, phone, national_id, organisation, position, risk_level,
       created_at, updated_at
FROM people WHERE id = $1
"""
CURRENT_DECLARATIONS_SQL = """
SELECT d.id, d.site_id, d.status, d.reasons, d.submitted_at, d.valid_until, d.reviewed_by,
       d.reviewed_at, p.id AS pass_id, p.kid, p.not_before, p.not_after, p.revoked_at,
       p.revoked_reason
FROM declarations d LEFT JOIN passes p ON p.declaration_id = d.id
WHERE d.person_id = $1 AND d.superseded_at IS NULL AND ($2::bigint IS NULL OR d.site_id = $2)
ORDER BY d.site_id, p.issued_at DESC NULLS LAST
"""


def pass_json(app: web.Application, issued: IssuedPass | None) -> dict[str, Any] | None:
    if issued is None:
        return None
    return {
        "id": str(issued.id),
        "payload": issued.payload,
        **pass_urls(app, issued.id),
        "not_after": issued.not_after.isoformat(),
    }


def validity_json(status: str, valid_until: datetime) -> dict[str, str | None]:
    """Only a cleared result is valid until a time; one in review can be approved until
    then, and a rejected one is valid for nothing."""
    at = valid_until.astimezone(UTC).isoformat()
    return {
        "valid_until": at if status == "cleared" else None,
        "review_until": at if status == "review" else None,
    }


def outcome_json(app: web.Application, outcome: Outcome) -> dict[str, Any]:
    # No person id: a claim has none, and the answer must look the same either way.
    return {
        "declaration_id": outcome.declaration_id,
        "status": outcome.status,
        "reasons": outcome.reasons,
        **validity_json(outcome.status, outcome.valid_until),
        "pass": pass_json(app, outcome.pass_),
        "redeclare_key": outcome.redeclare_key,
    }


def _limit_body(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"The body may be at most {limit} bytes.")


@public
@documented(body=Declaration)
async def post_declaration(request: web.Request) -> web.Response:
    limit_public(request)
    _limit_body(request, MAX_DECLARATION_BYTES)
    now = datetime.now(UTC)
    decl = parse_declaration(await read_json(request), now=now)
    async with request.app[DB_KEY].connection() as conn:
        outcome = await file_declaration(conn, request.app[KEYS_KEY], decl, now=now)
    return web.json_response(outcome_json(request.app, outcome), status=201)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _current_json(rows: Sequence[asyncpg.Record], now: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for r in rows:
        if r["id"] in seen:
            continue  # one pass per declaration is shown: the newest
        seen.add(r["id"])
        out.append(
            {
                "declaration_id": r["id"],
                "site_id": r["site_id"],
                "status": r["status"],
                "reasons": r["reasons"],
                "submitted_at": _iso(r["submitted_at"]),
                "valid_until": _iso(r["valid_until"]),
                "reviewed_by": r["reviewed_by"],
                "reviewed_at": _iso(r["reviewed_at"]),
                "pass": None
                if r["pass_id"] is None
                else {
                    "id": str(r["pass_id"]),
                    "kid": r["kid"],
                    "state": pass_state(r, now),
                    "not_before": _iso(r["not_before"]),
                    "not_after": _iso(r["not_after"]),
                    "revoked_at": _iso(r["revoked_at"]),
                    "revoked_reason": r["revoked_reason"],
                },
            }
        )
    return out


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.HEALTH)
async def get_person(request: web.Request) -> web.Response:
    person_id = int(request.match_info["person_id"])
    caller = principal(request)
    scope = caller.site_id
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn:
        await require_visible(conn, person_id, scope)
        person = await conn.fetchrow(PERSON_SQL, person_id)
        current = await conn.fetch(CURRENT_DECLARATIONS_SQL, person_id, scope)
    if person is None:
        raise person_not_found(person_id)
    return web.json_response(
        {
            "person": {
                **person_json(person, masked_ids=caller.role is Role.GUARD),
                "created_at": _iso(person["created_at"]),
                "updated_at": _iso(person["updated_at"]),
            },
            "current_declarations": _current_json(current, now),
        }
    )


async def _qr(request: web.Request, fmt: str, content_type: str) -> web.Response:
    limit_public(request)
    pass_id = uuid.UUID(request.match_info["pass_id"])
    payload = None
    # Without the link's key the pass is as unknown as one that does not exist.
    if request.app[PASS_LINKS_KEY].valid(pass_id, request.query.get("key")):
        async with request.app[DB_KEY].connection() as conn:
            payload = await conn.fetchval(PASS_PAYLOAD_SQL, pass_id)
    if payload is None:
        raise ApiError(404, "pass_not_found", "No such pass.")
    body = await render(request.app, payload, fmt)
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@public
async def pass_qr_png(request: web.Request) -> web.Response:
    return await _qr(request, "png", "image/png")


@public
async def pass_qr_svg(request: web.Request) -> web.Response:
    return await _qr(request, "svg", "image/svg+xml")


def routes() -> list[web.RouteDef]:
    one_pass = "/api/v1/passes/{pass_id:" + UUID_PATTERN + "}"
    return [
        web.post("/api/v1/declarations", post_declaration, name="create_declaration"),
        web.get(r"/api/v1/people/{person_id:\d{1,18}}", get_person, name="person"),
        web.get(one_pass + "/qr.png", pass_qr_png, name="pass_qr_png"),
        web.get(one_pass + "/qr.svg", pass_qr_svg, name="pass_qr_svg"),
    ]
