"""Pass-signing keys: private halves in files, public halves in signing_keys, rotation.

A private key is ``<data_dir>/keys/<kid>.key``: the raw 32 bytes, mode 0600, in a
directory of mode 0700. The database says which key is active; an instance whose data
folder lacks that key's file cannot issue passes and says so (503
``signing_key_unavailable``) rather than failing obscurely. Retiring keys still verify
(they are in the trust list) but sign nothing; retired keys leave the trust list.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from checkin_core.keys import KeyStatus, SigningKey, TrustedKey, TrustList
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import public

logger = logging.getLogger(__name__)

ACTIVE_KEY_SQL = "SELECT kid FROM signing_keys WHERE status = 'active'"
INSERT_ACTIVE_KEY_SQL = """
INSERT INTO signing_keys (kid, public_key, status) VALUES ($1, $2, 'active')
ON CONFLICT (status) WHERE status = 'active' DO NOTHING
RETURNING kid
"""
DEMOTE_ACTIVE_KEY_SQL = """
UPDATE signing_keys SET status = 'retiring' WHERE status = 'active' RETURNING kid
"""
TRUSTED_KEYS_SQL = """
SELECT kid, public_key, status FROM signing_keys
WHERE status IN ('active', 'retiring') ORDER BY status, created_at, kid
"""
LIST_KEYS_SQL = """
SELECT k.kid, k.status, k.created_at, k.retired_at,
       count(p.id) FILTER (WHERE p.revoked_at IS NULL AND p.not_after > $1) AS live_passes
FROM signing_keys k LEFT JOIN passes p ON p.kid = k.kid
GROUP BY k.kid ORDER BY k.created_at, k.kid
"""
KEY_STATUS_SQL = "SELECT status FROM signing_keys WHERE kid = $1 FOR UPDATE"
LIVE_PASSES_SQL = """
SELECT count(*) FROM passes WHERE kid = $1 AND revoked_at IS NULL AND not_after > $2
"""
RETIRE_KEY_SQL = "UPDATE signing_keys SET status = 'retired', retired_at = $2 WHERE kid = $1"


class SigningKeyUnavailable(ApiError):
    def __init__(self, kid: str) -> None:
        super().__init__(
            503,
            "signing_key_unavailable",
            f"This instance does not hold the private half of the active signing key {kid}; "
            "copy it into its data folder or rotate keys.",
        )


class KeyStore:
    """The private key files of one data folder, cached once read. No I/O until used."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, SigningKey] = {}

    def path_for(self, kid: str) -> Path:
        return self.directory / f"{kid}.key"

    def save(self, key: SigningKey) -> Path:
        """Write a new key file (0600, directory 0700); never overwrite one."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        path = self.path_for(key.key_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.to_bytes())
        self._cache[key.key_id] = key
        return path

    def load(self, kid: str) -> SigningKey | None:
        cached = self._cache.get(kid)
        if cached is not None:
            return cached
        try:
            raw = self.path_for(kid).read_bytes()
        except FileNotFoundError:
            return None
        key = SigningKey.from_bytes(raw)
        if key.key_id != kid:
            raise RuntimeError(f"key file {self.path_for(kid)} holds key {key.key_id}, not {kid}")
        self._cache[kid] = key
        return key

    def discard(self, kid: str) -> None:
        self._cache.pop(kid, None)
        with contextlib.suppress(FileNotFoundError):
            self.path_for(kid).unlink()


KEYS_KEY = web.AppKey("keys", KeyStore)


def key_store_for(data_dir: Path) -> KeyStore:
    return KeyStore(data_dir / "keys")


async def _insert_active(conn: asyncpg.Connection, store: KeyStore) -> str | None:
    """Make a new key and try to make it the active one; None if another already is."""
    key = SigningKey.generate()
    store.save(key)  # the file first: an active key in the database always has one
    kid = await conn.fetchval(INSERT_ACTIVE_KEY_SQL, key.key_id, key.public_key_bytes())
    if kid is None:
        store.discard(key.key_id)
        return None
    logger.info("created signing key %s", kid)
    return str(kid)


async def active_signing_key(conn: asyncpg.Connection, store: KeyStore) -> SigningKey:
    """The key that signs new passes, created on first need.

    Safe inside a caller's transaction: a concurrent creator is resolved by the unique
    index ``signing_keys_one_active_key`` with ON CONFLICT DO NOTHING (which waits for
    the other transaction), then the winner is re-read.
    """
    kid = await conn.fetchval(ACTIVE_KEY_SQL)
    if kid is None:
        kid = await _insert_active(conn, store) or await conn.fetchval(ACTIVE_KEY_SQL)
        if kid is None:
            raise ApiError(503, "signing_key_unavailable", "No active signing key; try again.")
    key = store.load(kid)
    if key is None:
        logger.error("private key file for active key %s is missing", kid)
        raise SigningKeyUnavailable(kid)
    return key


async def trust_list(conn: asyncpg.Connection) -> TrustList:
    rows = await conn.fetch(TRUSTED_KEYS_SQL)
    return TrustList(
        TrustedKey(kid=r["kid"], public_key=bytes(r["public_key"]), status=KeyStatus(r["status"]))
        for r in rows
    )


async def rotate(conn: asyncpg.Connection, store: KeyStore) -> tuple[str, str | None]:
    """Make a new active key; the previous one becomes retiring. Return (new, old)."""
    key = SigningKey.generate()
    store.save(key)
    try:
        async with conn.transaction():
            old = await conn.fetchval(DEMOTE_ACTIVE_KEY_SQL)
            await conn.execute(
                "INSERT INTO signing_keys (kid, public_key, status) VALUES ($1, $2, 'active')",
                key.key_id,
                key.public_key_bytes(),
            )
    except BaseException:
        store.discard(key.key_id)
        raise
    logger.info("rotated signing keys: %s is active, %s is retiring", key.key_id, old)
    return key.key_id, old


class KeyCommandError(Exception):
    """A key command that cannot be done; the message says why."""


async def retire(
    conn: asyncpg.Connection, store: KeyStore, kid: str, *, now: datetime, force: bool = False
) -> int:
    """Retire a retiring key; return how many live passes it still signed (0 unless force)."""
    async with conn.transaction():
        status = await conn.fetchval(KEY_STATUS_SQL, kid)
        if status is None:
            raise KeyCommandError(f"no key {kid!r}")
        if status == "retired":
            raise KeyCommandError(f"key {kid} is already retired")
        if status == "active":
            raise KeyCommandError(f"key {kid} is the active key: rotate first")
        live = int(await conn.fetchval(LIVE_PASSES_SQL, kid, now))
        if live and not force:
            raise KeyCommandError(
                f"{live} unexpired, unrevoked pass(es) are signed by {kid}; "
                "they would stop verifying. Wait until they expire, or use --force."
            )
        await conn.execute(RETIRE_KEY_SQL, kid, now)
    store.discard(kid)  # after commit: the private half is no longer needed
    return live


async def list_keys(conn: asyncpg.Connection, *, now: datetime) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(LIST_KEYS_SQL, now)]


@public
async def get_keys(request: web.Request) -> web.Response:
    """The trust list kiosks verify passes with (active and retiring keys)."""
    async with request.app[DB_KEY].connection() as conn:
        trust = await trust_list(conn)
    return web.json_response(trust.to_json(), headers={"Cache-Control": "public, max-age=60"})


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/keys", get_keys, name="keys")]
