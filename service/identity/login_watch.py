"""Live sockets end with the login behind them.

A console's feed socket, like a kiosk's, is authorised once, at the upgrade; the
login behind it can end later: logout, a disabled account, a password change, the
session's expiry, or a revoked bearer token (a kiosk taken off its gate). Each instance
checks the logins behind its open sockets together, with one query every
CHECK_INTERVAL_S, and closes the sockets whose login has ended with CLOSE_CODE.

Why a poll and not a NOTIFY on session end: sessions end in several places (the
service, the CLI in another process, plain expiry, which no statement announces), so
a NOTIFY would need triggers and a timer and would still want a poll for a lost
notification or a dropped LISTEN connection. One indexed query per instance per
second, whatever the number of sockets, is cheap, catches every cause on every
instance, and bounds how long an ended login keeps watching to about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from checkin_core.aio import cancel_and_wait, raise_if_cancelled
from service.identity.sessions import session_key_hash
from service.platform.db import Database
from service.platform.tasks import worker_context
from service.web.auth import principal

logger = logging.getLogger(__name__)

CHECK_INTERVAL_S = 1.0
CLOSE_TIMEOUT_S = 5.0
# 4xxx: the application's own range; 401 as in HTTP, "your credentials are no good".
CLOSE_CODE = 4401
SESSION_ENDED = "session ended"
TOKEN_REVOKED = "token revoked"

# The same conditions as service.identity.sessions.LOAD_SQL and service.web.auth.LOOKUP_TOKEN_SQL.
STILL_VALID_SQL = """
SELECT
    ARRAY(SELECT s.key_hash
          FROM console_sessions s JOIN console_accounts a ON a.id = s.account_id
          WHERE s.key_hash = ANY($1::bytea[]) AND s.expires_at > now()
            AND a.disabled_at IS NULL) AS sessions,
    ARRAY(SELECT id FROM api_tokens
          WHERE id = ANY($2::bigint[]) AND revoked_at IS NULL) AS tokens
"""


@dataclass(eq=False)
class Watch:
    """The login behind one socket: a session (its key's hash) or an API token (its id)."""

    session: bytes | None = None
    token_id: int | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()


class LoginWatch:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.watches: set[Watch] = set()
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def watching(self, request: web.Request) -> AsyncIterator[Watch]:
        """Watch the login that authorised `request` while in the block."""
        caller = principal(request)
        if caller.account:
            watch = Watch(session=await session_key_hash(request))
        else:
            watch = Watch(token_id=caller.token_id)
        self.watches.add(watch)
        try:
            yield watch
        finally:
            self.watches.discard(watch)

    async def check(self) -> None:
        """End every watch whose login has ended, with one query for all of them."""
        watches = list(self.watches)
        sessions = list({w.session for w in watches if w.session is not None})
        tokens = list({w.token_id for w in watches if w.token_id is not None})
        async with self.db.connection() as conn:
            row = await conn.fetchrow(STILL_VALID_SQL, sessions, tokens)
        live_sessions, live_tokens = set(row["sessions"]), set(row["tokens"])
        for w in watches:
            if w.session is not None and w.session not in live_sessions:
                w.end(SESSION_ENDED)
            elif w.session is None and w.token_id not in live_tokens:
                w.end(TOKEN_REVOKED)

    async def _loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            if not self.watches:
                continue
            try:
                await self.check()
                failing = False
            except Exception as e:
                raise_if_cancelled()
                # Keep the sockets: while the database is away they get no events either,
                # and a blip must not sign every guard out. The next check decides. Said
                # once per outage, not every second of it.
                logger.log(
                    logging.DEBUG if failing else logging.WARNING, "login check failed: %s", e
                )
                failing = True

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])


async def close_when_ended(
    ws: web.WebSocketResponse, watch: Watch, *, stop_first: Sequence[asyncio.Task[None]] = ()
) -> None:
    """Close `ws` with CLOSE_CODE once the login behind it ends, after `stop_first`."""
    await watch.ended.wait()
    await cancel_and_wait(stop_first)
    # A peer that reads nothing would hold the close up: its connection is cut instead.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await ws.close(code=CLOSE_CODE, message=watch.reason.encode())


LOGIN_WATCH_KEY = web.AppKey("login_watch", LoginWatch)


login_watch_context = worker_context(LOGIN_WATCH_KEY, LoginWatch)
