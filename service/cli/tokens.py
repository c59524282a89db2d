"""The `token create|list|revoke` commands: API tokens for admins, guards, auditors and
kiosks (wired into the CLI by __main__)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from service.web.auth import LIST_TOKENS_SQL, Principal, Role, create_token, revoke_token


async def token_create(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    try:
        _, token = await create_token(
            conn, role=Role(args.role), site_id=args.site, gate_id=args.gate, label=args.label
        )
    except ValueError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    sys.stdout.write(token + "\n")  # only the token: scripts capture it
    return 0


def scope_of(site_id: int | None, gate_id: int | None) -> str:
    if gate_id is not None:
        return f"gate {gate_id}"
    return f"site {site_id}" if site_id is not None else "every site"


def _utc(at: datetime | None) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}Z" if at is not None else "never"


async def token_list(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    rows = await conn.fetch(LIST_TOKENS_SQL, args.all)
    revoked = "revoked            " if args.all else ""
    sys.stdout.write(
        f"id    role     scope       created            last used          {revoked}label\n"
    )
    for r in rows:
        if args.all:
            revoked = f"{_utc(r['revoked_at']) if r['revoked_at'] else '-':<19}"
        sys.stdout.write(
            f"{r['id']:<5} {r['role']:<8} {scope_of(r['site_id'], r['gate_id']):<11} "
            f"{_utc(r['created_at']):<18} {_utc(r['last_used_at']):<18} {revoked}"
            f"{r['label'] or '-'}\n"
        )
    return 0


def _described(found: Principal) -> str:
    scope = scope_of(found.site_id, found.gate_id)
    label = f", {found.label}" if found.label else ""
    return f"token {found.token_id} ({found.role}, {scope}{label})"


async def token_revoke(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    found = await revoke_token(conn, token=args.token, token_id=args.id)
    if found is None:
        sys.stderr.write("error: no such active token\n")
        return 1
    sys.stdout.write(f"revoked {_described(found)}\n")
    return 0


def add_parsers(sub: argparse._SubParsersAction, wrap: Callable[..., object]) -> None:  # type: ignore[type-arg]
    token = sub.add_parser("token", help="create, list or revoke API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token and print it (only it)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--gate", type=int, help="gate id (required for, and only for, kiosk)")
    create.add_argument("--site", type=int, help="limit the token to one site")
    create.add_argument("--label", default="", help="who or what holds it, for the logs")
    create.set_defaults(func=wrap(token_create))
    listing = token_sub.add_parser(
        "list",
        help="the active tokens: id, role, gate or site, created, last used (within about "
        "two minutes), label; never the tokens themselves",
    )
    listing.add_argument("--all", action="store_true", help="revoked tokens too")
    listing.set_defaults(func=wrap(token_list))
    revoke = token_sub.add_parser("revoke", help="revoke a token, given itself or its id")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("token", nargs="?", help="the token")
    which.add_argument("--id", type=int, help="the token's id (see `token list`)")
    revoke.set_defaults(func=wrap(token_revoke))
