"""`checkin-gateway`: the service and its admin commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from service import account_commands, admin_commands
from service.app import create_app
from service.auth import Role, create_token, revoke_token
from service.db import init_connection
from service.demo import DemoSite, seed_demo
from service.embedded import start_embedded
from service.logs import configure_logging
from service.migrations import migrate
from service.retention import purge
from service.server import serve
from service.settings import Settings, SettingsError

logger = logging.getLogger("service")


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL when set; else the embedded server, kept up while in use."""
    if settings.database_url:
        yield settings.database_url
        return
    server, url = start_embedded(settings.data_dir)
    try:
        yield url
    finally:
        del server  # the last handle going away stops the embedded server


async def _with_connection(url: str, work: Callable[[asyncpg.Connection], Awaitable[int]]) -> int:
    conn = await asyncpg.connect(url)
    try:
        await init_connection(conn)
        return await work(conn)
    finally:
        await conn.close()


def cmd_migrate(args: argparse.Namespace, url: str) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        done = await migrate(conn)
        sys.stdout.write(("applied: " + ", ".join(done)) if done else "schema is up to date")
        sys.stdout.write("\n")
        return 0

    return asyncio.run(_with_connection(url, work))


def cmd_token_create(args: argparse.Namespace, url: str) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        try:
            _, token = await create_token(
                conn, role=Role(args.role), site_id=args.site, gate_id=args.gate, label=args.label
            )
        except ValueError as e:
            sys.stderr.write(f"error: {e}\n")
            return 2
        sys.stdout.write(token + "\n")  # only the token: scripts capture it
        return 0

    return asyncio.run(_with_connection(url, work))


def cmd_token_revoke(args: argparse.Namespace, url: str) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        if await revoke_token(conn, token=args.token, token_id=args.id):
            sys.stderr.write("revoked\n")
            return 0
        sys.stderr.write("error: no such active token\n")
        return 1

    return asyncio.run(_with_connection(url, work))


async def purge_command(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    days = args.older_than_days or args.settings.retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    report = await purge(conn, older_than=cutoff, actor="cli:purge")
    if report is None:
        sys.stderr.write("another purge is running; try again later\n")
        return 1
    sys.stdout.write(json.dumps(report.as_json()) + "\n")
    return 0


def demo_banner(demo: DemoSite, settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    ws_base = f"ws://{settings.host}:{settings.port}"
    scanner = f".venv/bin/checkin-scanner --server {base} --source 0"
    t = demo.tokens
    return f"""
================ checkin-gateway demo ================
Service:      {base}        (ready: {base}/readyz)
Declare:      {base}/declare?site={demo.site_id}   (khai báo y tế; open it on a phone)
Trust list:   {base}/api/v1/keys
Demo site id: {demo.site_id}; gates: entrance {demo.entrance_gate_id}, exit {demo.exit_gate_id}

Guard console: {base}/console
  guard  / {demo.logins["guard"]}   (the demo site's guard)
  admin  / {demo.logins["admin"]}   (every site; can revoke passes and deny entry)

Tokens for this run (earlier demo tokens are revoked; each is shown only once):
  admin           {t["admin"]}
  guard           {t["guard"]}
  auditor         {t["auditor"]}
  kiosk-entrance  {t["kiosk-entrance"]}
  kiosk-exit      {t["kiosk-exit"]}

Kiosks (in another terminal, from this folder; SOURCE: 0 for the webcam, or a video
file, or a folder of images; add --headless without a screen):
  CHECKIN_KIOSK_TOKEN={t["kiosk-entrance"]} \\
    {scanner} --data-dir .kiosk-entrance
  CHECKIN_KIOSK_TOKEN={t["kiosk-exit"]} \\
    {scanner} --data-dir .kiosk-exit

Live events of the site (a WebSocket, for the guard):
  {ws_base}/api/v1/events/stream?site_id={demo.site_id}
  (with the header Authorization: Bearer <guard token>)
Who is inside:
  curl -H "Authorization: Bearer {t["guard"]}" {base}/api/v1/sites/{demo.site_id}/presence
Stop with Ctrl-C; the data stays in {settings.data_dir}/ for the next run.
======================================================
"""


async def _freeze_heap(_app: web.Application) -> None:
    """What exists once the service is up (modules, the app, its pools) lives as long as
    the process: keep it out of the collector's full passes, which otherwise walk it all
    and stop the event loop for up to ~0.1 s under load (measured), every scan waiting."""
    gc.collect()
    gc.freeze()


def cmd_serve(args: argparse.Namespace, url: str) -> int:
    settings = dataclasses.replace(args.settings, database_url=url)

    async def prepare(conn: asyncpg.Connection) -> int:
        await migrate(conn)
        if args.demo:
            sys.stdout.write(demo_banner(await seed_demo(conn), settings))
            sys.stdout.flush()
        return 0

    asyncio.run(_with_connection(url, prepare))
    _install_uvloop()
    _raise_open_files_limit()
    app = create_app(settings=settings)
    app.on_startup.append(_freeze_heap)  # last: after the pools and caches are made
    serve(
        app, host=settings.host, port=settings.port, keepalive_timeout=settings.keepalive_timeout_s
    )
    return 0


def _raise_open_files_limit() -> None:
    """Every connection is a file descriptor: let the service hold as many as the
    system allows it (the soft limit is often 1024, the hard one far higher)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError) as e:
            logger.warning("could not raise the open files limit from %s: %s", soft, e)


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _admin_command(
    work: admin_commands.Command,
) -> Callable[[argparse.Namespace, str], int]:
    def cmd(args: argparse.Namespace, url: str) -> int:
        return asyncio.run(_with_connection(url, lambda conn: work(args, conn)))

    return cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="checkin-gateway",
        description="QR check-in gateway. Without DATABASE_URL it uses the embedded "
        "PostgreSQL kept in CHECKIN_DATA_DIR (default .data).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="apply the schema and run the service")
    serve.add_argument("--demo", action="store_true", help="create the demo site and print tokens")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )

    token = sub.add_parser("token", help="create or revoke API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token and print it (only it)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--gate", type=int, help="gate id (required for, and only for, kiosk)")
    create.add_argument("--site", type=int, help="limit the token to one site")
    create.add_argument("--label", default="", help="who or what holds it, for the logs")
    create.set_defaults(func=cmd_token_create)
    revoke = token_sub.add_parser("revoke", help="revoke a token, given itself or its id")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("token", nargs="?", help="the token")
    which.add_argument("--id", type=int, help="the token's id")
    revoke.set_defaults(func=cmd_token_revoke)
    admin_commands.add_parsers(sub, _admin_command)
    account_commands.add_parsers(sub, _admin_command)
    purge_parser = sub.add_parser(
        "purge", help="purge personal data older than the retention period (keeps counts)"
    )
    purge_parser.add_argument(
        "--older-than-days", type=int, help="default: CHECKIN_RETENTION_DAYS (30)"
    )
    purge_parser.set_defaults(func=_admin_command(purge_command))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = Settings.from_env()
    except SettingsError as e:
        parser.error(str(e))
    configure_logging(args.settings.log_level)
    with database_url(args.settings) as url:
        code: int = args.func(args, url)
    return code


if __name__ == "__main__":
    sys.exit(main())
