"""Test harness: a real PostgreSQL (DATABASE_URL, else an embedded one for the run),
a template database migrated once, and a fresh database cloned from it per test."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.platform.db import init_connection
from service.platform.migrations import migrate
from service.platform.settings import Settings
from service.web.auth import Role
from tests.factory import Factory


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """An admin URL to the PostgreSQL server the whole run uses."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="cgw-pg-") as pgdata:
        server = pgserver.get_server(Path(pgdata), cleanup_mode="stop")
        yield server.get_uri()
        server.cleanup()


async def admin_execute(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def fresh_name(kind: str) -> str:
    return f"cgw_{kind}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    """A database migrated once; each test's database is a copy of it."""
    name = fresh_name("tmpl")

    async def build() -> None:
        await admin_execute(server_url, f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    yield name
    asyncio.run(admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_db_url(server_url: str) -> Iterator[str]:
    """A database with nothing in it (for migration tests)."""
    name = fresh_name("empty")
    asyncio.run(admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    yield with_database(server_url, name)
    asyncio.run(admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db_url(server_url: str, template_db: str) -> Iterator[str]:
    name = fresh_name("t")
    asyncio.run(admin_execute(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    yield with_database(server_url, name)
    asyncio.run(admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_url)
    await init_connection(connection)
    yield connection
    await connection.close()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The service's settings; a test marked `limits(field=value, ...)` changes those."""
    marker = request.node.get_closest_marker("limits")
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        db_acquire_timeout_s=2.0,
        **(marker.kwargs if marker else {}),
    )


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings=settings)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
    app: web.Application,
) -> TestClient[Any, Any]:
    """The real app served on a loopback port."""
    return await aiohttp_client(app)


@pytest.fixture
async def unreachable_client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
    tmp_path: Path,
) -> TestClient[Any, Any]:
    """The real app whose database does not answer (nothing listens on port 1)."""
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/none",
        data_dir=tmp_path,
        db_acquire_timeout_s=0.5,
    )
    return await aiohttp_client(create_app(settings=settings))


@pytest.fixture
def factory(conn: asyncpg.Connection) -> Factory:
    return Factory(conn)


@pytest.fixture
async def site_id(factory: Factory) -> int:
    return await factory.site()


@pytest.fixture
async def gate_id(factory: Factory, site_id: int) -> int:
    return await factory.gate(site_id)


@pytest.fixture
async def tokens(factory: Factory, site_id: int, gate_id: int) -> dict[Role, str]:
    """One token per role; the guard's and the health officer's are scoped to the site,
    the kiosk's to the gate."""
    return {
        Role.ADMIN: await factory.token(Role.ADMIN),
        Role.GUARD: await factory.token(Role.GUARD, site_id=site_id),
        Role.AUDITOR: await factory.token(Role.AUDITOR),
        Role.KIOSK: await factory.token(Role.KIOSK, gate_id=gate_id),
        Role.HEALTH: await factory.token(Role.HEALTH, site_id=site_id),
    }
