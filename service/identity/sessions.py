"""Console sessions: aiohttp-session with the sessions kept in PostgreSQL.

The cookie holds only a random key; the database holds its SHA-256 and the session
data. Keeping sessions in the database (not in a signed cookie) lets logout, a
disabled account and a password change end a session at once, on every instance.
A session lives SESSION_HOURS from login however active it is: one guard shift.
"""

from __future__ import annotations

import hashlib
import secrets
import warnings
from typing import Any

from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp_session import AbstractStorage, Session, get_session

from service.platform.db import DB_KEY

# aiohttp-session (2.12) stores itself on the request under a string key, which aiohttp
# 3.14 warns about on every request; the key is the library's, not a bug of ours.
warnings.filterwarnings("ignore", category=NotAppKeyWarning, module="aiohttp_session")

COOKIE_NAME = "cg_session"

LOAD_SQL = """
SELECT s.data, extract(epoch FROM s.created_at)::bigint AS created
FROM console_sessions s JOIN console_accounts a ON a.id = s.account_id
WHERE s.key_hash = $1 AND s.expires_at > now() AND a.disabled_at IS NULL
"""
INSERT_SQL = """
INSERT INTO console_sessions (key_hash, account_id, data, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
"""
UPDATE_SQL = "UPDATE console_sessions SET data = $2 WHERE key_hash = $1"
DELETE_SQL = "DELETE FROM console_sessions WHERE key_hash = $1"
DELETE_EXPIRED_SQL = "DELETE FROM console_sessions WHERE expires_at < now()"


def _key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


async def session_key_hash(request: web.Request) -> bytes:
    """How the database knows the session of `request`, which has a stored one."""
    key = (await get_session(request)).identity
    if key is None:
        raise RuntimeError("the request has no stored session")
    return _key_hash(key)


class PostgresSessionStorage(AbstractStorage):
    def __init__(self, *, max_age_s: int, secure: bool) -> None:
        super().__init__(
            cookie_name=COOKIE_NAME,
            max_age=max_age_s,
            httponly=True,
            samesite="Strict",
            secure=secure,
        )

    async def load_session(self, request: web.Request) -> Session:
        key = self.load_cookie(request)
        if not key or len(key) > 100:
            return Session(None, data=None, new=True, max_age=self.max_age)
        async with request.app[DB_KEY].connection() as conn:
            row = await conn.fetchrow(LOAD_SQL, _key_hash(key))
        if row is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        data: dict[str, Any] = {"created": row["created"], "session": row["data"]}
        return Session(key, data=data, new=False, max_age=self.max_age)  # type: ignore[arg-type]

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        async with request.app[DB_KEY].connection() as conn:
            if session.empty:  # logged out
                if session.identity is not None:
                    await conn.execute(DELETE_SQL, _key_hash(session.identity))
                self.save_cookie(response, "", max_age=session.max_age)
                return
            data = dict(session)
            key = session.identity
            if key is None:  # a fresh login: a fresh key (no fixation)
                key = secrets.token_urlsafe(32)
                session.set_new_identity(key)
                await conn.execute(DELETE_EXPIRED_SQL)
                await conn.execute(
                    INSERT_SQL, _key_hash(key), session["account_id"], data, self.max_age
                )
            else:
                await conn.execute(UPDATE_SQL, _key_hash(key), data)
        self.save_cookie(response, key, max_age=session.max_age)
