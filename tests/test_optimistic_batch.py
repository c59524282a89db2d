"""A batch is read without a lock: a write from state that moved meanwhile is refused,
and the batcher decides again on what happened."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import asyncpg
import pytest

from service.checkin.batch import decide_batch
from service.checkin.batcher import OPTIMISTIC_TRIES, ScanBatcher
from service.checkin.state import STATE_SQL
from service.checkin.wire import ScanIn, ScanItem
from service.events.log import verify_chain
from service.passes.trust import PassAuthenticator
from service.platform.db import Database, init_connection
from tests.checkin_helpers import Door, make_door, scan_body
from tests.factory import Factory


class Interfering:
    """A connection on which another writer gets in between a batch's optimistic
    read and its write, `times` times."""

    def __init__(self, conn: asyncpg.Connection, interfere: Callable[[], Awaitable[None]]) -> None:
        self._conn = conn
        self._interfere = interfere
        self.times = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetchval(self, query: str, *args: Any) -> Any:
        value = await self._conn.fetchval(query, *args)
        locked = args[-1] if query == STATE_SQL else True
        if not locked and self.times > 0:
            self.times -= 1
            await self._interfere()
        return value


def item(payload: str, gate: int) -> ScanItem:
    return ScanItem(ScanIn.model_validate(scan_body(payload)), gate, "kiosk:test")


@pytest.fixture
async def other(db_url: str) -> Any:
    conn = await asyncpg.connect(db_url)
    await init_connection(conn)
    yield conn
    await conn.close()


async def test_a_write_from_a_moved_site_is_refused_and_records_nothing(
    factory: Factory, conn: asyncpg.Connection, other: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    ours, theirs = [(await factory.issued_pass(door.key, door.site_id))[1] for _ in range(2)]
    authenticator = PassAuthenticator()

    async def meanwhile() -> None:
        await decide_batch(other, [item(theirs, door.entrance_b)], authenticator)

    wrapped = cast(asyncpg.Connection, Interfering(conn, meanwhile))
    with pytest.raises(asyncpg.SerializationError):
        await decide_batch(wrapped, [item(ours, door.entrance)], authenticator)
    assert await conn.fetchval("SELECT count(*) FROM events") == 1
    assert await conn.fetchval("SELECT count(*) FROM presence") == 1
    report = await verify_chain(conn, door.site_id)
    assert report.broken is None and report.checked == 1


async def batcher_decides(
    factory: Factory, conn: asyncpg.Connection, other: asyncpg.Connection, times: int
) -> tuple[list[str], ScanBatcher, Door]:
    """The same pass let in at the other entrance between our read and our write."""
    door = await make_door(factory)
    payload = (await factory.issued_pass(door.key, door.site_id))[1]
    authenticator = PassAuthenticator()
    entered = False

    async def meanwhile() -> None:
        nonlocal entered
        if not entered:
            await decide_batch(other, [item(payload, door.entrance_b)], authenticator)
            entered = True
        else:  # anything appended to the site moves it
            await decide_batch(other, [item("junk", door.entrance_b)], authenticator)

    wrapped = Interfering(conn, meanwhile)
    wrapped.times = times
    batcher = ScanBatcher(cast(Database, None), authenticator)
    decisions = await batcher._decide(
        cast(asyncpg.Connection, wrapped), [item(payload, door.entrance)]
    )
    return [d.reason for d in decisions], batcher, door


async def test_the_batcher_decides_again_on_what_happened_meanwhile(
    factory: Factory, conn: asyncpg.Connection, other: asyncpg.Connection
) -> None:
    reasons, batcher, door = await batcher_decides(factory, conn, other, times=1)
    assert reasons == ["shared_pass"]  # a stale read would have said welcome
    assert batcher.conflicts == 1
    assert await conn.fetchval("SELECT count(*) FROM presence WHERE exited_at IS NULL") == 1
    assert (await verify_chain(conn, door.site_id)).broken is None


async def test_after_repeated_conflicts_the_batch_holds_the_lock_and_gets_through(
    factory: Factory, conn: asyncpg.Connection, other: asyncpg.Connection
) -> None:
    reasons, batcher, door = await batcher_decides(factory, conn, other, times=100)
    assert reasons == ["shared_pass"]
    assert batcher.conflicts == OPTIMISTIC_TRIES
    events = await conn.fetchval("SELECT count(*) FROM events")
    assert events == OPTIMISTIC_TRIES + 1  # what got in meanwhile, and ours
    assert (await verify_chain(conn, door.site_id)).broken is None
