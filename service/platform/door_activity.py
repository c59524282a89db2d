"""How busy the door is, as this instance sees it, and bulk output that yields to it.

The door comes first: an export streams as fast as the database can read it, which takes
a core from PostgreSQL and much of the service's event loop. While scans are coming in,
it is paced instead (`paced`): PostgreSQL's COPY waits on the socket as the service reads
less (asyncpg's back-pressure), so the pacing slows the query itself, not only the copy.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

# The door counts as busy this long after its last scan.
BUSY_FOR_S = 2.0


class DoorActivity:
    def __init__(
        self, busy_for_s: float = BUSY_FOR_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.busy_for_s = busy_for_s
        self.clock = clock
        self._last_scan = -math.inf

    def scanned(self) -> None:
        self._last_scan = self.clock()

    def busy(self) -> bool:
        return self.clock() - self._last_scan < self.busy_for_s


DOOR_ACTIVITY_KEY = web.AppKey("door_activity", DoorActivity)

Write = Callable[[bytes], Awaitable[Any]]


def paced(
    write: Write,
    door: DoorActivity,
    bytes_per_s: int,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Write:
    """`write`, passing at most `bytes_per_s` while the door is busy, freely otherwise."""
    due = 0.0  # when the bytes written so far may have gone at that rate

    async def paced_write(chunk: bytes) -> Any:
        nonlocal due
        started = door.clock()
        result = await write(chunk)
        if not door.busy():
            due = door.clock()
            return result
        # The write's own time counts; a pause between writes is not saved up.
        due = max(due, started) + len(chunk) / bytes_per_s
        wait = due - door.clock()
        if wait > 0:
            await sleep(wait)
        return result

    return paced_write
