"""The `tests import` command: a lab's official results from CSV (service.health.test_import)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg

from service.cli.admin import Command, read_input
from service.health.test_import import COLUMNS, import_tests_csv
from service.web.auth import site_exists


async def tests_import(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    path = Path(args.file)
    if (raw := await read_input(path)) is None:
        return 2
    if args.site is not None and not await site_exists(conn, args.site):
        sys.stderr.write(f"error: no site with id {args.site} / không có trụ sở {args.site}\n")
        return 2
    result = await import_tests_csv(conn, raw, site_id=args.site, progress=True)
    if not result.ok:
        for error in result.errors:
            sys.stderr.write(f"{path}: {error}\n")
        sys.stderr.write(
            f"nothing imported / không nhập dòng nào: {len(result.errors)} error(s) / lỗi\n"
        )
        return 1
    sys.stdout.write(
        f"recorded {result.recorded} official result(s): {result.positives} positive, "
        f"{result.cases} case(s) opened, {result.cleared} suspension(s) cleared\n"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction, wrap: Callable[[Command], object]) -> None:  # type: ignore[type-arg]
    """Add `tests import`."""
    tests = sub.add_parser("tests", help="official test results")
    tests_sub = tests.add_subparsers(dest="tests_command", required=True)
    imp = tests_sub.add_parser(
        "import",
        help=f"import a lab's results from CSV ({', '.join(COLUMNS)}; person by any of the "
        "first three): all rows or none; a positive opens a case, a negative may clear",
    )
    imp.add_argument("file", help="the CSV file (UTF-8)")
    imp.add_argument(
        "--site",
        type=int,
        help="the site that records them: each person must be known there, and a positive "
        "opens its case there (default: at every site where the person is known)",
    )
    imp.set_defaults(func=wrap(tests_import))
