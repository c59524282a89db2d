"""Console accounts: people (guards, admins, auditors) who log in with a password.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's second
recommended profile), so a leaked table costs an attacker real work per guess. After
MAX_FAILED_LOGINS wrong passwords in a row an account is locked for LOCKOUT, which
stops online guessing without letting a stranger lock a guard out for long.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.identity.hashing import DUMMY_HASH, HASH_POOL_KEY, HASHER, HashPool, verify_password
from service.people.fields import NAME_MAX
from service.platform.db import DB_KEY, Database
from service.platform.errors import ApiError
from service.web.auth import Role, principal, requires, site_exists
from service.web.openapi import documented
from service.web.text import Secret, Text
from service.web.validation import read_model

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=5)
MIN_PASSWORD_LENGTH = 10
CONSOLE_ROLES = (Role.GUARD, Role.ADMIN, Role.AUDITOR, Role.HEALTH)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
Username = Annotated[str, StringConstraints(pattern=USERNAME_RE.pattern)]
Password = Annotated[str, Secret(MIN_PASSWORD_LENGTH, 200)]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    role: Annotated[Role, Field(json_schema_extra={"enum": [r.value for r in CONSOLE_ROLES]})]
    site_id: Annotated[int, Field(gt=0)] | None = None  # None: every site
    full_name: Annotated[str, Text(NAME_MAX, min_visible=0)] = ""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: Annotated[Role, Field(json_schema_extra={"enum": [r.value for r in CONSOLE_ROLES]})]
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
RETURNING failed_logins, failed_logins >= $2 AS locked_now
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
# $2: only an account of this site (NULL: any), for an admin limited to a site.
DISABLE_SQL = """
UPDATE console_accounts SET disabled_at = now()
WHERE username = $1 AND disabled_at IS NULL AND ($2::bigint IS NULL OR site_id = $2)
RETURNING id
"""
END_SESSIONS_SQL = "DELETE FROM console_sessions WHERE account_id = $1"
LIST_SQL = """
SELECT id, username, role, site_id, full_name, last_login_at, created_at, disabled_at
FROM console_accounts WHERE $1::bigint IS NULL OR site_id = $1 ORDER BY id
"""


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "weak_password", f"A password needs at least {MIN_PASSWORD_LENGTH} characters."
        )


def hash_password(password: str) -> str:
    """The hash, on the calling thread: for the command line, not the service's loop
    (there, HashPool.hash)."""
    check_password(password)
    return HASHER.hash(password)


async def create_account(
    conn: asyncpg.Connection, new: AccountIn, password_hash: str | None = None
) -> Account:
    """Create the account; `password_hash` is new.password's, when made elsewhere."""
    if new.role not in CONSOLE_ROLES:
        raise AccountError(
            "bad_role", "Console accounts are for guards, admins, auditors and health officers."
        )
    if new.site_id is not None and not await site_exists(conn, new.site_id):
        raise AccountError("site_not_found", f"No site with id {new.site_id}.")
    account_id = await conn.fetchval(
        INSERT_ACCOUNT_SQL,
        new.username,
        password_hash or hash_password(new.password),
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


@dataclass(frozen=True)
class LoginOutcome:
    """What a login attempt came to; `failure` says why there is no account."""

    account: Account | None
    failure: str | None = None  # unknown_account, disabled, locked, wrong_password
    known: bool = False  # the username is an account's
    locked_now: bool = False  # this failure locked the account
    failures: int = 0  # wrong passwords in a row, this one included


async def authenticate(db: Database, pool: HashPool, username: str, password: str) -> LoginOutcome:
    """Check the password off the event loop (in `pool`), holding no database
    connection while it hashes. Raises PoolBusy (503) at once when the pool is full."""
    async with pool.slot():
        row = None
        # A name no account can have (a NUL, broken Unicode) is not looked up, just unknown.
        if USERNAME_RE.fullmatch(username) is not None:
            async with db.connection() as conn:
                row = await conn.fetchrow(LOGIN_ROW_SQL, username)
        if row is None or row["disabled_at"] is not None or row["locked"]:
            await pool.verify(DUMMY_HASH, password)  # the same cost as a wrong password
            if row is None:
                return LoginOutcome(None, "unknown_account")
            failure = "disabled" if row["disabled_at"] is not None else "locked"
            return LoginOutcome(None, failure, known=True)
        if not await pool.verify(row["password_hash"], password):
            async with db.connection() as conn:
                failed = await conn.fetchrow(
                    LOGIN_FAILED_SQL, row["id"], MAX_FAILED_LOGINS, LOCKOUT
                )
            return LoginOutcome(
                None,
                "wrong_password",
                known=True,
                locked_now=failed["locked_now"],
                failures=failed["failed_logins"],
            )
        # A hash made with weaker parameters than today's is replaced while we have the
        # password.
        rehash = (
            await pool.run(HASHER.hash, password)
            if HASHER.check_needs_rehash(row["password_hash"])
            else None
        )
        async with db.connection() as conn:
            await conn.execute(LOGIN_OK_SQL, row["id"], rehash)
    account = Account(
        row["id"], row["username"], Role(row["role"]), row["site_id"], row["full_name"]
    )
    return LoginOutcome(account, known=True)


LoginState = Literal["ok", "changed", "disabled", "missing"]


async def login_state(conn: asyncpg.Connection, username: str, password: str) -> LoginState:
    """Whether this password would log in to the account (the demo's saved logins),
    without counting as a login or a failed one."""
    row = await conn.fetchrow(LOGIN_ROW_SQL, username)
    if row is None:
        return "missing"
    if row["disabled_at"] is not None:
        return "disabled"
    return "ok" if verify_password(row["password_hash"], password) else "changed"


async def set_password(conn: asyncpg.Connection, username: str, password: str) -> None:
    async with conn.transaction():
        account_id = await conn.fetchval(SET_PASSWORD_SQL, username, hash_password(password))
        if account_id is None:
            raise AccountError("account_not_found", f"No account {username}.")
        await conn.execute(END_SESSIONS_SQL, account_id)


async def disable_account(
    conn: asyncpg.Connection, username: str, *, site_id: int | None = None
) -> None:
    """Disable the account (of this site, if given) and end its sessions at once."""
    async with conn.transaction():
        account_id = await conn.fetchval(DISABLE_SQL, username, site_id)
        if account_id is None:
            raise AccountError("account_not_found", f"No active account {username}.")
        await conn.execute(END_SESSIONS_SQL, account_id)


async def list_accounts(
    conn: asyncpg.Connection, *, site_id: int | None = None
) -> list[dict[str, Any]]:
    return [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(r).items()}
        for r in await conn.fetch(LIST_SQL, site_id)
    ]


@requires(Role.ADMIN)
async def list_accounts_route(request: web.Request) -> web.Response:
    scope = principal(request).site_id
    async with request.app[DB_KEY].connection() as conn:
        return web.json_response({"accounts": await list_accounts(conn, site_id=scope)})


@requires(Role.ADMIN)
@documented(body=AccountIn)
async def create_account_route(request: web.Request) -> web.Response:
    new = await read_model(request, AccountIn)
    scope = principal(request).site_id
    if scope is not None and new.site_id != scope:
        # An admin of one site makes logins for that site, never wider ones.
        raise ApiError(403, "forbidden", "Your token is limited to another site.")
    try:
        check_password(new.password)
        password_hash = await request.app[HASH_POOL_KEY].hash(new.password)
        async with request.app[DB_KEY].connection() as conn:
            account = await create_account(conn, new, password_hash)
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
            await disable_account(
                conn, request.match_info["username"], site_id=principal(request).site_id
            )
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
