"""The health desk's part of the retention purge (service.retention.purge): official results,
cases and lifted suspensions older than the cut-off go, like the rest of the health
data. A case stays while a suspension it caused is still in force, and a test while
its case stays."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# $1 the cut-off. In this order: a case's suspensions before it, a test's case first.
PURGE_SQL = (
    "DELETE FROM suspensions WHERE cleared_at < $1",
    """
DELETE FROM health_cases c WHERE c.recorded_at < $1
  AND NOT EXISTS (SELECT 1 FROM suspensions s WHERE s.case_id = c.id)
""",
    """
DELETE FROM official_tests t WHERE t.recorded_at < $1
  AND NOT EXISTS (SELECT 1 FROM health_cases c WHERE c.test_id = t.id)
""",
)


async def purge_health(conn: asyncpg.Connection, older_than: datetime) -> int:
    """Delete the health desk's records older than the cut-off; how many went."""
    deleted = 0
    for sql in PURGE_SQL:
        deleted += int((await conn.execute(sql, older_than)).split()[-1])
    return deleted
