from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from service.platform.migrations import expected_version


async def test_healthz(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_readyz_when_database_is_migrated(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"status": "ready", "schema_version": expected_version()}


async def test_readyz_false_when_database_is_down(
    unreachable_client: TestClient[Any, Any],
) -> None:
    # The service still starts, and says why it is not ready.
    resp = await unreachable_client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "database_unreachable"
    assert (await unreachable_client.get("/healthz")).status == 200


async def test_readyz_false_when_schema_is_old(client: TestClient[Any, Any], conn: Any) -> None:
    await conn.execute("DELETE FROM schema_migrations WHERE version = $1", expected_version())
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "schema_out_of_date"
