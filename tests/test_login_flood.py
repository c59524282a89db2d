"""A login flood cannot stall the doors (issue 16.1), and failed logins are on record
(16.6): the hash runs in a bounded pool off the event loop, a full pool answers 503
at once, limits per address and per username answer 429 before any hashing, and
failed logins, lockouts and bursts go to the event log, the JSON logs and the admins."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.events.log import verify_chain
from service.identity.accounts import MAX_FAILED_LOGINS
from service.identity.hashing import HASH_POOL_KEY, THREAD_PREFIX
from service.identity.login_guard import LOGIN_BURST_ATTEMPTS
from service.platform.settings import Settings
from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer
from tests.login_helpers import Browser, visitor

Client = TestClient[Any, Any]
MakeClient = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
async def make_client(aiohttp_client: MakeClient, settings: Settings) -> Any:
    async def make(**changes: Any) -> tuple[web.Application, Client]:
        app = create_app(settings=replace(settings, **changes))
        return app, await aiohttp_client(app)

    return make


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    made: list[Browser] = []
    yield made
    for b in made:
        await b.session.close()


async def until(check: Callable[[], bool]) -> None:
    while not check():  # noqa: ASYNC110 (state of another task, no event to wait on)
        await asyncio.sleep(0.01)


async def test_logins_hash_in_the_bounded_pool_and_the_door_decides_meanwhile(
    make_client: Any, factory: Factory, browsers: list[Browser]
) -> None:
    app, client = await make_client(hash_workers=1, hash_queue=2)
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    pool = app[HASH_POOL_KEY]
    release = threading.Event()
    ran_in: list[str] = []

    def busy_hash() -> None:  # stands for a long verification holding the one worker
        ran_in.append(threading.current_thread().name)
        release.wait(30)

    async def occupy() -> None:
        async with pool.slot():
            await pool.run(busy_hash)

    busy = asyncio.create_task(occupy())
    await until(lambda: bool(ran_in))
    # hash_queue logins wait for the worker ...
    waiting = [
        asyncio.create_task(visitor(browsers, client).login(username, password)) for _ in range(2)
    ]
    await until(lambda: pool.admitted == 3)
    # ... the next one is refused at once, without waiting ...
    refused = await visitor(browsers, client).login(username, password)
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    # ... and while every hash waits on the worker, the loop decides a scan.
    decision = await scan(client, door.kiosk[door.entrance], payload)
    assert decision["decision"] == "allow"
    assert not any(t.done() for t in waiting)  # their hash is behind the busy worker
    assert ran_in[0].startswith(THREAD_PREFIX) and ran_in[0] != threading.main_thread().name
    release.set()
    await busy
    assert [r.status for r in await asyncio.gather(*waiting)] == [303, 303]
    assert pool.admitted == 0


async def test_logins_per_address_are_limited_before_any_hashing(
    make_client: Any, factory: Factory, browsers: list[Browser]
) -> None:
    app, client = await make_client(
        login_per_minute_per_address=3, trusted_proxies=frozenset({"127.0.0.1"})
    )
    username, password = await factory.account()
    attacker = visitor(browsers, client, "203.0.113.7")
    for _ in range(3):
        assert (await attacker.login(username, "wrong password")).status == 401
    # With the one hash worker held, a login that got as far as hashing would wait.
    pool = app[HASH_POOL_KEY]
    release = threading.Event()
    async with pool.slot():
        busy = asyncio.create_task(pool.run(release.wait, 30))
        limited = await attacker.login(username, password)
        release.set()
        await busy
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Quá nhiều lần đăng nhập" in await limited.text()
    # Another address is not held back by this one.
    other = visitor(browsers, client, "198.51.100.2")
    assert (await other.login(username, password)).status == 303


async def test_logins_per_username_are_limited_across_addresses(
    make_client: Any, factory: Factory, browsers: list[Browser]
) -> None:
    _, client = await make_client(
        login_per_minute_per_username=2, trusted_proxies=frozenset({"127.0.0.1"})
    )
    target, password = await factory.account()
    bystander, bystander_password = await factory.account()
    for address in ("203.0.113.1", "203.0.113.2"):
        assert (await visitor(browsers, client, address).login(target, "guess")).status == 401
    limited = await visitor(browsers, client, "203.0.113.3").login(target, password)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    other = await visitor(browsers, client, "203.0.113.3").login(bystander, bystander_password)
    assert other.status == 303


async def test_failed_logins_and_lockouts_are_recorded_without_secrets(
    client: Client,
    factory: Factory,
    conn: asyncpg.Connection,
    browsers: list[Browser],
    caplog: pytest.LogCaptureFixture,
) -> None:
    username, _ = await factory.account()
    admin = await factory.token(Role.ADMIN)
    caplog.set_level(logging.WARNING, logger="service.identity.login_guard")
    browser = visitor(browsers, client)
    for _ in range(MAX_FAILED_LOGINS):
        assert (await browser.login(username, "secret-guess-1")).status == 401
    assert (await browser.login("no.such.person", "secret-guess-2")).status == 401

    resp = await client.get(
        "/api/v1/audit/events", params={"kind": "login_failed"}, headers=bearer(admin)
    )
    failed = (await resp.json())["events"]
    known = [e["detail"] for e in failed if e["detail"]["known"]]
    assert [d["failures_in_a_row"] for d in known] == list(range(1, MAX_FAILED_LOGINS + 1))
    assert {d["username"] for d in known} == {username}
    assert {d["failure"] for d in known} == {"wrong_password"}
    [unknown] = [e["detail"] for e in failed if not e["detail"]["known"]]
    assert unknown["failure"] == "unknown_account"
    assert re.fullmatch(r"unknown:[0-9a-f]{12}", unknown["username"])
    assert {e["site_id"] for e in failed} == {None} and unknown["address"] == "127.0.0.1"

    resp = await client.get(
        "/api/v1/audit/events", params={"kind": "login_locked"}, headers=bearer(admin)
    )
    [locked] = (await resp.json())["events"]
    assert locked["detail"]["username"] == username
    assert (await verify_chain(conn, 0)).broken is None

    everything = str(failed) + caplog.text
    assert "secret-guess" not in everything and "no.such.person" not in everything
    logged = [r for r in caplog.records if getattr(r, "event", None) == "login_failed"]
    assert len(logged) == MAX_FAILED_LOGINS + 1
    assert any(getattr(r, "event", None) == "login_locked" for r in caplog.records)


async def test_a_burst_of_bad_logins_is_an_alert_for_admins(
    make_client: Any, factory: Factory, browsers: list[Browser]
) -> None:
    _, client = await make_client(login_per_minute_per_address=1)
    username, _ = await factory.account()
    admin = await factory.token(Role.ADMIN)
    guard = await factory.token(Role.GUARD)
    quiet = await client.get("/api/v1/security/alerts", headers=bearer(admin))
    assert (await quiet.json())["alerts"] == []
    attacker = visitor(browsers, client)
    statuses = [
        (await attacker.login(username, "guess")).status for _ in range(LOGIN_BURST_ATTEMPTS)
    ]
    assert statuses == [401] + [429] * (LOGIN_BURST_ATTEMPTS - 1)

    resp = await client.get("/api/v1/security/alerts", headers=bearer(admin))
    assert resp.headers["Cache-Control"] == "no-store"
    [alert] = (await resp.json())["alerts"]
    assert alert["kind"] == "login_burst"
    assert alert["detail"]["attempts"] == LOGIN_BURST_ATTEMPTS
    assert alert["detail"]["top_addresses"] == [
        {"address": "127.0.0.1", "attempts": LOGIN_BURST_ATTEMPTS}
    ]
    # One alert per burst, not one per attempt after it.
    await attacker.login(username, "guess")
    again = await client.get("/api/v1/security/alerts", headers=bearer(admin))
    assert len((await again.json())["alerts"]) == 1
    assert (await client.get("/api/v1/security/alerts", headers=bearer(guard))).status == 403


async def test_accounts_made_over_the_api_are_hashed_in_the_pool(
    make_client: Any, factory: Factory, browsers: list[Browser]
) -> None:
    app, client = await make_client(hash_workers=1, hash_queue=0)
    admin = await factory.token(Role.ADMIN)
    body = {"username": "an.nguyen", "password": "a long passphrase", "role": "guard"}
    pool = app[HASH_POOL_KEY]
    release = threading.Event()
    async with pool.slot():  # the one place is taken: the request cannot wait for it
        busy = asyncio.create_task(pool.run(release.wait, 30))
        refused = await client.post("/api/v1/accounts", json=body, headers=bearer(admin))
        release.set()
        await busy
    assert refused.status == 503
    assert (await refused.json())["error"]["code"] == "password_checks_busy"
    made = await client.post("/api/v1/accounts", json=body, headers=bearer(admin))
    assert made.status == 201, await made.text()
    assert (await visitor(browsers, client).login("an.nguyen", "a long passphrase")).status == 303
