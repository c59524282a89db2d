"""Shared set-up for the health desk tests: a site whose people declare through the API
(so their passes are signed by the service's own key) and pass its kiosks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from service.platform.db import DB_KEY
from service.web.auth import Role
from tests.checkin_helpers import scan
from tests.declaring import declaration
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]


@dataclass
class Desk:
    site_id: int
    entrance: str  # kiosk tokens
    exit: str
    health: str  # a health officer's token for the site
    admin: str


@dataclass
class Declared:
    person_id: int
    payload: str
    name: str
    redeclare_key: str  # proof for the person's next declaration


async def make_desk(factory: Factory) -> Desk:
    site_id = await factory.site()
    entrance = await factory.gate(site_id, name="Cổng A", direction="entrance")
    exit_ = await factory.gate(site_id, name="Cổng ra", direction="exit")
    return Desk(
        site_id,
        await factory.token(Role.KIOSK, gate_id=entrance),
        await factory.token(Role.KIOSK, gate_id=exit_),
        await factory.token(Role.HEALTH, site_id=site_id),
        await factory.token(Role.ADMIN),
    )


async def declare(client: Client, site_id: int, name: str, phone: str, **answers: Any) -> Declared:
    resp = await client.post(
        "/api/v1/declarations",
        json=declaration(site_id, full_name=name, phone=phone, **answers),
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["status"] == "cleared", body
    person_id = await filed_for(client, body)
    return Declared(person_id, body["pass"]["payload"], name, body["redeclare_key"])


async def filed_for(client: Client, answer: dict[str, Any]) -> int:
    """The person a declaration was filed for: the public answer names none, so it is
    read from the record."""
    async with client.app[DB_KEY].connection() as conn:
        person_id: int = await conn.fetchval(
            "SELECT person_id FROM declarations WHERE id = $1", answer["declaration_id"]
        )
    return person_id


async def door(client: Client, kiosk: str, who: Declared, ago_s: float = 0) -> tuple[str, str]:
    """A scan at a kiosk, `ago_s` seconds ago by the kiosk's clock: (decision, reason)."""
    seen = datetime.now(UTC) - timedelta(seconds=ago_s)
    body = await scan(client, kiosk, who.payload, seen_at=seen.isoformat())
    return body["decision"], body["reason"]


async def call(
    client: Client, method: str, url: str, token: str, status: int, **json: Any
) -> dict[str, Any]:
    body = None if method == "GET" else json
    resp = await client.request(method, url, headers=bearer(token), json=body)
    assert resp.status == status, await resp.text()
    out: dict[str, Any] = await resp.json()
    return out


async def official_test(
    client: Client,
    token: str,
    person_id: int,
    result: str,
    taken_at: datetime,
    status: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    """POST /api/v1/tests: an official result from a lab named CDC."""
    return await call(
        client,
        "POST",
        "/api/v1/tests",
        token,
        status,
        person_id=person_id,
        kind=extra.pop("kind", "pcr"),
        taken_at=taken_at.isoformat(),
        result=result,
        source=extra.pop("source", "CDC"),
        **extra,
    )
