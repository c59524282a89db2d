"""The connection pool: one per process, owned by the app's cleanup context.

DATABASE_URL may name several hosts (`postgresql://h1:5432,h2:5432/db?target_session_attrs=
read-write`): asyncpg tries them in order and keeps the one that takes writes, so after a
failover every new connection finds the new primary. A pooled connection whose server
died is closed, and the pool makes a new one on the next acquire; one left on a server
that turned standby is dropped at its first refused write (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from service.platform.errors import ServiceUnavailable
from service.platform.settings import Settings


class Database:
    """The pool, with a bounded wait: a request never hangs for a connection."""

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout_s: float) -> None:
        self.pool = pool
        self.acquire_timeout_s = acquire_timeout_s

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self.pool.acquire(timeout=self.acquire_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # whatever stops us connecting, the database is unavailable
            raise ServiceUnavailable() from e
        try:
            yield conn
        except BaseException as e:
            if isinstance(e, asyncpg.ReadOnlySQLTransactionError):
                connection_lost(conn, e)
            # What ended the block is what the caller sees. The release resets the
            # connection, and after a cancelled query that reset can fail: its error
            # would replace a CancelledError, and a background loop that catches
            # errors would then never stop (a test run hung on one). asyncpg closes
            # a connection whose reset failed; the pool makes a new one.
            with contextlib.suppress(Exception):
                await self.pool.release(conn)
            raise
        await self.pool.release(conn)


# The server is gone or going (a crash, a shutdown, a terminated backend), or it is a
# standby now (a demoted primary): the connection is of no more use. Not a statement
# that timed out (TimeoutError is an OSError) or was cancelled: the connection is fine.
NOT_LOST_ERRORS = (TimeoutError, asyncpg.QueryCanceledError)
LOST_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.ReadOnlySQLTransactionError,
)


def connection_lost(conn: asyncpg.Connection, error: BaseException) -> bool:
    """Whether this connection is of no more use after `error`; if so it is closed here,
    so that the pool's next connection looks for the primary again."""
    try:
        if isinstance(error, LOST_ERRORS) and not isinstance(error, NOT_LOST_ERRORS):
            conn.terminate()
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool took it back already, as its server closed it
        return True


DB_KEY = web.AppKey("db", Database)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


async def init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come and go as Python objects.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(database_url: str, settings: Settings) -> asyncpg.Pool:
    # min_size=0: the service starts (and /readyz says why it is not ready) even when
    # the database is down; connections are made on demand and kept.
    return await asyncpg.create_pool(
        database_url,
        min_size=0,
        max_size=settings.pool_max_size,
        command_timeout=settings.db_command_timeout_s,
        init=init_connection,
        statement_cache_size=settings.db_statement_cache_size,
        timeout=settings.db_acquire_timeout_s,  # per attempt to connect, over all the hosts
    )


def pool_context(settings: Settings) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.database_url is None:
            raise RuntimeError("DATABASE_URL must be resolved before the app starts")
        pool = await create_pool(settings.database_url, settings)
        app[DB_KEY] = Database(pool, acquire_timeout_s=settings.db_acquire_timeout_s)
        yield
        try:
            await asyncio.wait_for(pool.close(), timeout=10)
        except TimeoutError:
            pool.terminate()

    return ctx
