"""The `account create|password|disable|list` commands: console logins for guards,
admins and auditors (wired into the CLI by __main__)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import asyncpg
from pydantic import ValidationError

from service.identity.accounts import (
    CONSOLE_ROLES,
    AccountError,
    AccountIn,
    create_account,
    disable_account,
    list_accounts,
    new_password,
    set_password,
)
from service.web.auth import Role
from service.web.field_errors import field_errors


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password from stdin (--password-stdin), or a new random one to print once."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return new_password(), True


async def account_create(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    password, generated = _password(args)
    try:
        new = AccountIn(
            username=args.username,
            password=password,
            role=Role(args.role),
            site_id=args.site,
            full_name=args.name or "",
        )
        account = await create_account(conn, new)
    except ValidationError as e:
        for error in field_errors(e):
            sys.stderr.write(f"error: {error['field']}: {error['reason']}\n")
        return 2
    except AccountError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    scope = f"site {account.site_id}" if account.site_id else "every site"
    sys.stderr.write(f"created {account.role} account {account.username} ({scope})\n")
    if generated:
        sys.stdout.write(password + "\n")  # shown once; only its hash is kept
    return 0


async def account_password(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    password, generated = _password(args)
    try:
        await set_password(conn, args.username, password)
    except AccountError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    sys.stderr.write(f"new password set for {args.username}; its sessions are ended\n")
    if generated:
        sys.stdout.write(password + "\n")
    return 0


async def account_disable(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    try:
        await disable_account(conn, args.username)
    except AccountError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    sys.stderr.write(f"disabled {args.username}; its sessions are ended\n")
    return 0


async def account_list(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    sys.stdout.write("id  username              role     site  last_login              disabled\n")
    for a in await list_accounts(conn):
        sys.stdout.write(
            f"{a['id']:<3} {a['username']:<21} {a['role']:<8} {a['site_id'] or '*':<5} "
            f"{(a['last_login_at'] or '-')[:19]:<23} {'yes' if a['disabled_at'] else ''}\n"
        )
    return 0


def add_parsers(sub: argparse._SubParsersAction, wrap: Callable[..., object]) -> None:  # type: ignore[type-arg]
    account = sub.add_parser("account", help="console logins for guards, admins and auditors")
    account_sub = account.add_subparsers(dest="account_command", required=True)
    create = account_sub.add_parser(
        "create", help="create an account; prints a new random password unless --password-stdin"
    )
    create.add_argument("username", help="lower-case letters, digits, . _ -")
    create.add_argument("--role", choices=tuple(r.value for r in CONSOLE_ROLES), default="guard")
    create.add_argument("--site", type=int, help="limit the account to one site (guards)")
    create.add_argument("--name", help="the person's full name")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    create.set_defaults(func=wrap(account_create))
    password = account_sub.add_parser(
        "password", help="set a new password (random unless --password-stdin); ends its sessions"
    )
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true")
    password.set_defaults(func=wrap(account_password))
    disable = account_sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.set_defaults(func=wrap(account_disable))
    account_sub.add_parser("list", help="list the accounts").set_defaults(func=wrap(account_list))
