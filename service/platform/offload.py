"""CPU work off the event loop, behind a bounded queue that refuses instead of waiting.

The door's decisions run on the event loop; whatever a caller without a kiosk token can
start (a login's password hash, a pass's QR image) runs in a pool of its own, which
admits at most `workers + queue` jobs. One more is answered 503 with Retry-After at once,
so a flood costs the loop the refusal and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar

from service.platform.errors import ApiError

T = TypeVar("T")

RETRY_AFTER_S = 1


def lowest_priority() -> None:
    """A pool worker's initializer: the lowest CPU priority (nice 19), so that when the
    cores are short, the door's decisions and the database run first. On Linux a
    thread has a nice value of its own, so this holds a thread pool's workers too."""
    with contextlib.suppress(OSError, AttributeError):  # not permitted, or not POSIX
        os.setpriority(os.PRIO_PROCESS, 0, 19)


class PoolBusy(ApiError):
    """Every worker is busy and the queue is full: come back shortly."""

    def __init__(self, code: str, message: str, message_vi: str) -> None:
        super().__init__(503, code, message, message_vi=message_vi, retry_after_s=RETRY_AFTER_S)
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


class BoundedPool:
    """`executor` with `workers` workers, and at most `queue` jobs waiting for one."""

    def __init__(
        self, executor: Executor, *, workers: int, queue: int, busy: Callable[[], PoolBusy]
    ) -> None:
        self.capacity = workers + queue
        self.admitted = 0  # running or waiting; only touched on the loop
        self._executor = executor
        self._busy = busy

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a place for one or a few jobs in a row; refused at once when full."""
        if self.admitted >= self.capacity:
            raise self._busy()
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn` in a worker; the caller holds a slot."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn` in a worker, in a slot of its own."""
        async with self.slot():
            return await self.run(fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
