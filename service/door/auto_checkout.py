"""Automatic check-out: stays nobody scanned out of are closed by the site's rules.

A closure is an `auto_exit` event (carrying the rule that fired) and an estimated end
on the stay (exit_kind 'auto', with the person's last evidence kept for the trace). It
happens at the time the rule fired, not when the sweep ran, so a sweep after a restart
catches up exactly. The sweep runs in the service (`auto_checkout_context`), on one
instance at a time (an advisory lock), in batches done in SQL (auto_checkout_batch in
schema.sql: the closure times, the events' records, digests and hash links, one UPDATE
and one INSERT); each holds its site's chain, which the door's batches also take, for
its writes only.

The door closes a stale stay itself when its person comes back (`stale_closure`), so the
next morning's entry after a forgotten exit is never refused as "already inside".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from checkin_core.aio import cancel_and_wait, raise_if_cancelled
from checkin_core.reasons import short_name
from service.door.overstay import raise_overstays
from service.events.fanout import FANOUT_KEY, Fanout
from service.events.log import NewEvent
from service.platform.clock import CLOCK_KEY, Clock
from service.platform.db import DB_KEY, Database
from service.platform.errors import UNAVAILABLE_ERRORS
from service.platform.settings import SETTINGS_KEY
from service.sites.door_rules import AutoCheckout, CheckinRules

logger = logging.getLogger(__name__)

ACTOR = "service:auto_checkout"
# Stays closed per call of auto_checkout_batch; the site's chain is held for its writes
# only. Larger batches do not sweep faster (the cost is per stay) but hold the door
# longer (docs/benchmarks.md).
BATCH = 200
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
            # canonical_time() in schema.sql writes it so too (the sweep's events)
            "entered_at": entered_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "estimated": True,
        },
    )


# --- the sweep (set-based, in batches) -------------------------------------------------

SITES_SQL = "SELECT id, timezone, checkin_rules::text AS rules FROM sites ORDER BY id"
OLDEST_SQL = "SELECT min(entered_at) FROM presence WHERE site_id = $1 AND exited_at IS NULL"
# The open stays the rules have ended, in entry order, read before the chain is locked.
# Two ways in: by entry time (the partial index presence_open_entered_idx), from where
# the last batch stopped ($3: the index keeps the stays just closed until a vacuum, and
# stepping over them each batch grew with the sweep); and visitors past the departure
# they declared.
BY_ENTRY_SQL = """
SELECT p.id, p.entered_at FROM presence p
WHERE p.site_id = $1 AND p.exited_at IS NULL AND p.entered_at <= $2 AND p.entered_at >= $3
ORDER BY p.entered_at, p.id LIMIT $4
"""
BY_DEPARTURE_SQL = """
SELECT p.id, p.entered_at FROM presence p
JOIN people pe ON pe.id = p.person_id
JOIN declarations d ON d.person_id = p.person_id AND d.site_id = p.site_id
                   AND d.superseded_at IS NULL
WHERE p.site_id = $1 AND p.exited_at IS NULL AND pe.kind = 'visitor'
  AND d.answers ? 'expected_departure'
  AND (d.answers->>'expected_departure')::timestamptz <= $2
  AND (d.answers->>'expected_departure')::timestamptz > p.entered_at
  AND p.entered_at >= $3
ORDER BY p.entered_at, p.id LIMIT $4
"""
# Closes those still open, each at its earliest rule with its chained auto_exit event
# (the same rules as closure(), the same record as auto_exit_event(): schema.sql).
BATCH_SQL = "SELECT closed, last_seq, rules FROM auto_checkout_batch($1, $2, $3, $4, $5, $6, $7)"


@dataclass
class SweepReport:
    closed: int = 0
    batches: int = 0
    by_rule: dict[str, int] | None = None
    overstays: int = 0

    def count(self, rule: str, n: int = 1) -> None:
        self.by_rule = self.by_rule or {}
        self.by_rule[rule] = self.by_rule.get(rule, 0) + n


@dataclass(frozen=True)
class SiteSweep:
    """One site's rules as auto_checkout_batch takes them."""

    site_id: int
    rules: AutoCheckout
    resets: list[datetime]  # the `at` times from the oldest open stay's first up to now
    now: datetime

    def args(self, ids: list[int]) -> tuple[Any, ...]:
        r = self.rules
        return (
            self.site_id,
            ids,
            self.now,
            self.resets,
            r.at,
            r.after_minutes,
            r.expected_departure,
        )


def resets_between(
    oldest: datetime | None, rules: AutoCheckout, zone: ZoneInfo, now: datetime
) -> list[datetime]:
    """Every `at` time that can end a stay entered at or after `oldest`, up to `now`."""
    if rules.at is None or oldest is None:
        return []
    found = []
    at = first_after(oldest, rules.reset_time(), zone)
    while at <= now:
        found.append(at)
        at = first_after(at, rules.reset_time(), zone)
    return found


async def sweep_site(
    conn: asyncpg.Connection,
    site_id: int,
    zone: ZoneInfo,
    rules: AutoCheckout,
    now: datetime,
    report: SweepReport,
    fanout: Fanout | None = None,
    batch: int = BATCH,
) -> None:
    cutoff = sweep_cutoff(rules, zone, now)
    if cutoff is None and not rules.expected_departure:
        return
    oldest = await conn.fetchval(OLDEST_SQL, site_id) if rules.at is not None else None
    site = SiteSweep(site_id, rules, resets_between(oldest, rules, zone, now), now)
    if cutoff is not None:
        await _sweep_by(conn, BY_ENTRY_SQL, cutoff, site, report, fanout, batch)
    if rules.expected_departure:
        await _sweep_by(conn, BY_DEPARTURE_SQL, now, site, report, fanout, batch)


async def _sweep_by(
    conn: asyncpg.Connection,
    sql: str,
    bound: datetime,
    site: SiteSweep,
    report: SweepReport,
    fanout: Fanout | None,
    batch: int,
) -> None:
    since = EPOCH
    while True:
        rows = await conn.fetch(sql, site.site_id, bound, since, batch)
        if not rows:
            return
        since = rows[-1]["entered_at"]  # in entry order: the next batch starts there
        done = await conn.fetchrow(BATCH_SQL, *site.args([r["id"] for r in rows]))
        report.batches += 1
        report.closed += done["closed"]
        for rule, n in done["rules"].items():
            report.count(rule, n)
        if done["last_seq"] is not None and fanout is not None:
            fanout.poke({site.site_id: done["last_seq"]})
        if len(rows) < batch:
            return
        await asyncio.sleep(0)  # let the door's work in between batches


async def sweep(
    conn: asyncpg.Connection,
    now: datetime,
    fanout: Fanout | None = None,
    batch: int = BATCH,
    *,
    overstays: bool = False,
) -> SweepReport:
    """Close every stay the rules have ended by `now`, at every site, then (`overstays`)
    raise the overstays of those still inside. The caller holds `sweep_lock`."""
    report = SweepReport()
    for site in await conn.fetch(SITES_SQL):
        rules = CheckinRules.model_validate_json(site["rules"]).auto_checkout
        zone = ZoneInfo(site["timezone"])
        await sweep_site(conn, site["id"], zone, rules, now, report, fanout, batch)
    if overstays:
        report.overstays = await raise_overstays(conn, now, fanout)
    if report.closed:
        logger.info("automatic check-outs", extra={"closed": report.closed, "by": report.by_rule})
    return report


@asynccontextmanager
async def sweep_lock(conn: asyncpg.Connection) -> AsyncIterator[bool]:
    """Whether this instance may sweep now: an advisory lock held in an open transaction
    on `conn` while another connection writes the batches, each committed on its own. A
    transaction's lock holds through PgBouncer in transaction mode, where a session's
    lock and its unlock could reach two different server connections, and it goes when
    the instance dies."""
    async with conn.transaction():
        yield bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_KEY))


async def sweep_now(db: Database, clock: Clock, fanout: Fanout | None) -> SweepReport | None:
    """One sweep, or None if another instance is sweeping."""
    async with db.connection() as holder, sweep_lock(holder) as mine:
        if not mine:
            return None
        async with db.connection() as conn:
            return await sweep(conn, clock(), fanout, overstays=True)


async def auto_checkout_context(app: web.Application) -> AsyncIterator[None]:
    """Sweep at start (catching up after a restart), then every interval."""
    interval = app[SETTINGS_KEY].auto_checkout_interval_s

    async def loop() -> None:
        while True:
            try:
                await sweep_now(app[DB_KEY], app[CLOCK_KEY], app[FANOUT_KEY])
            except UNAVAILABLE_ERRORS as e:  # the database is out of reach: not a bug
                raise_if_cancelled()
                logger.warning("automatic check-out sweep could not reach the database: %s", e)
            except Exception:  # the next round tries again
                raise_if_cancelled()
                logger.exception("automatic check-out sweep failed")
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    yield
    await cancel_and_wait([task])
