"""Background tasks owned by an app resource."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol, TypeVar

from aiohttp import web

from service.platform.db import DB_KEY, CleanupContext, Database


class Worker(Protocol):
    def start(self) -> None: ...
    async def stop(self) -> None: ...


W = TypeVar("W", bound=Worker)


def worker_context(key: web.AppKey[W], make: Callable[[Database], W]) -> CleanupContext:
    """A cleanup context that makes a worker on the app's database, keeps it under `key`,
    starts it with the app and stops it with the app."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        worker = make(app[DB_KEY])
        app[key] = worker
        worker.start()
        yield
        await worker.stop()

    return ctx
