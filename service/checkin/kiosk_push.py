"""Changes to what kiosks know, pushed to their sockets as they happen.

One watcher per site with kiosks connected here, on the fan-out of the event log
(service.events.fanout: LISTEN/NOTIFY across instances). When an event that changes
the kiosks' copy arrives (service.checkin.kiosk_sync.KNOWLEDGE_KINDS), the watcher
reads the changes since its own cursor once, encodes them once, and offers the text
to every kiosk socket of the site. Each message carries ``from`` and ``cursor``: a
kiosk whose copy is not at ``from`` (it connected in between, or its queue was full
and it missed one) pulls ``GET /api/v1/kiosk/sync`` instead, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from checkin_core.aio import cancel_and_wait, raise_if_cancelled
from service.checkin.kiosk_sync import KNOWLEDGE_KINDS, Cursor, knowledge_since, parse_cursor
from service.events.fanout import FANOUT_KEY, Fanout, Subscription
from service.events.log import NO_SITE_CHAIN
from service.platform.db import DB_KEY, Database
from service.platform.errors import UNAVAILABLE_ERRORS

logger = logging.getLogger(__name__)

SOCKET_QUEUE = 16  # messages waiting for one slow kiosk; beyond, it pulls instead
# What a watch outlives (the database away, a site deleted): it retries a second later.
WATCH_ERRORS: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, LookupError)


class _SiteWatch:
    def __init__(self, site_id: int) -> None:
        self.site_id = site_id
        self.queues: set[asyncio.Queue[str]] = set()
        self.task: asyncio.Task[None] | None = None


class KnowledgePush:
    def __init__(self, db: Database, fanout: Fanout) -> None:
        self.db = db
        self.fanout = fanout
        self._sites: dict[int, _SiteWatch] = {}

    @contextlib.asynccontextmanager
    async def listening(self, site_id: int) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of encoded ``knowledge`` messages for one kiosk socket."""
        queue: asyncio.Queue[str] = asyncio.Queue(SOCKET_QUEUE)
        watch = self._sites.get(site_id)
        if watch is None:
            watch = self._sites[site_id] = _SiteWatch(site_id)
            watch.task = asyncio.create_task(self._watch(watch), name=f"knowledge-{site_id}")
        watch.queues.add(queue)
        try:
            yield queue
        finally:
            watch.queues.discard(queue)
            if not watch.queues and self._sites.get(site_id) is watch:
                del self._sites[site_id]
                if watch.task is not None:
                    await cancel_and_wait([watch.task])

    async def _watch(self, watch: _SiteWatch) -> None:
        subs: list[Subscription] = []
        cursor: Cursor | None = None
        try:
            while True:
                try:
                    if not subs:
                        for chain in (watch.site_id, NO_SITE_CHAIN):
                            subs.append(await self._subscribe(chain))
                        cursor = await self._push(watch, cursor)  # nothing missed meanwhile
                    await _any_wake(subs)
                    if any([_drain(s) for s in subs]):  # every one drained
                        cursor = await self._push(watch, cursor)
                    if any(s.overflowed for s in subs):
                        subs = self._unsubscribe(subs)
                except WATCH_ERRORS as e:
                    raise_if_cancelled()
                    logger.warning("knowledge watch of site %s: %s", watch.site_id, e)
                    subs = self._unsubscribe(subs)
                    await asyncio.sleep(1.0)
        finally:
            self._unsubscribe(subs)

    async def _subscribe(self, chain: int) -> Subscription:
        sub, _ = await self.fanout.subscribe(chain, None)
        return sub

    def _unsubscribe(self, subs: list[Subscription]) -> list[Subscription]:
        for sub in subs:
            self.fanout.unsubscribe(sub)
        return []

    async def _push(self, watch: _SiteWatch, cursor: Cursor | None) -> Cursor | None:
        """Offer the changes since ``cursor`` to every socket; the new cursor."""
        async with self.db.connection() as conn:
            answer = await knowledge_since(conn, watch.site_id, cursor)
        if answer is None:
            return cursor
        new = parse_cursor(answer["cursor"])
        if cursor is None or new == cursor:
            return new  # the first read sets the watch's cursor; kiosks pull on connect
        text = json.dumps(answer)
        for queue in list(watch.queues):
            with contextlib.suppress(asyncio.QueueFull):  # that kiosk pulls instead
                queue.put_nowait(text)
        return new


def _drain(sub: Subscription) -> bool:
    """Forget the events waiting; True if one of them changes the kiosks' copy."""
    relevant = False
    while sub.pending:
        event: dict[str, Any] = json.loads(sub.pending.popleft().text)
        relevant = relevant or event.get("kind") in KNOWLEDGE_KINDS
    sub.wake.clear()
    return relevant or sub.overflowed


async def _any_wake(subs: list[Subscription]) -> None:
    waits = [asyncio.create_task(_wait(s.wake)) for s in subs]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(waits)


async def _wait(event: asyncio.Event) -> None:
    await event.wait()


KNOWLEDGE_PUSH_KEY = web.AppKey("knowledge_push", KnowledgePush)


async def knowledge_push_context(app: web.Application) -> AsyncIterator[None]:
    app[KNOWLEDGE_PUSH_KEY] = KnowledgePush(app[DB_KEY], app[FANOUT_KEY])
    yield
