"""Shared set-up for the check-in tests: a site with gates, kiosk tokens and a key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from checkin_core.keys import SigningKey
from service.web.auth import Role
from tests.factory import Factory, bearer


@dataclass
class Door:
    site_id: int
    entrance: int
    entrance_b: int
    exit: int
    kiosk: dict[int, str]  # gate id -> kiosk token
    key: SigningKey
    guard: str
    admin: str


async def make_door(factory: Factory, **site: Any) -> Door:
    site_id = await factory.site(**site)
    entrance = await factory.gate(site_id, name="Cổng A", direction="entrance")
    entrance_b = await factory.gate(site_id, name="Cổng B", direction="entrance")
    exit_ = await factory.gate(site_id, name="Cổng ra", direction="exit")
    kiosk = {g: await factory.token(Role.KIOSK, gate_id=g) for g in (entrance, entrance_b, exit_)}
    key = await factory.signing_key()
    guard = await factory.token(Role.GUARD, site_id=site_id)
    admin = await factory.token(Role.ADMIN)
    return Door(site_id, entrance, entrance_b, exit_, kiosk, key, guard, admin)


def scan_body(payload: str, **overrides: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "payload": payload,
        "seen_at": datetime.now(UTC).isoformat(),
    } | overrides


async def scan(
    client: TestClient[Any, Any], token: str, payload: str, **overrides: Any
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/scans", json=scan_body(payload, **overrides), headers=bearer(token)
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body
