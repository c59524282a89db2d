"""The service follows the primary, checked on one server: several hosts in the URL, a
server that takes no writes, pool and LISTEN connections that die, a batch whose
connection dies under it. The real failover is tests/chaos/test_chaos_failover.py
(`make chaos-ha`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.checkin.batcher import BATCHER_KEY
from service.events.fanout import LISTENER_NAME
from service.platform.db import Database
from service.platform.settings import Settings
from tests.checkin_helpers import make_door, scan, scan_body
from tests.cli_helpers import free_port
from tests.factory import Factory, bearer
from tests.test_fanout import receive_events

Client = TestClient[Any, Any]
MakeClient = Callable[[web.Application], Awaitable[Client]]

OTHERS_SQL = """
SELECT pid, application_name FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""

LOCK_CHAIN_SQL = "SELECT 1 FROM event_chains WHERE chain_id = $1 FOR UPDATE"
READ_ONLY = "default_transaction_read_only"
LEFT_SQL = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
COUNT_SQL = "SELECT count(*) FROM events WHERE event_id = $1"


def dead_host_first(url: str) -> str:
    """The same server behind a host where nothing listens, asking for a writable one."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | {"target_session_attrs": "read-write"}
    user, at, hosts = parts.netloc.rpartition("@")
    dead = f"127.0.0.1:{free_port()}"
    netloc = parts.netloc
    if hosts:
        netloc = f"{user}{at}{dead},{hosts}"
    else:  # a Unix socket, as the embedded server's URL names it: ?host=/dir
        query["host"] = f"{dead},{query['host']}"
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/:,")))


@pytest.fixture
async def multi_host(settings: Settings, aiohttp_client: MakeClient) -> Client:
    url = dead_host_first(str(settings.database_url))
    return await aiohttp_client(create_app(settings=replace(settings, database_url=url)))


@pytest.fixture
async def read_only(conn: asyncpg.Connection) -> AsyncIterator[Callable[[bool], Awaitable[None]]]:
    """Makes the test's database refuse writes, as a standby does: for new sessions,
    and the open ones end (as they do when a primary dies)."""
    name = await conn.fetchval("SELECT current_database()")

    async def turn(on: bool) -> None:
        how = f"SET {READ_ONLY} = on" if on else f"RESET {READ_ONLY}"
        await conn.execute(f'ALTER DATABASE "{name}" {how}')
        if on:
            await terminate_others(conn)

    yield turn
    await turn(False)


async def terminate_others(conn: asyncpg.Connection) -> list[int]:
    """End every other session of this database, and wait until they are gone (their
    sockets closed: what the service sees when its primary dies)."""
    pids = [r["pid"] for r in await conn.fetch(OTHERS_SQL)]
    for pid in pids:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    async with asyncio.timeout(10):
        while await conn.fetchval(LEFT_SQL, pids):  # noqa: ASYNC110 (nothing to wait on)
            await asyncio.sleep(0.02)
    return pids


async def readyz(client: Client) -> tuple[int, str]:
    resp = await client.get("/readyz")
    body = await resp.json()
    return resp.status, body.get("status") or body["error"]["code"]


async def test_a_dead_host_first_in_the_url_is_passed_over(
    multi_host: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    assert await readyz(multi_host) == (200, "ready")
    url = f"/api/v1/events/stream?site_id={door.site_id}&after_seq=0"
    async with multi_host.ws_connect(url, headers=bearer(door.guard)) as console:
        await console.receive_json()
        answer = await scan(multi_host, door.kiosk[door.entrance], "junk")
        events = await receive_events(console, 1)
    assert events[0]["event_id"] == answer["event_id"]


async def test_not_ready_while_no_server_takes_writes(
    multi_host: Client,
    client: Client,
    factory: Factory,
    read_only: Callable[[bool], Awaitable[None]],
) -> None:
    door = await make_door(factory)
    await read_only(True)
    # Asking for a writable server: none of the hosts is one.
    assert await readyz(multi_host) == (503, "database_unreachable")
    resp = await multi_host.post(
        "/api/v1/scans", json=scan_body("junk"), headers=bearer(door.kiosk[door.entrance])
    )
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "service_unavailable"
    # Not asking: the server answers, and /readyz says it is no primary.
    assert await readyz(client) == (503, "database_read_only")
    await read_only(False)  # "promoted"
    assert await readyz(multi_host) == (200, "ready")
    assert await readyz(client) == (200, "ready")
    assert (await scan(multi_host, door.kiosk[door.entrance], "junk"))["decision"] == "deny"


async def test_pool_connections_that_die_are_replaced(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    kiosk = door.kiosk[door.entrance]
    await scan(client, kiosk, "junk")
    killed = await terminate_others(conn)
    assert killed
    # Not a 503: a pooled connection whose server closed it is replaced.
    await scan(client, kiosk, "junk")
    assert await readyz(client) == (200, "ready")


async def test_a_batch_whose_connection_dies_is_retried_and_recorded_once(
    client: Client, app: web.Application, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    body = scan_body("junk")
    async with conn.transaction():
        # Hold the site's chain: the batch's write waits on it, then its backend dies.
        await conn.execute(LOCK_CHAIN_SQL, door.site_id)
        sent = asyncio.create_task(
            client.post("/api/v1/scans", json=body, headers=bearer(door.kiosk[door.entrance]))
        )
        waiting = await waiting_backend(conn)
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", waiting)
    resp = await sent
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["event_id"] == body["event_id"]
    assert app[BATCHER_KEY].retried == 1
    assert await conn.fetchval(COUNT_SQL, body["event_id"]) == 1


async def test_behind_a_pooler_the_listen_connection_goes_where_it_is_told(
    settings: Settings, aiohttp_client: MakeClient, factory: Factory, conn: asyncpg.Connection
) -> None:
    """CHECKIN_LISTEN_DATABASE_URL (PostgreSQL itself, when DATABASE_URL is a PgBouncer in
    transaction mode) carries the LISTEN; the pool, its statements unprepared as
    PgBouncer 1.18 needs, decides scans."""
    env = {
        "DATABASE_URL": str(settings.database_url),
        "CHECKIN_LISTEN_DATABASE_URL": "postgresql://listener@db.example/x",
        "CHECKIN_DB_STATEMENT_CACHE_SIZE": "0",
    }
    parsed = Settings.from_env(env)
    assert parsed.listen_database_url == env["CHECKIN_LISTEN_DATABASE_URL"]
    assert parsed.db_statement_cache_size == 0
    role = f"cgw_listener_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
    try:
        listen = with_user(str(settings.database_url), role)
        behind = replace(settings, listen_database_url=listen, db_statement_cache_size=0)
        client = await aiohttp_client(create_app(settings=behind))
        door = await make_door(factory)
        assert (await scan(client, door.kiosk[door.entrance], "junk"))["reason"] == "malformed"
        listener = await listener_pid(conn)
        user = await conn.fetchval("SELECT usename FROM pg_stat_activity WHERE pid = $1", listener)
        assert user == role
        await client.close()
    finally:
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


class BrokenOnce:
    """The batcher's database, whose first connection fails as it is handed back, in a
    way no handler foresees (a bug, not an outage)."""

    def __init__(self, db: Database) -> None:
        self.db, self.broken = db, False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.db.connection() as conn:
            yield conn
        if not self.broken:
            self.broken = True
            raise RuntimeError("injected")


async def test_an_unforeseen_error_in_the_batch_worker_costs_only_its_scans(
    client: Client, app: web.Application, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    batcher = app[BATCHER_KEY]
    flaky = BrokenOnce(batcher.db)
    monkeypatch.setattr(batcher, "db", flaky)
    body, kiosk = scan_body(payload), bearer(door.kiosk[door.entrance])
    resp = await client.post("/api/v1/scans", json=body, headers=kiosk)
    assert resp.status == 200  # answered once committed, before the connection went back
    # The worker lives on (it used to die, and every later scan waited for ever).
    async with asyncio.timeout(10):
        again = await client.post("/api/v1/scans", json=scan_body("junk"), headers=kiosk)
    assert again.status == 200 and (await again.json())["reason"] == "malformed"
    assert flaky.broken


async def waiting_backend(conn: asyncpg.Connection) -> int:
    """The backend that waits on a lock in this database (the batch's write)."""
    async with asyncio.timeout(10):
        while True:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.02)


async def listener_pid(conn: asyncpg.Connection, not_pid: int = 0) -> int:
    async with asyncio.timeout(15):
        while True:
            for row in await conn.fetch(OTHERS_SQL):
                if row["application_name"] == LISTENER_NAME and row["pid"] != not_pid:
                    return int(row["pid"])
            await asyncio.sleep(0.05)


async def test_listen_connection_killed_reconnects_and_the_feed_has_no_gap(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    kiosk = door.kiosk[door.entrance]
    url = f"/api/v1/events/stream?site_id={door.site_id}&after_seq=0"
    async with client.ws_connect(url, headers=bearer(door.guard)) as console:
        await console.receive_json()
        for _ in range(2):
            await scan(client, kiosk, "junk")
        seen = await receive_events(console, 2)
        first = await listener_pid(conn)
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", first)
        for _ in range(3):  # while it is down, and after
            await scan(client, kiosk, "junk")
        second = await listener_pid(conn, not_pid=first)
        await scan(client, kiosk, "junk")
        seen += await receive_events(console, 4)
        with pytest.raises(TimeoutError):  # and nothing twice
            await asyncio.wait_for(console.receive_json(), 0.5)
    assert second != first
    assert [e["seq"] for e in seen] == list(range(1, 7))
