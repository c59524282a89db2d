"""Groups concurrent scans into one transaction (group commit).

Scans queue up while the previous batch is in the database; the worker takes all that
are waiting (up to a limit) and decides them together. At low load a batch is one scan
and nothing waits; under load the batches grow, and the commit rate stops being the
limit. A scan is answered only after its batch has committed. One worker: two would
read the same sites at once, and one of their two writes would be refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from checkin_core.aio import cancel_and_wait, raise_if_cancelled
from service.checkin.batch import decide_batch
from service.checkin.wire import Decision, ScanItem
from service.passes.trust import PassAuthenticator
from service.platform.db import DB_KEY, Database, connection_lost
from service.platform.door_activity import DOOR_ACTIVITY_KEY, DoorActivity
from service.platform.errors import UNAVAILABLE_ERRORS, ServiceUnavailable

logger = logging.getLogger(__name__)

# Batches read without a lock and commit only if their sites did not move meanwhile.
OPTIMISTIC_TRIES = 3
OnCommit = Callable[[dict[int, int]], None]  # site id -> last seq written


@dataclass
class _Unit:
    """Scans that must be decided together and in order (one request's worth)."""

    items: Sequence[ScanItem]
    future: asyncio.Future[list[Decision]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ScanBatcher:
    def __init__(
        self,
        db: Database,
        authenticator: PassAuthenticator,
        *,
        on_commit: OnCommit | None = None,
        activity: DoorActivity | None = None,
        max_batch: int = 256,
    ) -> None:
        self.db = db
        self.activity = activity
        self.authenticator = authenticator
        self.on_commit = on_commit
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Unit] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.batches = 0
        self.scans = 0
        self.conflicts = 0
        self.retried = 0  # batches tried again after their connection died

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work())]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        while not self._queue.empty():
            unit = self._queue.get_nowait()
            if not unit.future.done():
                unit.future.set_exception(ServiceUnavailable("The service is shutting down."))

    async def submit_many(self, items: Sequence[ScanItem]) -> list[Decision]:
        """Decide these scans in this order, in one batch."""
        if self.activity is not None:
            self.activity.scanned()
        unit = _Unit(items)
        self._queue.put_nowait(unit)
        return await unit.future

    async def _work(self) -> None:
        while True:
            units = self._take([await self._queue.get()])
            retried = False
            try:
                while units:
                    units = await self._batches(units, retry=not retried)
                    retried = True
            except Exception:  # a bug costs these scans an answer, never every later one
                logger.exception("scan batch worker failed")
                for unit in units:
                    _fail(unit, ServiceUnavailable())
                raise_if_cancelled()

    async def _batches(self, units: list[_Unit], *, retry: bool) -> list[_Unit]:
        """Run batches on one connection while they follow each other; the units of a
        batch whose connection died under it, when it is to be tried once more."""
        # One connection for as long as batches follow each other: giving it back
        # to the pool costs a round trip (the pool resets it) per batch.
        try:
            async with self.db.connection() as conn:
                while await self._run(conn, units, retry=retry) and not self._queue.empty():
                    units = self._take([self._queue.get_nowait()])
        except _Lost as lost:
            # The server went away under the batch (a failover): its outcome is unknown.
            # Once more on a new connection (to the new primary, if there is one yet):
            # scans already recorded are answered from the record, by their event ids.
            self.retried += 1
            return lost.units
        except UNAVAILABLE_ERRORS as e:  # no connection to be had
            logger.warning("batch failed, database unavailable: %s", type(e).__name__)
            for unit in units:
                _fail(unit, ServiceUnavailable())
        except asyncio.CancelledError:
            for unit in units:
                _fail(unit, ServiceUnavailable("The service is shutting down."))
            raise
        return []

    def _take(self, units: list[_Unit]) -> list[_Unit]:
        size = len(units[0].items)
        while size < self.max_batch and not self._queue.empty():
            units.append(self._queue.get_nowait())
            size += len(units[-1].items)
        return units

    async def _run(
        self, conn: asyncpg.Connection, units: list[_Unit], *, retry: bool = False
    ) -> bool:
        """Decide and answer these units; False if the connection may be unusable.
        With `retry`, a connection lost under the batch raises _Lost instead."""
        try:
            decisions = await self._decide(conn, [i for u in units for i in u.items])
        except UNAVAILABLE_ERRORS as e:
            if retry and connection_lost(conn, e):
                raise _Lost(units) from e
            logger.warning("batch failed, database unavailable: %s", type(e).__name__)
            for unit in units:
                _fail(unit, ServiceUnavailable())
            return False
        except asyncio.CancelledError:
            for unit in units:
                _fail(unit, ServiceUnavailable("The service is shutting down."))
            raise
        except Exception:
            if len(units) == 1:
                logger.exception("scan batch failed")
                _fail(units[0], RuntimeError("scan batch failed"))
                return False
            # One bad unit must not sink the others: decide each on its own.
            usable = True
            for unit in units:
                usable = await self._run(conn, [unit]) and usable
            return usable
        start = 0
        for unit in units:
            end = start + len(unit.items)
            if not unit.future.done():
                unit.future.set_result(decisions[start:end])
            start = end
        return True

    async def _decide(self, conn: asyncpg.Connection, items: list[ScanItem]) -> list[Decision]:
        conflicts = 0
        reused_id = False
        while True:
            try:
                locked = conflicts >= OPTIMISTIC_TRIES
                result = await decide_batch(conn, items, self.authenticator, locked=locked)
                break
            except asyncpg.SerializationError:
                # Another writer (an override, another instance) appended to one of the
                # sites since the read: decide again on fresh state; after a few tries,
                # with the sites locked, which cannot be refused.
                self.conflicts += 1
                conflicts += 1
                if locked:
                    raise
            except asyncpg.UniqueViolationError:
                # The same event id committed by another instance meanwhile: once more,
                # and the retry will see it as a duplicate.
                if reused_id:
                    raise
                reused_id = True
        self.batches += 1
        self.scans += len(items)
        if self.on_commit is not None:
            self.on_commit(result.heads)
        return result.decisions


class _Lost(Exception):
    """The connection died under these units' batch."""

    def __init__(self, units: list[_Unit]) -> None:
        super().__init__(len(units))
        self.units = units


def _fail(unit: _Unit, error: Exception) -> None:
    if not unit.future.done():
        unit.future.set_exception(error)


BATCHER_KEY = web.AppKey("batcher", ScanBatcher)
AUTHENTICATOR_KEY = web.AppKey("authenticator", PassAuthenticator)


async def batcher_context(app: web.Application) -> AsyncIterator[None]:
    from service.events.fanout import FANOUT_KEY  # the fan-out is set up before us

    authenticator = PassAuthenticator()
    app[AUTHENTICATOR_KEY] = authenticator
    batcher = ScanBatcher(
        app[DB_KEY],
        authenticator,
        on_commit=app[FANOUT_KEY].poke,
        activity=app[DOOR_ACTIVITY_KEY],
    )
    app[BATCHER_KEY] = batcher
    batcher.start()
    yield
    await batcher.stop()
