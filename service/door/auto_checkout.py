"""Automatic check-out: stays nobody scanned out of are closed by the site's rules.

A closure is an `auto_exit` event (carrying the rule that fired) and an estimated end
on the stay (exit_kind 'auto', with the person's last evidence kept for the trace). It
happens at the time the rule fired, not when the sweep ran, so a sweep after a restart
catches up exactly. The sweep runs in the service (`auto_checkout_context`), on one
instance at a time (an advisory lock), in small batches: each batch holds its site's
chain, which the door's batches also take, for a few milliseconds only.

The door closes a stale stay itself when its person comes back (`stale_closure`), so the
next morning's entry after a forgotten exit is never refused as "already inside".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from checkin_core.aio import cancel_and_wait
from checkin_core.reasons import short_name
from service.events.fanout import FANOUT_KEY, Fanout
from service.events.log import NewEvent, append_events, lock_chains
from service.platform.clock import CLOCK_KEY, Clock
from service.platform.db import DB_KEY, Database
from service.platform.errors import UNAVAILABLE_ERRORS
from service.platform.settings import SETTINGS_KEY
from service.sites.door_rules import AutoCheckout, CheckinRules

logger = logging.getLogger(__name__)

ACTOR = "service:auto_checkout"
BATCH = 200  # stays closed per transaction: the site's chain is held that long (~30 ms)
_LOCK_KEY = 0x63676163  # one sweep at a time across instances
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # before any stay


# --- the rules (pure) -----------------------------------------------------------------


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, zone)


def first_after(moment: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first time the site's clocks show `at` strictly after `moment`."""
    day = moment.astimezone(zone).date()
    candidate = _local(day, at, zone)
    while candidate <= moment:
        day += timedelta(days=1)
        candidate = _local(day, at, zone)
    return candidate


def last_until(moment: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The last time the site's clocks showed `at`, at or before `moment`."""
    day = moment.astimezone(zone).date()
    candidate = _local(day, at, zone)
    while candidate > moment:
        day -= timedelta(days=1)
        candidate = _local(day, at, zone)
    return candidate


@dataclass(frozen=True)
class Closure:
    rule: str  # at | after_minutes | expected_departure | daily_reset
    at: datetime
    value: str | int | None  # the rule's setting, as the event records it

    def detail(self) -> dict[str, Any]:
        return {"rule": self.rule, "rule_value": self.value}


def closure(
    entered_at: datetime,
    rules: AutoCheckout,
    zone: ZoneInfo,
    expected_departure: datetime | None = None,
) -> Closure | None:
    """When the site's rules end a stay that entered at `entered_at`: the earliest rule
    that applies, or None. An expected departure before the entry is ignored (a visitor
    who came late is not sent home at the door)."""
    found: list[Closure] = []
    if rules.at is not None:
        found.append(Closure("at", first_after(entered_at, rules.reset_time(), zone), rules.at))
    if rules.after_minutes is not None:
        end = entered_at + timedelta(minutes=rules.after_minutes)
        found.append(Closure("after_minutes", end, rules.after_minutes))
    if rules.expected_departure and expected_departure and expected_departure > entered_at:
        found.append(Closure("expected_departure", expected_departure, None))
    return min(found, key=lambda c: c.at) if found else None


def stale_closure(
    entered_at: datetime, rules: CheckinRules, zone: ZoneInfo, now: datetime
) -> Closure | None:
    """How the door ends a stay still open at `now` that the rules have ended (the
    sweep has not come by yet) or that began before the day's anti-passback reset."""
    ended = closure(entered_at, rules.auto_checkout, zone)
    if ended is not None and ended.at <= now:
        return ended
    reset = last_until(now, rules.auto_checkout.reset_time(), zone)
    if entered_at < reset:
        return Closure("daily_reset", reset, rules.auto_checkout.reset_time().strftime("%H:%M"))
    return None


def sweep_cutoff(rules: AutoCheckout, zone: ZoneInfo, now: datetime) -> datetime | None:
    """Every stay entered at or before this has been ended by `at` or `after_minutes`."""
    cuts = []
    if rules.at is not None:
        cuts.append(last_until(now, rules.reset_time(), zone) - timedelta(microseconds=1))
    if rules.after_minutes is not None:
        cuts.append(now - timedelta(minutes=rules.after_minutes))
    return max(cuts) if cuts else None


def auto_exit_event(
    site_id: int, person_id: int, full_name: str | None, entered_at: datetime, ended: Closure
) -> NewEvent:
    return NewEvent(
        kind="auto_exit",
        actor=ACTOR,
        occurred_at=ended.at,
        site_id=site_id,
        person_id=person_id,
        direction="out",
        detail=ended.detail()
        | {
            "name": short_name(full_name) if full_name else None,
            "entered_at": entered_at.isoformat(),
            "estimated": True,
        },
    )


# --- the sweep (set-based, in small batches) -------------------------------------------

SITES_SQL = "SELECT id, timezone, checkin_rules::text AS rules FROM sites ORDER BY id"
# The open stays the rules have ended, with what closure() needs. Two ways in: by entry
# time (the partial index presence_open_entered_idx), from where the last batch stopped
# ($3: the index keeps the stays just closed until a vacuum, and stepping over them each
# batch grew with the sweep); and visitors past the departure they declared.
_CANDIDATE_COLUMNS = """
SELECT p.id, p.person_id, p.entered_at, pe.full_name,
       CASE WHEN pe.kind = 'visitor' THEN
           (SELECT (d.answers->>'expected_departure')::timestamptz FROM declarations d
            WHERE d.person_id = p.person_id AND d.site_id = p.site_id
              AND d.superseded_at IS NULL) END AS expected_departure
FROM presence p JOIN people pe ON pe.id = p.person_id
"""
BY_ENTRY_SQL = (
    _CANDIDATE_COLUMNS
    + """
WHERE p.site_id = $1 AND p.exited_at IS NULL AND p.entered_at <= $2 AND p.entered_at >= $3
ORDER BY p.entered_at, p.id LIMIT $4
"""
)
BY_DEPARTURE_SQL = (
    _CANDIDATE_COLUMNS
    + """
JOIN declarations d ON d.person_id = p.person_id AND d.site_id = p.site_id
                   AND d.superseded_at IS NULL
WHERE p.site_id = $1 AND p.exited_at IS NULL AND pe.kind = 'visitor'
  AND d.answers ? 'expected_departure'
  AND (d.answers->>'expected_departure')::timestamptz <= $2
  AND (d.answers->>'expected_departure')::timestamptz > p.entered_at
  AND p.entered_at >= $3
ORDER BY p.entered_at, p.id LIMIT $4
"""
)
STILL_OPEN_SQL = "SELECT id FROM presence WHERE id = ANY($1::bigint[]) AND exited_at IS NULL"
CLOSE_SQL = """
UPDATE presence AS p
SET exited_at = u.exited_at, exit_gate_id = NULL, exit_event = u.event_row, exit_kind = 'auto',
    last_evidence_at = stay_last_evidence(p.person_id, p.site_id, p.entered_at, u.exited_at)
FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[]) AS u (id, exited_at, event_row)
WHERE p.id = u.id AND p.exited_at IS NULL
"""


@dataclass
class SweepReport:
    closed: int = 0
    batches: int = 0
    by_rule: dict[str, int] | None = None

    def count(self, rule: str) -> None:
        self.by_rule = self.by_rule or {}
        self.by_rule[rule] = self.by_rule.get(rule, 0) + 1


async def _close_batch(
    conn: asyncpg.Connection, site_id: int, rows: Sequence[tuple[int, NewEvent]]
) -> int | None:
    """Close these stays with their events, in one short transaction; the chain's new
    last seq, or None if none was still open."""
    async with conn.transaction():
        heads = await lock_chains(conn, [site_id])
        still = {r["id"] for r in await conn.fetch(STILL_OPEN_SQL, [s for s, _ in rows])}
        kept = [(s, e) for s, e in rows if s in still]  # a scan may have closed one meanwhile
        if not kept:
            return None
        appended = await append_events(conn, [e for _, e in kept], heads)
        await conn.execute(
            CLOSE_SQL,
            [s for s, _ in kept],
            [e.occurred_at for _, e in kept],
            [a.id for a in appended],
        )
    return heads[site_id][0]


async def sweep_site(
    conn: asyncpg.Connection,
    site_id: int,
    zone: ZoneInfo,
    rules: AutoCheckout,
    now: datetime,
    report: SweepReport,
    fanout: Fanout | None = None,
) -> None:
    cutoff = sweep_cutoff(rules, zone, now)
    if cutoff is not None:
        await _sweep_by(conn, BY_ENTRY_SQL, cutoff, site_id, zone, rules, now, report, fanout)
    if rules.expected_departure:
        await _sweep_by(conn, BY_DEPARTURE_SQL, now, site_id, zone, rules, now, report, fanout)


async def _sweep_by(
    conn: asyncpg.Connection,
    sql: str,
    bound: datetime,
    site_id: int,
    zone: ZoneInfo,
    rules: AutoCheckout,
    now: datetime,
    report: SweepReport,
    fanout: Fanout | None,
) -> None:
    since = EPOCH
    while True:
        rows = await conn.fetch(sql, site_id, bound, since, BATCH)
        planned = []
        for r in rows:
            ended = closure(r["entered_at"], rules, zone, r["expected_departure"])
            if ended is not None and ended.at <= now:
                event = auto_exit_event(
                    site_id, r["person_id"], r["full_name"], r["entered_at"], ended
                )
                planned.append((r["id"], event))
                report.count(ended.rule)
        if not planned:
            return
        since = rows[-1]["entered_at"]  # in entry order: the next batch starts there
        seq = await _close_batch(conn, site_id, planned)
        report.batches += 1
        report.closed += len(planned)
        if seq is not None and fanout is not None:
            fanout.poke({site_id: seq})
        if len(rows) < BATCH:
            return
        await asyncio.sleep(0)  # let the door's work in between batches


async def sweep(
    conn: asyncpg.Connection, now: datetime, fanout: Fanout | None = None
) -> SweepReport | None:
    """Close every stay the rules have ended by `now`, at every site; None if another
    instance is sweeping."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
        return None
    report = SweepReport()
    try:
        for site in await conn.fetch(SITES_SQL):
            rules = CheckinRules.model_validate_json(site["rules"]).auto_checkout
            zone = ZoneInfo(site["timezone"])
            await sweep_site(conn, site["id"], zone, rules, now, report, fanout)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    if report.closed:
        logger.info("automatic check-outs", extra={"closed": report.closed, "by": report.by_rule})
    return report


async def sweep_now(db: Database, clock: Clock, fanout: Fanout | None) -> SweepReport | None:
    async with db.connection() as conn:
        return await sweep(conn, clock(), fanout)


async def auto_checkout_context(app: web.Application) -> AsyncIterator[None]:
    """Sweep at start (catching up after a restart), then every interval."""
    interval = app[SETTINGS_KEY].auto_checkout_interval_s

    async def loop() -> None:
        while True:
            try:
                await sweep_now(app[DB_KEY], app[CLOCK_KEY], app[FANOUT_KEY])
            except UNAVAILABLE_ERRORS as e:  # the database is out of reach: not a bug
                logger.warning("automatic check-out sweep could not reach the database: %s", e)
            except Exception:  # the next round tries again
                logger.exception("automatic check-out sweep failed")
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    yield
    await cancel_and_wait([task])
