"""Test harness: a real PostgreSQL (DATABASE_URL, else an embedded one for the run),
a template database migrated once, and a fresh database cloned from it per test."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from checkin_core.passes import SigningKey, issue_pass
from service.app import create_app
from service.identity.accounts import AccountIn, create_account
from service.platform.db import init_connection
from service.platform.migrations import migrate
from service.platform.settings import Settings
from service.web.auth import Role, create_token


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


class Factory:
    """Makes rows with sensible defaults; returns ids."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._n = 0
        self._active_key: SigningKey | None = None

    def _next(self) -> int:
        self._n += 1
        return self._n

    async def site(self, **overrides: Any) -> int:
        values = {"code": f"site-{self._next()}", "name": "Trụ sở", "capacity": None} | overrides
        return int(
            await self.conn.fetchval(
                "INSERT INTO sites (code, name, capacity) VALUES ($1, $2, $3) RETURNING id",
                values["code"],
                values["name"],
                values["capacity"],
            )
        )

    async def gate(self, site_id: int, **overrides: Any) -> int:
        values = {"name": f"Gate {self._next()}", "direction": "entrance"} | overrides
        return int(
            await self.conn.fetchval(
                "INSERT INTO gates (site_id, name, direction) VALUES ($1, $2, $3) RETURNING id",
                site_id,
                values["name"],
                values["direction"],
            )
        )

    async def token(self, role: Role, **scope: Any) -> str:
        _, token = await create_token(self.conn, role=role, **scope)
        return token

    async def account(
        self, role: Role = Role.GUARD, *, site_id: int | None = None, username: str | None = None
    ) -> tuple[str, str]:
        """A console account; (username, password)."""
        username = username or f"{role.value}{self._next()}"
        password = f"pw-{uuid.uuid4().hex[:16]}"
        await create_account(
            self.conn,
            AccountIn(username=username, password=password, role=role, site_id=site_id),
        )
        return username, password

    async def signing_key(self, status: str = "active") -> SigningKey:
        """A signing key; the active one is made once per test (only one may exist)."""
        if status == "active" and self._active_key is not None:
            return self._active_key
        key = SigningKey.generate()
        if status == "active":
            self._active_key = key
        await self.conn.execute(
            "INSERT INTO signing_keys (kid, public_key, status) VALUES ($1, $2, $3)",
            key.key_id,
            key.public_key_bytes(),
            status,
        )
        return key

    async def person(self, **overrides: Any) -> int:
        n = self._next()
        values = {
            "kind": "staff",
            "full_name": f"Nguyễn Văn An {n}",
            "phone": f"+8491{n:07d}",
        } | overrides
        return int(
            await self.conn.fetchval(
                "INSERT INTO people (kind, full_name, phone) VALUES ($1, $2, $3) RETURNING id",
                values["kind"],
                values["full_name"],
                values["phone"],
            )
        )

    async def declaration(self, person_id: int, site_id: int, **overrides: Any) -> int:
        now = datetime.now(UTC)
        values = {
            "status": "cleared",
            "submitted_at": now - timedelta(hours=1),
            "valid_until": now + timedelta(hours=8),
        } | overrides
        return int(
            await self.conn.fetchval(
                "INSERT INTO declarations (person_id, site_id, answers, status, submitted_at,"
                " valid_until) VALUES ($1, $2, '{}', $3, $4, $5) RETURNING id",
                person_id,
                site_id,
                values["status"],
                values["submitted_at"],
                values["valid_until"],
            )
        )

    async def issued_pass(
        self,
        key: SigningKey,
        site_id: int,
        *,
        person_id: int | None = None,
        declaration_id: int | None = None,
        store: bool = True,
        **window: datetime,
    ) -> tuple[uuid.UUID, str]:
        """A signed pass (and, unless store=False, its row and holder); (id, payload)."""
        now = datetime.now(UTC).replace(microsecond=0)
        not_before = window.get("not_before", now - timedelta(hours=1))
        not_after = window.get("not_after", now + timedelta(hours=8))
        pass_id = uuid.uuid4()
        payload = issue_pass(
            key, pass_id=pass_id, site_id=site_id, not_before=not_before, not_after=not_after
        )
        if store:
            person_id = person_id or await self.person()
            declaration_id = declaration_id or await self.declaration(person_id, site_id)
            await self.conn.execute(
                "INSERT INTO passes (id, person_id, site_id, declaration_id, kid, payload,"
                " not_before, not_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                pass_id,
                person_id,
                site_id,
                declaration_id,
                key.key_id,
                payload,
                not_before,
                not_after,
            )
        return pass_id, payload


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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
