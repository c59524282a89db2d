"""Every error response has the one shape: {"error": {"code", "message"}} and a 4xx."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.web.auth import Role
from tests.factory import bearer


def assert_error(body: Any, code: str) -> None:
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_unknown_route(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/no/such/thing")
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


async def test_wrong_method(client: TestClient[Any, Any]) -> None:
    resp = await client.delete("/healthz")
    assert resp.status == 405
    assert_error(await resp.json(), "method_not_allowed")


@pytest.fixture
def admin(tokens: dict[Role, str]) -> dict[str, str]:
    return bearer(tokens[Role.ADMIN])


async def test_bad_json(client: TestClient[Any, Any], admin: dict[str, str]) -> None:
    resp = await client.post(
        "/api/v1/sites", data=b"{not json", headers=admin | {"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert_error(await resp.json(), "invalid_json")


async def test_body_not_utf8(client: TestClient[Any, Any], admin: dict[str, str]) -> None:
    resp = await client.post(
        "/api/v1/sites",
        data=b'{"name": "\xff"}',
        headers=admin | {"Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert_error(await resp.json(), "invalid_json")


async def test_wrong_content_type(client: TestClient[Any, Any], admin: dict[str, str]) -> None:
    resp = await client.post("/api/v1/sites", data="code=x", headers=admin)
    assert resp.status == 415
    assert_error(await resp.json(), "unsupported_media_type")


async def test_oversized_body(client: TestClient[Any, Any], admin: dict[str, str]) -> None:
    big = io.BytesIO(b'{"name": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    resp = await client.post(
        "/api/v1/sites", data=big, headers=admin | {"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert_error(await resp.json(), "payload_too_large")


async def test_validation_names_each_field(
    client: TestClient[Any, Any], admin: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/sites", json={"code": "Bad Code!", "capacity": -1, "extra": 1}, headers=admin
    )
    assert resp.status == 422
    body = await resp.json()
    assert_error(body, "validation_failed")
    fields = {f["field"] for f in body["error"]["fields"]}
    assert fields == {"code", "name", "capacity", "extra"}


async def test_json_array_instead_of_object(
    client: TestClient[Any, Any], admin: dict[str, str]
) -> None:
    resp = await client.post("/api/v1/sites", json=[1, 2], headers=admin)
    assert resp.status == 422
    assert_error(await resp.json(), "validation_failed")


async def test_missing_token(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/sites")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert_error(await resp.json(), "unauthorized")


async def test_database_down_is_503_not_500(unreachable_client: TestClient[Any, Any]) -> None:
    resp = await unreachable_client.get("/api/v1/sites", headers=bearer("cgw_whatever"))
    assert resp.status == 503
    assert_error(await resp.json(), "service_unavailable")
