"""Console accounts: people (guards, admins, auditors) who log in with a password.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's second
recommended profile), so a leaked table costs an attacker real work per guess. After
MAX_FAILED_LOGINS wrong passwords in a row an account is locked for LOCKOUT, which
stops online guessing without letting a stranger lock a guard out for long.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.auth import Role, requires
from service.db import DB_KEY
from service.errors import ApiError
from service.openapi import documented
from service.validation import read_model

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=5)
MIN_PASSWORD_LENGTH = 10
CONSOLE_ROLES = (Role.GUARD, Role.ADMIN, Role.AUDITOR, Role.HEALTH)

_hasher = PasswordHasher()
# Verified when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,39}$")]
Password = Annotated[str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=200)]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    role: Role
    site_id: Annotated[int, Field(gt=0)] | None = None  # None: every site
    full_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] = ""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: Role
    site_id: int | None
    full_name: str


class AccountError(ValueError):
    """A request about accounts that cannot be met; code is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


UPSERT_ACCOUNT_SQL = """
INSERT INTO console_accounts (username, password_hash, role, site_id, full_name)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (username) DO UPDATE
SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, site_id = EXCLUDED.site_id,
    full_name = EXCLUDED.full_name, disabled_at = NULL, failed_logins = 0, locked_until = NULL
RETURNING id
"""
INSERT_ACCOUNT_SQL = """
INSERT INTO console_accounts (username, password_hash, role, site_id, full_name)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (username) DO NOTHING
RETURNING id
"""
LOGIN_ROW_SQL = """
SELECT id, username, password_hash, role, site_id, full_name, disabled_at,
       locked_until > now() AS locked
FROM console_accounts WHERE username = $1
"""
LOGIN_FAILED_SQL = """
UPDATE console_accounts
SET failed_logins = failed_logins + 1,
    locked_until = CASE WHEN failed_logins + 1 >= $2 THEN now() + $3 ELSE locked_until END
WHERE id = $1
"""
LOGIN_OK_SQL = """
UPDATE console_accounts
SET failed_logins = 0, locked_until = NULL, last_login_at = now(),
    password_hash = coalesce($2, password_hash)
WHERE id = $1
"""
SET_PASSWORD_SQL = """
UPDATE console_accounts SET password_hash = $2, failed_logins = 0, locked_until = NULL
WHERE username = $1 RETURNING id
"""
DISABLE_SQL = """
UPDATE console_accounts SET disabled_at = now()
WHERE username = $1 AND disabled_at IS NULL RETURNING id
"""
END_SESSIONS_SQL = "DELETE FROM console_sessions WHERE account_id = $1"
LIST_SQL = """
SELECT id, username, role, site_id, full_name, last_login_at, created_at, disabled_at
FROM console_accounts ORDER BY id
"""
SITE_EXISTS_SQL = "SELECT 1 FROM sites WHERE id = $1"


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "weak_password", f"A password needs at least {MIN_PASSWORD_LENGTH} characters."
        )
    return _hasher.hash(password)


async def create_account(conn: asyncpg.Connection, new: AccountIn) -> Account:
    if new.role not in CONSOLE_ROLES:
        raise AccountError(
            "bad_role", "Console accounts are for guards, admins, auditors and health officers."
        )
    if new.site_id is not None and await conn.fetchval(SITE_EXISTS_SQL, new.site_id) is None:
        raise AccountError("site_not_found", f"No site with id {new.site_id}.")
    account_id = await conn.fetchval(
        INSERT_ACCOUNT_SQL,
        new.username,
        hash_password(new.password),
        new.role.value,
        new.site_id,
        new.full_name,
    )
    if account_id is None:
        raise AccountError("username_taken", f"The username {new.username} is taken.")
    return Account(account_id, new.username, new.role, new.site_id, new.full_name)


async def reset_account(conn: asyncpg.Connection, new: AccountIn) -> int:
    """Create the account, or give an existing one this password and role (the demo)."""
    async with conn.transaction():
        account_id: int = await conn.fetchval(
            UPSERT_ACCOUNT_SQL,
            new.username,
            hash_password(new.password),
            new.role.value,
            new.site_id,
            new.full_name,
        )
        await conn.execute(END_SESSIONS_SQL, account_id)
    return account_id


def new_password() -> str:
    return secrets.token_urlsafe(12)


async def authenticate(conn: asyncpg.Connection, username: str, password: str) -> Account | None:
    """The account if the password is right and the account may log in now."""
    row = await conn.fetchrow(LOGIN_ROW_SQL, username)
    if row is None:
        _verify(_DUMMY_HASH, password)
        return None
    if row["disabled_at"] is not None or row["locked"]:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(row["password_hash"], password):
        await conn.execute(LOGIN_FAILED_SQL, row["id"], MAX_FAILED_LOGINS, LOCKOUT)
        return None
    # A hash made with weaker parameters than today's is replaced while we have the password.
    rehash = _hasher.hash(password) if _hasher.check_needs_rehash(row["password_hash"]) else None
    await conn.execute(LOGIN_OK_SQL, row["id"], rehash)
    return Account(row["id"], row["username"], Role(row["role"]), row["site_id"], row["full_name"])


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def set_password(conn: asyncpg.Connection, username: str, password: str) -> None:
    async with conn.transaction():
        account_id = await conn.fetchval(SET_PASSWORD_SQL, username, hash_password(password))
        if account_id is None:
            raise AccountError("account_not_found", f"No account {username}.")
        await conn.execute(END_SESSIONS_SQL, account_id)


async def disable_account(conn: asyncpg.Connection, username: str) -> None:
    """Disable the account and end its sessions at once."""
    async with conn.transaction():
        account_id = await conn.fetchval(DISABLE_SQL, username)
        if account_id is None:
            raise AccountError("account_not_found", f"No active account {username}.")
        await conn.execute(END_SESSIONS_SQL, account_id)


async def list_accounts(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(r).items()}
        for r in await conn.fetch(LIST_SQL)
    ]


@requires(Role.ADMIN)
async def list_accounts_route(request: web.Request) -> web.Response:
    async with request.app[DB_KEY].connection() as conn:
        return web.json_response({"accounts": await list_accounts(conn)})


@requires(Role.ADMIN)
@documented(body=AccountIn)
async def create_account_route(request: web.Request) -> web.Response:
    new = await read_model(request, AccountIn)
    async with request.app[DB_KEY].connection() as conn:
        try:
            account = await create_account(conn, new)
        except AccountError as e:
            raise ApiError(409 if e.code == "username_taken" else 422, e.code, str(e)) from None
    return web.json_response(
        {
            "id": account.id,
            "username": account.username,
            "role": account.role.value,
            "site_id": account.site_id,
        },
        status=201,
    )


@requires(Role.ADMIN)
async def disable_account_route(request: web.Request) -> web.Response:
    async with request.app[DB_KEY].connection() as conn:
        try:
            await disable_account(conn, request.match_info["username"])
        except AccountError as e:
            raise ApiError(404, e.code, str(e)) from None
    return web.json_response({"disabled": request.match_info["username"]})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/accounts", list_accounts_route, name="accounts"),
        web.post("/api/v1/accounts", create_account_route, name="create_account"),
        web.post(
            r"/api/v1/accounts/{username:[a-z0-9][a-z0-9._-]{1,39}}/disable",
            disable_account_route,
            name="disable_account",
        ),
    ]
