"""Bringing a database's schema up to date.

A fresh database gets sql/schema.sql whole; one made by an earlier version gets the
numbered files in sql/migrations/ that it has not run yet. Both run under an
advisory lock, so two instances starting at once do not race.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

logger = logging.getLogger(__name__)

# Read as package data, so an installed wheel migrates a fresh database too.
SQL_DIR = resources.files("service.platform") / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
SCHEMA_FILE = SQL_DIR / "schema.sql"
_LOCK_KEY = 0x636B676D  # "ckgm": any constant shared by all instances
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Traversable


def available_migrations() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.iterdir(), key=lambda p: p.name):
        match = _NAME.match(path.name)
        if not path.name.endswith(".sql"):
            continue
        if not match:
            raise RuntimeError(f"migration file name must look like 0001_name.sql: {path.name}")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


def expected_version() -> int:
    return len(available_migrations())


async def current_version(conn: asyncpg.Connection) -> int | None:
    """The newest migration this database has run, or None if it has no schema yet."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return None
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def migrate(conn: asyncpg.Connection, *, upto: int | None = None) -> list[str]:
    """Apply what is missing; return what was done. Safe to run any number of times.

    `upto` stops at an older version (tests build old databases with it); it always
    goes through the numbered files, never schema.sql.
    """
    migrations = available_migrations()
    done: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        version = await current_version(conn)
        if version is None and upto is None:
            await conn.execute(SCHEMA_FILE.read_text(encoding="utf-8"))
            await conn.executemany(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                [(m.version, m.name) for m in migrations],
            )
            done.append(f"schema.sql (version {len(migrations)})")
        else:
            version = version or 0
            if version > len(migrations):
                raise RuntimeError(
                    f"database is at version {version}, newer than this code ({len(migrations)})"
                )
            for m in migrations[version : upto if upto is not None else None]:
                await conn.execute(m.path.read_text(encoding="utf-8"))
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    m.version,
                    m.name,
                )
                done.append(m.path.name)
    for step in done:
        logger.info("applied %s", step)
    return done
