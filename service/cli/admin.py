"""The `staff import`, `keys ...` and `audit verify` admin commands (wired into the CLI by
__main__)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from tqdm import tqdm

from service.audit.api import EventFilters, copy_csv, copy_jsonl
from service.audit.documents import record_export
from service.audit.trace import PersonNotFound, TraceError, TraceQuery, parse_time, to_csv, trace
from service.events.log import verify_chain
from service.passes.keys import KeyCommandError, key_store_for, list_keys, retire, rotate
from service.people.staff_import import import_staff_csv

Command = Callable[[argparse.Namespace, asyncpg.Connection], Awaitable[int]]


async def read_input(path: Path) -> bytes | None:
    """The file's bytes, or None after saying on stderr why it cannot be read."""
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as e:
        sys.stderr.write(f"error: cannot read {path}: {e.strerror}\n")
        return None


async def staff_import(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    path = Path(args.file)
    if (raw := await read_input(path)) is None:
        return 2
    result = await import_staff_csv(conn, raw, progress=True)
    if not result.ok:
        for error in result.errors:
            sys.stderr.write(f"{path}: {error}\n")
        sys.stderr.write(f"nothing imported: {len(result.errors)} error(s)\n")
        return 1
    sys.stdout.write(
        f"imported {result.created + result.updated} staff "
        f"({result.created} new, {result.updated} updated)\n"
    )
    return 0


async def keys_rotate(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    new, old = await rotate(conn, key_store_for(args.settings.data_dir))
    sys.stdout.write(f"active: {new}" + (f"; retiring: {old}" if old else "") + "\n")
    return 0


async def keys_retire(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    store = key_store_for(args.settings.data_dir)
    try:
        live = await retire(conn, store, args.kid, now=datetime.now(UTC), force=args.force)
    except KeyCommandError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    note = f" ({live} unexpired pass(es) no longer verify)" if live else ""
    sys.stdout.write(f"retired: {args.kid}{note}\n")
    return 0


async def keys_list(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    store = key_store_for(args.settings.data_dir)
    rows = await list_keys(conn, now=datetime.now(UTC))
    sys.stdout.write("kid       status    created_at                 live_passes  private_key\n")
    for r in rows:
        here = "here" if store.path_for(r["kid"]).exists() else "-"
        sys.stdout.write(
            f"{r['kid']}  {r['status']:<8}  {r['created_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"
            f"       {r['live_passes']:>11}  {here}\n"
        )
    return 0


async def audit_verify(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    """Check the hash chain of one site (or of every chain); one JSON line per chain."""
    if args.site is not None:
        chains = [args.site]
    else:
        chains = [
            r["chain_id"] for r in await conn.fetch("SELECT chain_id FROM event_chains ORDER BY 1")
        ]
    broken = False
    for chain_id in chains:
        report = await verify_chain(conn, chain_id, from_seq=args.from_seq, to_seq=args.to_seq)
        broken = broken or report.broken is not None
        sys.stdout.write(json.dumps(report.as_json()) + "\n")
    return 1 if broken else 0


async def trace_contacts(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    """Who was inside with a person: CSV (UTF-8 with BOM) to --out or stdout; the
    trace is recorded in the event log with actor "cli"."""
    now = datetime.now(UTC)
    try:
        query = TraceQuery(
            person_id=args.person,
            start=parse_time(args.start, "--from"),
            end=parse_time(args.end, "--to"),
            open_until=parse_time(args.open_until, "--open-until") if args.open_until else now,
            min_overlap_minutes=args.min_overlap,
            same_gate=args.same_gate,
            site_id=args.site,
        )
        result = await trace(conn, query, actor="cli", now=now, output="csv")
    except TraceError as e:
        sys.stderr.write(f"error: {e.message}\n")
        return 2
    except PersonNotFound:
        sys.stderr.write(f"error: no person with id {args.person}\n")
        return 1
    body = to_csv(result)
    if args.out:
        await asyncio.to_thread(Path(args.out).write_bytes, body)
        sys.stderr.write(f"{len(result.contacts)} contact(s) written to {args.out}\n")
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    return 0


async def export_events(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    """The event log, filtered, to a CSV or JSON Lines file, with a progress bar."""
    try:
        filters = EventFilters(
            site_id=args.site,
            gate_id=args.gate,
            person_id=args.person,
            decision=args.decision,
            reason=args.reason,
            kind=args.kind,
            start=parse_time(args.start, "--from") if args.start else None,
            end=parse_time(args.end, "--to") if args.end else None,
            include_exports=args.include_exports or args.include_hashes,
        )
    except TraceError as e:
        sys.stderr.write(f"error: {e.message}\n")
        return 2
    detail = {
        "what": "events",
        "filters": filters.as_json(),
        "format": args.format,
        "include_hashes": args.include_hashes,
    }
    await record_export(conn, "cli", site_id=filters.site_id, detail=detail)
    path = Path(args.out)
    out = await asyncio.to_thread(path.open, "wb")
    with out, tqdm(unit=" rows", file=sys.stderr, desc="export") as bar:

        async def write(chunk: bytes) -> None:
            bar.update(chunk.count(b"\n"))  # rows, near enough (a cell may hold a newline)
            await asyncio.to_thread(out.write, chunk)

        if args.format == "csv":
            await copy_csv(conn, write, filters, args.include_hashes)
        else:
            await copy_jsonl(conn, write, filters, args.include_hashes)
        n = bar.n - (args.format == "csv")  # less the header line
    sys.stderr.write(f"{n} event(s) written to {path}\n")
    return 0


def add_parsers(sub: argparse._SubParsersAction, wrap: Callable[[Command], object]) -> None:  # type: ignore[type-arg]
    """Add `staff import` and `keys rotate|retire|list`; ``wrap`` turns a command into
    the CLI's ``func`` (it opens the database connection)."""
    staff = sub.add_parser("staff", help="manage staff")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    imp = staff_sub.add_parser(
        "import",
        help="import staff from CSV (full_name, phone, national_id, organisation, position, "
        "risk_level): all rows or none",
    )
    imp.add_argument("file", help="the CSV file (UTF-8)")
    imp.set_defaults(func=wrap(staff_import))

    keys = sub.add_parser("keys", help="pass-signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser(
        "rotate", help="make a new active key; the previous one keeps verifying (retiring)"
    ).set_defaults(func=wrap(keys_rotate))
    retire_cmd = keys_sub.add_parser("retire", help="stop publishing a retiring key")
    retire_cmd.add_argument("kid")
    retire_cmd.add_argument(
        "--force", action="store_true", help="even if unexpired passes signed by it exist"
    )
    retire_cmd.set_defaults(func=wrap(keys_retire))
    keys_sub.add_parser("list", help="list keys").set_defaults(func=wrap(keys_list))

    audit = sub.add_parser("audit", help="the event log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check the hash chains; report the first broken link (exit 1 if any)"
    )
    verify.add_argument("--site", type=int, help="only this site's chain (0: events of no site)")
    verify.add_argument("--from-seq", type=int, default=1, help="first seq to check")
    verify.add_argument("--to-seq", type=int, help="last seq to check (default: the end)")
    verify.set_defaults(func=wrap(audit_verify))

    export = sub.add_parser("export", help="export the event log to a CSV or JSON Lines file")
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--site", type=int)
    export.add_argument("--gate", type=int)
    export.add_argument("--person", type=int)
    export.add_argument("--decision", choices=("allow", "deny"))
    export.add_argument("--reason")
    export.add_argument("--kind")
    export.add_argument("--from", dest="start", help="ISO time with offset (inclusive)")
    export.add_argument("--to", dest="end", help="ISO time with offset (exclusive)")
    export.add_argument("--include-hashes", action="store_true", help="add the chain hashes")
    export.add_argument(
        "--include-exports", action="store_true", help="keep the exports' own records"
    )
    export.set_defaults(func=wrap(export_events))

    trace_cmd = sub.add_parser(
        "trace", help="contact tracing: who was inside a site with a person (CSV)"
    )
    trace_cmd.add_argument("--person", type=int, required=True, help="the person's id")
    trace_cmd.add_argument("--from", dest="start", required=True, help="ISO time, with offset")
    trace_cmd.add_argument("--to", dest="end", required=True, help="ISO time, with offset")
    trace_cmd.add_argument(
        "--min-overlap", type=float, default=0.0, help="minimum total overlap, in minutes"
    )
    trace_cmd.add_argument(
        "--same-gate", action="store_true", help="only stays entered through the same gate"
    )
    trace_cmd.add_argument(
        "--open-until", help="where stays with no exit end (ISO time; default: now)"
    )
    trace_cmd.add_argument(
        "--site", type=int, help="only this site's stays, as a token limited to it sees them"
    )
    trace_cmd.add_argument("--out", help="write the CSV here (default: stdout)")
    trace_cmd.set_defaults(func=wrap(trace_contacts))
