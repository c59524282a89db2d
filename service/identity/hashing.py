"""Password hashing off the event loop, in a small bounded pool the app owns.

An argon2 verification takes tens of milliseconds of CPU; on the event loop it stops
every door decision for that long, and a login flood stops them for good. argon2-cffi
releases the GIL inside its C call, so a thread does the work while the loop goes on
deciding scans (measured: a verification on the loop stalled it 200-600 ms; in a thread
the loop's worst lag stayed at the machine's noise). The pool is bounded
(service.platform.offload): a login past `workers + queue` is refused at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.platform.db import CleanupContext
from service.platform.offload import BoundedPool, PoolBusy, lowest_priority
from service.platform.settings import Settings

THREAD_PREFIX = "hash"

HASHER = PasswordHasher()
# Verified when the username is unknown (or the account may not log in), so a wrong
# name costs as long as a wrong password. Made once, at import, before any request.
DUMMY_HASH = HASHER.hash("not a password of anyone")


def hash_pool_busy() -> PoolBusy:
    return PoolBusy(
        "password_checks_busy",
        "Too many password checks at once; try again in a moment.",
        "Có quá nhiều lượt kiểm tra mật khẩu cùng lúc, vui lòng thử lại sau.",
    )


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError, UnicodeEncodeError):  # lone surrogates
        return False


class HashPool(BoundedPool):
    """`workers` threads and at most `queue` jobs waiting for one. A login holds one
    slot for its verification and, rarely, a rehash; it takes the slot before its
    database lookup, so a refused login costs no round trip either."""

    def __init__(self, *, workers: int, queue: int) -> None:
        executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=THREAD_PREFIX, initializer=lowest_priority
        )
        super().__init__(executor, workers=workers, queue=queue, busy=hash_pool_busy)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self.run(verify_password, password_hash, password)

    async def hash(self, password: str) -> str:
        """A new hash (account creation, a new password)."""
        return await self.call(HASHER.hash, password)


HASH_POOL_KEY = web.AppKey("hash_pool", HashPool)


def hash_pool_context(settings: Settings) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = HashPool(workers=settings.hash_workers, queue=settings.hash_queue)
        app[HASH_POOL_KEY] = pool
        yield
        pool.shutdown()

    return ctx
