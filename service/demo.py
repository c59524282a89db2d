"""The demo site of `make run`: one site, an entrance and an exit, fresh tokens and
console passwords."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from service.accounts import AccountIn, new_password, reset_account
from service.auth import Role, create_token

DEMO_SITE_CODE = "demo"
DEMO_LABEL_PREFIX = "demo:"

UPSERT_SITE_SQL = """
INSERT INTO sites (code, name, capacity) VALUES ($1, $2, $3)
ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code
RETURNING id
"""
UPSERT_GATE_SQL = """
INSERT INTO gates (site_id, name, direction) VALUES ($1, $2, $3)
ON CONFLICT (site_id, name) DO UPDATE SET name = EXCLUDED.name
RETURNING id
"""
REVOKE_DEMO_TOKENS_SQL = """
UPDATE api_tokens SET revoked_at = now()
WHERE starts_with(label, $1) AND revoked_at IS NULL
"""


@dataclass(frozen=True)
class DemoSite:
    site_id: int
    entrance_gate_id: int
    exit_gate_id: int
    tokens: dict[str, str]  # what each token is for -> the token
    logins: dict[str, str]  # console username -> its password for this run


async def seed_demo(conn: asyncpg.Connection) -> DemoSite:
    """Create the demo site if missing, and fresh demo tokens (earlier ones revoked:
    tokens are kept only as hashes, so the old ones cannot be shown again)."""
    async with conn.transaction():
        site_id = await conn.fetchval(
            UPSERT_SITE_SQL, DEMO_SITE_CODE, "Chi cục Hải quan (demo) — Trụ sở chính", 200
        )
        entrance = await conn.fetchval(UPSERT_GATE_SQL, site_id, "Cổng chính — vào", "entrance")
        exit_ = await conn.fetchval(UPSERT_GATE_SQL, site_id, "Cổng chính — ra", "exit")
        await conn.execute(REVOKE_DEMO_TOKENS_SQL, DEMO_LABEL_PREFIX)
        wanted = {
            "admin": (Role.ADMIN, None, None),
            "guard": (Role.GUARD, site_id, None),
            "auditor": (Role.AUDITOR, None, None),
            "kiosk-entrance": (Role.KIOSK, None, entrance),
            "kiosk-exit": (Role.KIOSK, None, exit_),
        }
        tokens = {}
        for purpose, (role, site, gate) in wanted.items():
            _, token = await create_token(
                conn, role=role, site_id=site, gate_id=gate, label=DEMO_LABEL_PREFIX + purpose
            )
            tokens[purpose] = token
        # Console logins, with new passwords each run for the same reason as the tokens.
        logins = {}
        for username, role, site in (("guard", Role.GUARD, site_id), ("admin", Role.ADMIN, None)):
            logins[username] = new_password()
            await reset_account(
                conn,
                AccountIn(username=username, password=logins[username], role=role, site_id=site),
            )
    return DemoSite(site_id, entrance, exit_, tokens, logins)
