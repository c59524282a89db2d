"""A console's live feed ends with the login behind it (service.identity.login_watch): logout,
a disabled account, a password change, expiry or a revoked token close the socket with
code 4401 within about a second, on whichever instance holds it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.identity.accounts import set_password
from service.identity.login_watch import CHECK_INTERVAL_S, CLOSE_CODE, SESSION_ENDED, TOKEN_REVOKED
from service.platform.settings import Settings
from service.web.auth import Role, revoke_token
from tests.checkin_helpers import Door, make_door, scan
from tests.factory import Factory, bearer
from tests.test_console_auth import login
from tests.test_fanout import receive_events

Client = TestClient[Any, Any]
# One check to notice, with room for a busy machine; a bound, not a measurement.
ENDS_WITHIN_S = CHECK_INTERVAL_S + 2.0


def feed_url(site_id: int) -> str:
    return f"/api/v1/events/stream?site_id={site_id}"


async def open_feed(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.ClientWebSocketResponse:
    hello = await ws.receive_json(timeout=10)
    assert hello["type"] == "hello", hello
    return ws


async def closed(
    ws: aiohttp.ClientWebSocketResponse, *, within: float = ENDS_WITHIN_S
) -> tuple[int, str]:
    """The code and reason the service closes `ws` with, if it does so in time."""
    started = asyncio.get_running_loop().time()
    message = await ws.receive(timeout=within)
    assert message.type == WSMsgType.CLOSE, message
    print(f"closed after {asyncio.get_running_loop().time() - started:.2f} s")
    return message.data, message.extra


@dataclass
class Guard:
    """A guard logged in on `client`, with the console's feed open on `ws`."""

    client: Client
    door: Door
    username: str
    csrf: str
    ws: aiohttp.ClientWebSocketResponse


async def guard_feed(client: Client, factory: Factory, door: Door) -> Guard:
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    _, csrf = await login(client, username, password)
    ws = await open_feed(await client.ws_connect(feed_url(door.site_id)))
    return Guard(client, door, username, csrf, ws)


async def logout(guard: Guard, conn: asyncpg.Connection) -> None:
    resp = await guard.client.post(
        "/console/logout", data={"csrf_token": guard.csrf}, allow_redirects=False
    )
    assert resp.status == 303


async def disable(guard: Guard, conn: asyncpg.Connection) -> None:
    resp = await guard.client.post(
        f"/api/v1/accounts/{guard.username}/disable", headers=bearer(guard.door.admin)
    )
    assert resp.status == 200, await resp.text()


async def new_password(guard: Guard, conn: asyncpg.Connection) -> None:
    await set_password(conn, guard.username, "a brand new passphrase")


async def expire(guard: Guard, conn: asyncpg.Connection) -> None:
    # It expires in half a second: nothing but the clock ends it.
    await conn.execute("UPDATE console_sessions SET expires_at = now() + interval '0.5 second'")


@pytest.mark.parametrize("end", [logout, disable, new_password, expire], ids=lambda f: f.__name__)
async def test_the_feed_closes_when_its_session_ends(
    client: Client,
    factory: Factory,
    conn: asyncpg.Connection,
    end: Callable[[Guard, asyncpg.Connection], Awaitable[None]],
) -> None:
    guard = await guard_feed(client, factory, await make_door(factory))
    await end(guard, conn)
    assert await closed(guard.ws, within=0.5 + ENDS_WITHIN_S) == (CLOSE_CODE, SESSION_ENDED)


async def test_a_revoked_token_closes_its_feed_and_only_it(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    other = await factory.token(Role.GUARD, site_id=door.site_id)
    async with (
        client.ws_connect(feed_url(door.site_id), headers=bearer(door.guard)) as revoked,
        client.ws_connect(feed_url(door.site_id), headers=bearer(other)) as kept,
    ):
        await open_feed(revoked)
        await open_feed(kept)
        assert await revoke_token(conn, token=door.guard)
        assert await closed(revoked) == (CLOSE_CODE, TOKEN_REVOKED)
        await asyncio.sleep(CHECK_INTERVAL_S * 1.5)  # one more check, at least
        await scan(client, door.kiosk[door.entrance], "junk")
        assert len(await receive_events(kept, 1)) == 1


async def test_a_session_ended_on_one_instance_closes_its_feed_on_another(
    aiohttp_client: Any, settings: Settings, factory: Factory
) -> None:
    instance_a: Client = await aiohttp_client(create_app(settings=settings))
    instance_b: Client = await aiohttp_client(create_app(settings=settings))
    door = await make_door(factory)
    # Guard 1 logs in on A; its browser's feed lands on B.
    ended, password = await factory.account(Role.GUARD, site_id=door.site_id)
    _, csrf = await login(instance_a, ended, password)
    cookie = next(c for c in instance_a.session.cookie_jar if c.key == "cg_session").value
    # Guard 2 is logged in on B all along; its feed must go on.
    kept = (await guard_feed(instance_b, factory, door)).ws
    async with aiohttp.ClientSession(headers={"Cookie": f"cg_session={cookie}"}) as browser:
        url = instance_b.make_url(feed_url(door.site_id))
        gone = await open_feed(await browser.ws_connect(url))
        await asyncio.sleep(CHECK_INTERVAL_S * 1.5)  # a check passes: both stay open
        await scan(instance_a, door.kiosk[door.entrance], "junk")
        assert [e["seq"] for e in await receive_events(gone, 1)] == [1]
        assert [e["seq"] for e in await receive_events(kept, 1)] == [1]

        resp = await instance_a.post(
            "/console/logout", data={"csrf_token": csrf}, allow_redirects=False
        )
        assert resp.status == 303
        assert await closed(gone) == (CLOSE_CODE, SESSION_ENDED)
    await scan(instance_a, door.kiosk[door.entrance], "junk")
    assert [e["seq"] for e in await receive_events(kept, 1)] == [2]
    await kept.close()


async def test_the_login_page_says_why_after_a_session_ended(client: Client) -> None:
    page = await (await client.get("/console/login?ended=1&lang=en")).text()
    assert "Your session has ended; please log in again." in page
    assert "Your session has ended" not in await (await client.get("/console/login")).text()
