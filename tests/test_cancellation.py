"""A cancelled task stops, even when a clean-up fails as it unwinds.

The release of a pooled connection resets it, and after a cancelled query the reset
can fail. Its error used to replace the CancelledError. A background loop that logs
errors and goes on then never stopped, and the app's shutdown waited for it for ever.
That is how a `make test` run hung once, in the teardown of an app whose automatic
check-out loop was left 'cancelling' in its sleep."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from checkin_core.aio import cancel_and_wait, raise_if_cancelled
from service.platform.db import Database
from service.platform.settings import Settings


class FailingRelease:
    """A real pool whose release fails after giving the connection back, as a reset
    that fails after a cancelled query does."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)

    async def release(self, conn: asyncpg.Connection) -> None:
        await self.pool.release(conn)
        raise asyncpg.InterfaceError("the reset failed")


async def test_a_cancelled_block_stays_cancelled_when_the_release_fails(
    settings: Settings,
) -> None:
    pool = await asyncpg.create_pool(str(settings.database_url), min_size=0, max_size=2)
    try:
        db = Database(FailingRelease(pool), acquire_timeout_s=2.0)  # type: ignore[arg-type]
        started = asyncio.Event()

        async def query_forever() -> None:
            async with db.connection() as conn:
                started.set()
                await conn.execute("SELECT pg_sleep(30)")

        task = asyncio.create_task(query_forever())
        await started.wait()
        await asyncio.sleep(0.1)  # in the query
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # A block that ends normally still hears of a failed release.
        with pytest.raises(asyncpg.InterfaceError):
            async with db.connection() as conn:
                await conn.fetchval("SELECT 1")
    finally:
        await pool.close()


async def test_a_loop_whose_clean_up_fails_on_cancel_still_stops() -> None:
    rounds = 0

    async def clean_up_that_fails() -> None:
        raise RuntimeError("rollback failed")

    async def loop() -> None:
        nonlocal rounds
        while True:
            try:
                try:
                    await asyncio.sleep(10)
                finally:
                    await clean_up_that_fails()  # replaces the CancelledError
            except Exception:  # a loop that logs errors and goes on
                raise_if_cancelled()
            rounds += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await cancel_and_wait([task])
    assert task.cancelled() and rounds == 0
