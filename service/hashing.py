"""Password hashing off the event loop, in a small bounded pool the app owns.

An argon2 verification takes tens of milliseconds of CPU; on the event loop it stops
every door decision for that long, and a login flood stops them for good. argon2-cffi
releases the GIL inside its C call, so a thread does the work while the loop goes on
deciding scans. The pool admits at most `workers + queue` jobs; one more is refused at
once (503 with Retry-After) instead of waiting, so a flood costs the loop nothing but
the refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.db import CleanupContext
from service.errors import ApiError
from service.settings import Settings

T = TypeVar("T")

THREAD_PREFIX = "hash"
RETRY_AFTER_S = 1

HASHER = PasswordHasher()
# Verified when the username is unknown (or the account may not log in), so a wrong
# name costs as long as a wrong password. Made once, at import, before any request.
DUMMY_HASH = HASHER.hash("not a password of anyone")


class HashPoolBusy(ApiError):
    """Every worker is busy and the queue is full: come back shortly."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "password_checks_busy",
            "Too many password checks at once; try again in a moment.",
            message_vi="Có quá nhiều lượt kiểm tra mật khẩu cùng lúc, vui lòng thử lại sau.",
            retry_after_s=RETRY_AFTER_S,
        )
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class HashPool:
    """`workers` threads and at most `queue` jobs waiting for one."""

    def __init__(self, *, workers: int, queue: int) -> None:
        self.capacity = workers + queue
        self.admitted = 0  # running or waiting; only touched on the loop
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=THREAD_PREFIX)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a place in the pool for a few jobs in a row (a login: verify, maybe
        rehash); refused at once when full. Taken before any other work of the
        request, so a refused login costs no database round trip either."""
        if self.admitted >= self.capacity:
            raise HashPoolBusy()
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn` in a worker; the caller holds a slot."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self.run(verify_password, password_hash, password)

    async def hash(self, password: str) -> str:
        """A new hash, in a slot of its own (account creation, a new password)."""
        async with self.slot():
            return await self.run(HASHER.hash, password)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


HASH_POOL_KEY = web.AppKey("hash_pool", HashPool)


def hash_pool_context(settings: Settings) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = HashPool(workers=settings.hash_workers, queue=settings.hash_queue)
        app[HASH_POOL_KEY] = pool
        yield
        pool.shutdown()

    return ctx
