from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from service.platform.migrations import current_version, expected_version, migrate

CATALOGUE_SQL = """
SELECT 'column' AS kind, table_name || '.' || column_name AS name,
       concat_ws(' ', data_type, is_nullable, column_default, is_identity) AS definition
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || '.' || conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'function', proname, pg_get_functiondef(oid) FROM pg_proc
WHERE pronamespace = 'public'::regnamespace
ORDER BY 1, 2
"""


async def catalogue(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in await conn.fetch(CATALOGUE_SQL)]


async def test_migrate_twice_is_a_no_op(empty_db_url: str) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        first = await migrate(conn)
        assert first == [f"schema.sql (version {expected_version()})"]
        before = await catalogue(conn)
        assert await migrate(conn) == []
        assert await catalogue(conn) == before
        assert await current_version(conn) == expected_version()
    finally:
        await conn.close()


async def test_numbered_migrations_end_where_schema_sql_does(
    empty_db_url: str, db_url: str
) -> None:
    chained = await asyncpg.connect(empty_db_url)
    fresh = await asyncpg.connect(db_url)  # built from schema.sql
    try:
        await migrate(chained, upto=expected_version())
        assert await current_version(chained) == expected_version()
        assert await catalogue(chained) == await catalogue(fresh)
    finally:
        await chained.close()
        await fresh.close()


@pytest.mark.parametrize("start", range(1, expected_version() + 1))
async def test_upgrade_from_an_earlier_version_keeps_data(empty_db_url: str, start: int) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        await migrate(conn, upto=start)
        site_id = await conn.fetchval(
            "INSERT INTO sites (code, name) VALUES ('old', 'Trụ sở cũ') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO gates (site_id, name, direction) VALUES ($1, 'Cổng', 'entrance')", site_id
        )
        await migrate(conn)
        assert await current_version(conn) == expected_version()
        row: Any = await conn.fetchrow("SELECT code, name FROM sites WHERE id = $1", site_id)
        assert tuple(row) == ("old", "Trụ sở cũ")
        assert await conn.fetchval("SELECT count(*) FROM gates") == 1
        # Sites made before the event log existed have their chain too.
        assert (
            await conn.fetchval("SELECT count(*) FROM event_chains WHERE chain_id = $1", site_id)
            == 1
        )
    finally:
        await conn.close()


async def test_refuses_a_database_newer_than_the_code(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')",
            expected_version() + 1,
        )
        with pytest.raises(RuntimeError, match="newer than this code"):
            await migrate(conn)
    finally:
        await conn.close()
