"""When each API token was last used (`checkin-gateway token list`), at no cost to the door.

A use is noted in memory (a dict lookup, on every authenticated request and every kiosk
heartbeat) and each token at most once a minute; a background task writes what was
noted in one UPDATE a minute, and once more when the service stops. So `last_used_at`
is up to about two minutes behind, and the scan path never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from aiohttp import web

from checkin_core.aio import cancel_and_wait
from service.platform.db import Database
from service.platform.tasks import worker_context

logger = logging.getLogger(__name__)

NOTE_INTERVAL_S = 60.0  # a token's uses within this are one
FLUSH_INTERVAL_S = 60.0
STOP_FLUSH_TIMEOUT_S = 2.0

# greatest(): two instances may write one token's uses out of order.
RECORD_USES_SQL = """
UPDATE api_tokens t SET last_used_at = greatest(t.last_used_at, u.used_at)
FROM unnest($1::bigint[], $2::timestamptz[]) AS u (id, used_at)
WHERE t.id = u.id
"""


class TokenUsage:
    """Uses noted since the last write, per token id."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: dict[int, datetime] = {}
        self._noted_at: dict[int, float] = {}  # token id -> monotonic time of its last note
        self._task: asyncio.Task[None] | None = None

    def note(self, token_id: int) -> None:
        now = time.monotonic()
        last = self._noted_at.get(token_id)
        if last is not None and now - last < NOTE_INTERVAL_S:
            return
        self._noted_at[token_id] = now
        self._pending[token_id] = datetime.now(UTC)

    async def flush(self) -> None:
        if not self._pending:
            return
        taken, self._pending = self._pending, {}
        try:
            async with self.db.connection() as conn:
                await conn.execute(RECORD_USES_SQL, list(taken), list(taken.values()))
        except BaseException as e:
            # Kept for the next round (a newer use of the same token wins).
            self._pending = taken | self._pending
            if not isinstance(e, Exception):
                raise
            logger.warning("could not record token uses: %s", e)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
        with contextlib.suppress(TimeoutError):  # a database that is away does not hold us
            async with asyncio.timeout(STOP_FLUSH_TIMEOUT_S):
                await self.flush()


TOKEN_USAGE_KEY = web.AppKey("token_usage", TokenUsage)


token_usage_context = worker_context(TOKEN_USAGE_KEY, TokenUsage)
