"""Bearer tokens, console sessions and roles.

A token is random, shown once and stored as its SHA-256 (it has 256 bits of entropy,
so a slow hash adds nothing). A browser on the guard console is known by its session
cookie instead (service.identity.sessions); a request it makes that changes anything must also
carry the session's CSRF token. Every route declares who may call it with `@requires`
or `@public`; the middleware refuses routes that declare nothing (fail secure).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import asyncpg
from aiohttp import hdrs, web
from aiohttp_session import STORAGE_KEY, get_session

from service.platform.db import DB_KEY
from service.platform.errors import ApiError, Handler
from service.web.token_usage import TOKEN_USAGE_KEY

TOKEN_PREFIX = "cgw_"


class Role(StrEnum):
    ADMIN = "admin"
    GUARD = "guard"
    AUDITOR = "auditor"
    KIOSK = "kiosk"
    HEALTH = "health"  # cán bộ y tế: reviews, tests, cases, traces, suspensions


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's (or console account's) id, role and scope
    (site None: every site)."""

    token_id: int
    role: Role
    site_id: int | None
    gate_id: int | None
    label: str
    account: bool = False  # a person logged in to the console, not an API token

    @property
    def actor(self) -> str:
        """How this caller is named in the event log."""
        if self.account:
            return f"{self.role}:user:{self.label}"
        return (
            f"{self.role}:{self.token_id}:{self.label}"
            if self.label
            else f"{self.role}:{self.token_id}"
        )

    def can_see_site(self, site_id: int) -> bool:
        return self.site_id is None or self.site_id == site_id


PRINCIPAL_KEY = web.RequestKey("principal", Principal)
_ACCESS_ATTR = "__checkin_access__"
PUBLIC: frozenset[Role] = frozenset()

H = TypeVar("H", bound=Callable[..., Any])


def requires(*roles: Role) -> Callable[[H], H]:
    def mark(handler: H) -> H:
        setattr(handler, _ACCESS_ATTR, frozenset(roles))
        return handler

    return mark


def public(handler: H) -> H:
    setattr(handler, _ACCESS_ATTR, PUBLIC)
    return handler


def access_of(handler: Any) -> frozenset[Role] | None:
    """The roles a handler allows; PUBLIC for everyone; None when it declares nothing."""
    return getattr(handler, _ACCESS_ATTR, None)


def principal(request: web.Request) -> Principal:
    found: Principal | None = request.get(PRINCIPAL_KEY)
    if found is None:
        raise ApiError(401, "unauthorized", "A valid bearer token is required.")
    return found


def require_site(request: web.Request, site_id: int) -> Principal:
    """The caller, if their token reaches this site; 403 otherwise."""
    caller = principal(request)
    if not caller.can_see_site(site_id):
        raise ApiError(403, "forbidden", "Your token is limited to another site.")
    return caller


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


CREATE_TOKEN_SQL = """
INSERT INTO api_tokens (token_hash, role, site_id, gate_id, label)
VALUES ($1, $2, coalesce($3, (SELECT site_id FROM gates WHERE id = $4)), $4, $5)
RETURNING id
"""

LOOKUP_TOKEN_SQL = """
SELECT id, role, site_id, gate_id, label FROM api_tokens
WHERE token_hash = $1 AND revoked_at IS NULL
"""

REVOKE_TOKEN_SQL = """
UPDATE api_tokens SET revoked_at = now()
WHERE (token_hash = $1 OR id = $2) AND revoked_at IS NULL
RETURNING id, role, site_id, gate_id, label
"""

LIST_TOKENS_SQL = """
SELECT id, role, site_id, gate_id, label, created_at, last_used_at, revoked_at
FROM api_tokens WHERE $1 OR revoked_at IS NULL ORDER BY id
"""


SITE_EXISTS_SQL = "SELECT 1 FROM sites WHERE id = $1"


async def site_exists(conn: asyncpg.Connection, site_id: int) -> bool:
    """Whether the site exists: the one lookup every package makes before a 404."""
    return await conn.fetchval(SITE_EXISTS_SQL, site_id) is not None


async def create_token(
    conn: asyncpg.Connection,
    *,
    role: Role,
    site_id: int | None = None,
    gate_id: int | None = None,
    label: str = "",
) -> tuple[int, str]:
    """Create a token; return its id and the token itself (the only time it exists)."""
    if (role is Role.KIOSK) != (gate_id is not None):
        raise ValueError("a kiosk token needs a gate, and only a kiosk token takes one")
    if (
        gate_id is not None
        and await conn.fetchval("SELECT 1 FROM gates WHERE id = $1", gate_id) is None
    ):
        raise ValueError(f"no gate with id {gate_id}")
    if site_id is not None and not await site_exists(conn, site_id):
        raise ValueError(f"no site with id {site_id}")
    token = new_token()
    token_id = await conn.fetchval(
        CREATE_TOKEN_SQL, hash_token(token), role.value, site_id, gate_id, label
    )
    return int(token_id), token


async def revoke_token(
    conn: asyncpg.Connection, *, token: str | None = None, token_id: int | None = None
) -> Principal | None:
    """Revoke the token (given itself or its id); who it was, None if none was active."""
    token_hash = hash_token(token) if token is not None else None
    row = await conn.fetchrow(REVOKE_TOKEN_SQL, token_hash, token_id)
    return _principal(row) if row is not None else None


def _principal(row: asyncpg.Record) -> Principal:
    return Principal(row["id"], Role(row["role"]), row["site_id"], row["gate_id"], row["label"])


async def lookup_token(conn: asyncpg.Connection, token: str) -> Principal | None:
    row = await conn.fetchrow(LOOKUP_TOKEN_SQL, hash_token(token))
    return _principal(row) if row is not None else None


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def session_principal(request: web.Request) -> Principal | None:
    """The console account logged in on this request's session, if any."""
    if request.get(STORAGE_KEY) is None:
        return None
    session = await get_session(request)
    if "account_id" not in session:
        return None
    return Principal(
        session["account_id"],
        Role(session["role"]),
        session["site_id"],
        None,
        session["username"],
        account=True,
    )


async def session_csrf_token(request: web.Request) -> str:
    return str((await get_session(request))["csrf"])


def same_origin(request: web.Request) -> bool:
    """True unless the browser says the request comes from another site's page."""
    origin = request.headers.get(hdrs.ORIGIN)
    return origin is None or origin == f"{request.scheme}://{request.host}"


async def _check_session_request(request: web.Request) -> None:
    # The cookie is SameSite=Strict already; the token and the origin check are the
    # second lock, for browsers or proxies that do not honour it.
    if not same_origin(request):
        raise ApiError(403, "cross_origin", "Requests from another site are refused.")
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type == "application/x-www-form-urlencoded":
            sent = str((await request.post()).get("csrf_token", ""))  # a plain HTML form
        sent = sent or ""
        if not hmac.compare_digest(sent.encode(), (await session_csrf_token(request)).encode()):
            raise ApiError(403, "csrf_failed", "The form is stale or forged; reload the page.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.resource is None:
        return await handler(request)  # aiohttp's own 404/405: let it raise
    allowed = access_of(request.match_info.handler)
    if allowed is None:
        # A route that forgot to declare its access is closed, not open.
        raise ApiError(403, "forbidden", "This route declares no access rule.")
    if allowed is PUBLIC or not allowed:
        return await handler(request)
    token = bearer_token(request)
    if token is not None:
        async with request.app[DB_KEY].connection() as conn:
            found = await lookup_token(conn, token)
        if found is None:
            raise ApiError(401, "unauthorized", "The token is unknown or revoked.")
        request.app[TOKEN_USAGE_KEY].note(found.token_id)
    else:
        found = await session_principal(request)
        if found is None:
            if request.path.startswith("/console"):
                raise web.HTTPSeeOther("/console/login")
            raise ApiError(401, "unauthorized", "A valid bearer token is required.")
        await _check_session_request(request)
    if found.role not in allowed:
        raise ApiError(403, "forbidden", f"The {found.role} role may not do this.")
    request[PRINCIPAL_KEY] = found
    return await handler(request)
