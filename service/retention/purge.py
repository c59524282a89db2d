"""The retention purge: personal data older than the retention period goes; the record
of what happened, its hash chain and the daily counts stay.

Health data should not be kept longer than needed (30 days by default). A purge, in
one transaction:
1. keeps the daily counts (entries, exits, denials by reason, peak inside) of every
   site-day before the cut-off, computed while the stays still exist;
2. blanks the personal fields of older events (person, pass, name, payload) and marks
   them purged; their digest and hashes are kept, so the chain still verifies;
3. deletes stays that ended, passes that expired and declarations that lapsed before
   the cut-off, the health desk's old records (service.retention.health_records), and visitors
   who have nothing left;
4. records itself as a `purge` event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from checkin_core.aio import cancel_and_wait, raise_if_cancelled
from service.events.log import NewEvent, append_event
from service.platform.db import DB_KEY
from service.platform.settings import Settings
from service.retention.health_records import purge_health
from service.webhooks.worker import purge_deliveries

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x63677067  # one purge at a time across instances

# Site-days (site time) that start before the cut-off and have no counts yet.
DAILY_COUNTS_SQL = """
WITH days AS (
    SELECT DISTINCT e.site_id, (e.occurred_at AT TIME ZONE s.timezone)::date AS day, s.timezone
    FROM events e JOIN sites s ON s.id = e.site_id
    WHERE e.occurred_at < $1 AND e.kind IN ('scan', 'override', 'id_check', 'manual_exit')
), todo AS (
    SELECT d.* FROM days d
    WHERE NOT EXISTS (SELECT 1 FROM daily_counts c WHERE c.site_id = d.site_id AND c.day = d.day)
), bounds AS (
    SELECT site_id, day, (day::timestamp AT TIME ZONE timezone) AS day_start,
           ((day + 1)::timestamp AT TIME ZONE timezone) AS day_end
    FROM todo
)
INSERT INTO daily_counts (site_id, day, entries, exits, denials, peak_inside)
SELECT b.site_id, b.day,
  (SELECT count(*) FROM events e WHERE e.site_id = b.site_id
     AND e.occurred_at >= b.day_start AND e.occurred_at < b.day_end
     AND e.decision = 'allow' AND e.direction = 'in'
     AND e.kind IN ('scan', 'override', 'id_check')),
  (SELECT count(*) FROM events e WHERE e.site_id = b.site_id
     AND e.occurred_at >= b.day_start AND e.occurred_at < b.day_end
     AND ((e.kind = 'scan' AND e.decision = 'allow' AND e.direction = 'out')
          OR e.kind = 'manual_exit')),
  (SELECT coalesce(jsonb_object_agg(reason, n), '{}'::jsonb) FROM (
     SELECT e.reason, count(*) AS n FROM events e WHERE e.site_id = b.site_id
       AND e.occurred_at >= b.day_start AND e.occurred_at < b.day_end
       AND e.kind = 'scan' AND e.decision = 'deny' GROUP BY e.reason) AS d),
  -- The most people inside at once: walk the day's entries (+1) and exits (-1) in
  -- time order, starting from those already inside when the day began.
  (SELECT greatest(
     coalesce(max(inside), 0),
     (SELECT count(*) FROM presence p WHERE p.site_id = b.site_id
        AND p.entered_at < b.day_start AND (p.exited_at IS NULL OR p.exited_at >= b.day_start)))
   FROM (SELECT sum(delta) OVER (ORDER BY at, delta) + (
            SELECT count(*) FROM presence p WHERE p.site_id = b.site_id
              AND p.entered_at < b.day_start
              AND (p.exited_at IS NULL OR p.exited_at >= b.day_start)) AS inside
         FROM (SELECT entered_at AS at, 1 AS delta FROM presence p
               WHERE p.site_id = b.site_id AND p.entered_at >= b.day_start
                 AND p.entered_at < b.day_end
               UNION ALL
               SELECT exited_at, -1 FROM presence p
               WHERE p.site_id = b.site_id AND p.exited_at >= b.day_start
                 AND p.exited_at < b.day_end) AS changes) AS running)
FROM bounds b
"""

BLANK_EVENTS_SQL = """
UPDATE events SET person_id = NULL, pass_id = NULL,
       detail = jsonb_strip_nulls(jsonb_build_object(
           'purged', true, 'warnings', detail->'warnings', 'offline', detail->'offline'))
WHERE occurred_at < $1 AND NOT (detail ? 'purged')
"""
DELETE_STAYS_SQL = "DELETE FROM presence WHERE exited_at < $1"
DELETE_PASSES_SQL = "DELETE FROM passes WHERE not_after < $1"
DELETE_DECLARATIONS_SQL = """
DELETE FROM declarations d
WHERE (d.valid_until < $1 OR d.superseded_at < $1)
  AND NOT EXISTS (SELECT 1 FROM passes p WHERE p.declaration_id = d.id)
"""
DELETE_VISITORS_SQL = """
DELETE FROM people p
WHERE p.kind = 'visitor'
  AND NOT EXISTS (SELECT 1 FROM declarations d WHERE d.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM passes x WHERE x.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM presence s WHERE s.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM deny_list l WHERE l.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM events e WHERE e.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM suspensions h WHERE h.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM health_cases h WHERE h.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM official_tests h WHERE h.person_id = p.id)
"""


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    days_counted: int
    events_blanked: int
    stays_deleted: int
    passes_deleted: int
    declarations_deleted: int
    visitors_deleted: int
    health_records_deleted: int = 0  # service.retention.health_records
    webhook_deliveries_deleted: int = 0  # service.webhooks

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"cutoff": self.cutoff.isoformat()}


def _count(status: str) -> int:
    return int(status.split()[-1])  # "UPDATE 12", "INSERT 0 3", "DELETE 4"


async def purge(
    conn: asyncpg.Connection, *, older_than: datetime, actor: str
) -> PurgeReport | None:
    """Purge what is older than `older_than`; None if another purge is running."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_KEY):
            return None
        report = PurgeReport(
            cutoff=older_than,
            days_counted=_count(await conn.execute(DAILY_COUNTS_SQL, older_than)),
            events_blanked=_count(await conn.execute(BLANK_EVENTS_SQL, older_than)),
            stays_deleted=_count(await conn.execute(DELETE_STAYS_SQL, older_than)),
            passes_deleted=_count(await conn.execute(DELETE_PASSES_SQL, older_than)),
            health_records_deleted=await purge_health(conn, older_than),
            webhook_deliveries_deleted=await purge_deliveries(conn, older_than),
            declarations_deleted=_count(await conn.execute(DELETE_DECLARATIONS_SQL, older_than)),
            visitors_deleted=_count(await conn.execute(DELETE_VISITORS_SQL)),
        )
        await append_event(
            conn,
            NewEvent(
                kind="purge", actor=actor, occurred_at=datetime.now(UTC), detail=report.as_json()
            ),
        )
    logger.info("retention purge", extra=report.as_json())
    return report


def retention_context(settings: Settings) -> Any:
    """Purge once an interval, in the background, while the app runs."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(settings.purge_interval_s)
                cutoff = datetime.now(UTC) - timedelta(days=settings.retention_days)
                try:
                    async with app[DB_KEY].connection() as conn:
                        await purge(conn, older_than=cutoff, actor="service:retention")
                except Exception:  # the next round tries again
                    raise_if_cancelled()
                    logger.exception("retention purge failed")

        task = asyncio.create_task(loop())
        yield
        await cancel_and_wait([task])

    return ctx
