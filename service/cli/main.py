"""`checkin-gateway`: the service and its admin commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from service.app import create_app
from service.cli import accounts, admin, health, tokens
from service.cli.demo import CREDENTIALS_FILE, DemoSite, seed_demo
from service.platform.db import init_connection
from service.platform.embedded import start_embedded
from service.platform.logs import configure_logging
from service.platform.migrations import migrate
from service.platform.server import serve
from service.platform.settings import Settings, SettingsError
from service.retention.purge import purge

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


async def purge_command(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    days = args.older_than_days or args.settings.retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    report = await purge(conn, older_than=cutoff, actor="cli:purge")
    if report is None:
        sys.stderr.write("another purge is running; try again later\n")
        return 1
    sys.stdout.write(json.dumps(report.as_json()) + "\n")
    return 0


def _cadence(days: int | None) -> str:
    if days is None:
        return "no test needed"
    if days == 0:
        return "a negative test taken today"
    if days == 1:
        return "a negative test taken today or yesterday"
    return f"a negative test taken today or in the {days} days before"


def demo_banner(demo: DemoSite, settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    ws_base = f"ws://{settings.host}:{settings.port}"
    scanner = f".venv/bin/checkin-scanner --server {base} --source 0"
    t = demo.tokens
    notes = "".join(f"Note: {n}\n" for n in demo.notes)
    staff = "".join(
        f"    {s.full_name:<14} {s.phone}  {s.risk_level:<10} {_cadence(days)}\n"
        for s, days in demo.staff
    )

    def login(username: str) -> str:
        state = demo.login_states[username]
        return demo.logins[username] if state == "ok" else f"(not shown: {state} since)"

    return f"""
================ checkin-gateway demo ================
{notes}Service:      {base}        (ready: {base}/readyz)
Declare:      {base}/declare?site={demo.site_id}   (khai báo y tế; open it on a phone)
  A visitor chooses "Khách đến làm việc / Visitor" and fills in the visitor part.
  Staff choose "Cán bộ, nhân viên / Staff", leave the visitor part empty and give the
  phone the staff list has (name as they like); the demo's staff and their test rule:
{staff}Trust list:   {base}/api/v1/keys
Demo site id: {demo.site_id}; gates: entrance {demo.entrance_gate_id}, exit {demo.exit_gate_id}

Guard console: {base}/console
  guard  / {login("guard")}   (the demo site's guard)
  y.te   / {login("y.te")}   (the demo site's health officer: review, tests, cases)
  admin  / {login("admin")}   (every site; can revoke passes and deny entry)

Tokens (the same at every start; kept in {demo.credentials_file}, mode 0600;
new ones, the old revoked: .venv/bin/checkin-gateway serve --demo --reset-demo):
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
            demo = await seed_demo(
                conn, settings.data_dir / CREDENTIALS_FILE, reset=args.reset_demo
            )
            sys.stdout.write(demo_banner(demo, settings))
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
    work: admin.Command,
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
    serve.add_argument(
        "--demo",
        action="store_true",
        help="create the demo site if missing; print its tokens and logins (kept from one "
        "start to the next in CHECKIN_DATA_DIR/" + CREDENTIALS_FILE + ")",
    )
    serve.add_argument(
        "--reset-demo",
        action="store_true",
        help="with --demo: new demo tokens and console passwords, revoking the old ones",
    )
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )

    tokens.add_parsers(sub, _admin_command)
    admin.add_parsers(sub, _admin_command)
    accounts.add_parsers(sub, _admin_command)
    health.add_parsers(sub, _admin_command)
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
    if args.command == "serve" and args.reset_demo and not args.demo:
        parser.error("--reset-demo goes with --demo")
    # An admin command prints its output and, besides, only warnings and errors, unless
    # a log level is asked for; the service logs at CHECKIN_LOG_LEVEL (default INFO).
    level = args.settings.log_level
    if args.command != "serve" and "CHECKIN_LOG_LEVEL" not in os.environ:
        level = "WARNING"
    configure_logging(level)
    with database_url(args.settings) as url:
        code: int = args.func(args, url)
    return code
