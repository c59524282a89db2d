from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from service.web.auth import Role
from tests.factory import Factory, bearer


async def test_admin_creates_a_site_and_its_gates(
    client: TestClient[Any, Any], tokens: dict[Role, str]
) -> None:
    admin = bearer(tokens[Role.ADMIN])
    resp = await client.post(
        "/api/v1/sites",
        json={"code": "hq-hanoi", "name": "Cục Hải quan Hà Nội", "capacity": 300},
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    site = await resp.json()
    assert site["code"] == "hq-hanoi" and site["timezone"] == "Asia/Ho_Chi_Minh"

    gate = {
        "name": "Cổng A",
        "direction": "entrance",
        "opening_hours": [{"days": [1, 2, 3, 4, 5], "opens": "07:00", "closes": "18:00"}],
    }
    resp = await client.post(f"/api/v1/sites/{site['id']}/gates", json=gate, headers=admin)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["opening_hours"] == [
        {"days": [1, 2, 3, 4, 5], "opens": "07:00:00", "closes": "18:00:00"}
    ]
    assert created["offline_policy"] == "deny"

    resp = await client.get(f"/api/v1/sites/{site['id']}", headers=admin)
    assert resp.status == 200
    assert [g["name"] for g in (await resp.json())["gates"]] == ["Cổng A"]


async def test_duplicate_site_code_is_409(
    client: TestClient[Any, Any], tokens: dict[Role, str]
) -> None:
    body = {"code": "dup", "name": "X"}
    admin = bearer(tokens[Role.ADMIN])
    assert (await client.post("/api/v1/sites", json=body, headers=admin)).status == 201
    resp = await client.post("/api/v1/sites", json=body, headers=admin)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "site_exists"


async def test_gate_for_unknown_site_is_404(
    client: TestClient[Any, Any], tokens: dict[Role, str]
) -> None:
    resp = await client.post(
        "/api/v1/sites/999999/gates",
        json={"name": "G", "direction": "exit"},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "site_not_found"


async def test_bad_opening_hours_and_time_zone_are_422(
    client: TestClient[Any, Any], tokens: dict[Role, str], site_id: int
) -> None:
    admin = bearer(tokens[Role.ADMIN])
    resp = await client.post(
        f"/api/v1/sites/{site_id}/gates",
        json={
            "name": "G",
            "direction": "sideways",
            "opening_hours": [{"days": [8], "opens": "18:00", "closes": "07:00"}],
        },
        headers=admin,
    )
    assert resp.status == 422
    fields = {f["field"] for f in (await resp.json())["error"]["fields"]}
    assert {"direction", "opening_hours.0.days.0"} <= fields
    resp = await client.post(
        "/api/v1/sites", json={"code": "tz", "name": "X", "timezone": "Mars/Olympus"}, headers=admin
    )
    assert resp.status == 422


async def test_guard_sees_only_its_own_site(
    client: TestClient[Any, Any], tokens: dict[Role, str], factory: Factory, site_id: int
) -> None:
    other = await factory.site()
    guard = bearer(tokens[Role.GUARD])
    resp = await client.get("/api/v1/sites", headers=guard)
    assert [s["id"] for s in (await resp.json())["sites"]] == [site_id]
    resp = await client.get(f"/api/v1/sites/{other}", headers=guard)
    assert resp.status == 403


async def test_revoked_token_is_refused(
    client: TestClient[Any, Any], tokens: dict[Role, str], conn: Any
) -> None:
    from service.web.auth import revoke_token

    assert await revoke_token(conn, token=tokens[Role.ADMIN])
    resp = await client.get("/api/v1/sites", headers=bearer(tokens[Role.ADMIN]))
    assert resp.status == 401
