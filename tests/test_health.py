from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from service.app import create_app
from service.migrations import expected_version
from service.settings import Settings


async def test_healthz(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_readyz_when_database_is_migrated(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"status": "ready", "schema_version": expected_version()}


async def test_readyz_false_when_database_is_down(aiohttp_client: Any, tmp_path: Path) -> None:
    # Nothing listens on port 1: the service still starts, and says why it is not ready.
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/none",
        data_dir=tmp_path,
        db_acquire_timeout_s=1.0,
    )
    client = await aiohttp_client(create_app(settings=settings))
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "database_unreachable"
    assert (await client.get("/healthz")).status == 200


async def test_readyz_false_when_schema_is_old(client: TestClient[Any, Any], conn: Any) -> None:
    await conn.execute("DELETE FROM schema_migrations WHERE version = $1", expected_version())
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "schema_out_of_date"
