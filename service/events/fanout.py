"""Live fan-out of the event log to consoles, across service instances.

Writers never NOTIFY per scan (a NOTIFY takes a server-wide lock through commit and
stops commits from grouping). Instead, after a batch commits, the writer pokes the
fan-out, which sends at most one NOTIFY per few milliseconds on its LISTEN connection,
carrying only "site -> newest seq". Every instance LISTENs; on a wake-up it reads the
new rows by (site, seq) once per site and hands them to its subscribers. A slow poll
catches anything a lost notification or a dropped LISTEN connection missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import asyncpg
from aiohttp import web

from checkin_core.aio import cancel_and_wait, raise_if_cancelled
from checkin_core.reasons import REASONS, message, short_name
from service.platform.db import DB_KEY, Database
from service.platform.errors import UNAVAILABLE_ERRORS
from service.platform.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "checkin_events"
NOTIFY_INTERVAL_S = 0.005
LISTENER_TIMEOUT_S = 5.0  # a statement on the LISTEN connection that takes longer: it is gone
LISTENER_NAME = "checkin-gateway fan-out"
POLL_INTERVAL_S = 2.0
PAGE = 500
SUBSCRIBER_BUFFER = 1000
ANY_NEWER = 2**62  # a head beyond any seq: "read whatever is new"

# The person's name for events that do not carry one (revocations, reviews, the deny
# list); a purged event has no person left to join.
EVENTS_AFTER_SQL = """
SELECT e.id, e.seq, e.kind, e.occurred_at, e.recorded_at, e.site_id, e.gate_id, e.person_id,
       e.pass_id, e.event_id, e.direction, e.decision, e.reason, e.actor, e.detail, p.full_name
FROM events e LEFT JOIN people p ON p.id = e.person_id
WHERE e.chain_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3
"""
NOTIFY_SQL = "SELECT pg_notify($1, $2)"
HEADS_SQL = "SELECT chain_id, last_seq FROM event_chains WHERE chain_id = ANY($1::bigint[])"


def event_json(row: asyncpg.Record) -> dict[str, Any]:
    detail = row["detail"]
    out: dict[str, Any] = {
        "type": "event",
        "id": row["id"],
        "site_id": row["site_id"],
        "seq": row["seq"],
        "kind": row["kind"],
        "occurred_at": row["occurred_at"].isoformat(),
        # A console tells a denial happening now from one replayed late by an offline
        # kiosk (no alert for those): when it was recorded, and whether the kiosk
        # judged it offline with a clock nobody trusts (its time is then ours).
        "recorded_at": row["recorded_at"].isoformat(),
        "offline": "offline" in detail,
        "clock_untrusted": bool(detail.get("clock_skew")),
        "gate_id": row["gate_id"],
        "person_id": row["person_id"],
        "event_id": str(row["event_id"]) if row["event_id"] else None,
        "direction": row["direction"],
        "decision": row["decision"],
        "reason": row["reason"],
        "name": detail.get("name") or short_name(row["full_name"]),
        "actor": row["actor"],
        "warnings": detail.get("warnings", []),
    }
    if row["reason"] in REASONS:
        out["message_vi"], out["message_en"] = message(row["reason"], row["direction"])
    if "offline_against_policy" in detail:  # the consoles raise an alert for it
        out["offline_against_policy"] = detail["offline_against_policy"]
    if row["kind"] != "scan":
        out["detail"] = {k: v for k, v in detail.items() if k not in ("payload_head",)}
    return out


class LiveEvent(NamedTuple):
    """An event as consoles get it: encoded once, however many consoles watch."""

    seq: int
    text: str


def live_event(row: asyncpg.Record) -> LiveEvent:
    return LiveEvent(row["seq"], json.dumps(event_json(row)))


@dataclass(eq=False)
class Subscription:
    site_id: int
    last_seq: int
    pending: deque[LiveEvent] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # pending grew or overflowed
    overflowed: bool = False

    def offer(self, event: LiveEvent) -> None:
        if event.seq <= self.last_seq or self.overflowed:
            return
        if len(self.pending) >= SUBSCRIBER_BUFFER:
            # A consumer that does not read must not hold anyone else up: cut it off;
            # it reconnects from the last seq it saw.
            self.overflowed = True
        else:
            self.pending.append(event)
            self.last_seq = event.seq
        self.wake.set()


class Fanout:
    def __init__(self, database_url: str, db: Database) -> None:
        self.database_url = database_url
        self.db = db
        self.subscriptions: dict[int, set[Subscription]] = {}
        self._fetched: dict[int, int] = {}  # site -> newest seq handed out here
        self._pending: dict[int, int] = {}  # site -> newest seq to announce
        self._wake_notifier = asyncio.Event()
        self._wake_reader: dict[int, int] = {}
        self._reader_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None  # the LISTEN connection, when up
        self._listener_busy = asyncio.Lock()  # one statement at a time on a connection

    # --- writers -----------------------------------------------------------------
    def poke(self, heads: dict[int, int]) -> None:
        for site, seq in heads.items():
            if seq > self._pending.get(site, 0):
                self._pending[site] = seq
        self._wake_notifier.set()
        self._wants(heads)  # local subscribers need not wait for the round trip

    def changed(self, site_ids: Iterable[int]) -> None:
        """Events were appended to these chains by a writer that does not know their
        seqs (a revocation, a rule change): every instance reads what is new there."""
        self.poke({site: ANY_NEWER for site in site_ids})

    async def _notify_loop(self) -> None:
        while True:
            await self._wake_notifier.wait()
            self._wake_notifier.clear()
            pending, self._pending = self._pending, {}
            if pending:
                payload = json.dumps({str(k): v for k, v in pending.items()})
                try:
                    await self._send_notify(payload)
                except Exception as e:  # the poll catches up; the loop must go on
                    raise_if_cancelled()
                    logger.warning("notify failed: %s", e)
            await asyncio.sleep(NOTIFY_INTERVAL_S)

    async def _send_notify(self, payload: str) -> None:
        # On the LISTEN connection, which is there anyway: a pool connection costs a
        # reset (a round trip, and work in PostgreSQL) each time it goes back, and under
        # load there is a notification per batch.
        listener = self._listener
        if listener is not None:
            async with self._listener_busy:
                await listener.execute(NOTIFY_SQL, CHANNEL, payload, timeout=LISTENER_TIMEOUT_S)
            return
        async with self.db.connection() as conn:
            await conn.execute(NOTIFY_SQL, CHANNEL, payload)

    # --- readers -----------------------------------------------------------------
    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            heads = {int(k): int(v) for k, v in json.loads(payload).items()}
        except (ValueError, AttributeError, TypeError):
            logger.warning("ignored a malformed notification")
            return
        self._wants(heads)

    def _wants(self, heads: dict[int, int]) -> None:
        for site, seq in heads.items():
            if site in self.subscriptions and seq > self._fetched.get(site, 0):
                self._wake_reader[site] = max(seq, self._wake_reader.get(site, 0))
                self._reader_event.set()

    async def _reader_loop(self) -> None:
        while True:
            await self._reader_event.wait()
            self._reader_event.clear()
            wanted, self._wake_reader = self._wake_reader, {}
            for site in wanted:
                # The loop must outlive any database trouble, ServiceUnavailable too (no
                # connection free in time): ended, no console would get a live event again.
                try:
                    await self._deliver_new(site)
                except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as e:
                    raise_if_cancelled()
                    logger.warning("fan-out read failed for site %s: %s", site, e)

    async def _deliver_new(self, site: int) -> None:
        subs = self.subscriptions.get(site)
        if not subs:
            return
        after = self._fetched.get(site, min(s.last_seq for s in subs))
        while True:
            async with self.db.connection() as conn:
                rows = await conn.fetch(EVENTS_AFTER_SQL, site, after, PAGE)
            for row in rows:
                event = live_event(row)
                for sub in list(self.subscriptions.get(site, ())):
                    sub.offer(event)
                after = event.seq
            self._fetched[site] = after
            if len(rows) < PAGE:
                return

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            if not self.subscriptions:
                continue
            try:
                async with self.db.connection() as conn:
                    rows = await conn.fetch(HEADS_SQL, list(self.subscriptions))
                self._wants({r["chain_id"]: r["last_seq"] for r in rows})
            except Exception as e:  # the poll must survive anything
                raise_if_cancelled()
                logger.warning("fan-out poll failed: %s", e)

    async def _listen_loop(self) -> None:
        backoff = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                # Named, so an operator (and a test) can tell it in pg_stat_activity; with
                # several hosts in the URL it finds the primary, as the pool does.
                conn = await asyncpg.connect(
                    self.database_url,
                    timeout=LISTENER_TIMEOUT_S,
                    server_settings={"application_name": LISTENER_NAME},
                )
                await conn.add_listener(CHANNEL, self._on_notify)
                self._listener = conn
                backoff = 0.2
                self._wants({site: ANY_NEWER for site in self.subscriptions})  # catch up
                while not conn.is_closed():
                    await asyncio.sleep(1.0)
                    async with self._listener_busy:
                        # Notices a dead connection (or a silent one: the timeout).
                        await conn.execute("SELECT 1", timeout=LISTENER_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # reconnect whatever happened
                raise_if_cancelled()
                logger.warning("LISTEN connection lost: %s; retrying", e)
            finally:
                self._listener = None
                if conn is not None:
                    conn.terminate()  # also on cancel: never leave it open
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    # --- subscriptions -----------------------------------------------------------
    async def subscribe(
        self, site_id: int, after_seq: int | None
    ) -> tuple[Subscription, list[LiveEvent]]:
        """Register for live events of a site, and return what was recorded after
        `after_seq` (None: from now on), in order. Live events may overlap the
        replay; the consumer skips any seq it has already had."""
        async with self.db.connection() as conn:
            head = await conn.fetchval(
                "SELECT last_seq FROM event_chains WHERE chain_id = $1", site_id
            )
            if head is None:
                raise LookupError(site_id)
            start = head if after_seq is None else min(after_seq, head)
            sub = Subscription(site_id, start)
            self.subscriptions.setdefault(site_id, set()).add(sub)
            self._fetched.setdefault(site_id, head)
            # Read until nothing is left: whatever commits after this is offered live.
            replay: list[LiveEvent] = []
            after = start
            while True:
                rows = await conn.fetch(EVENTS_AFTER_SQL, site_id, after, PAGE)
                replay.extend(live_event(r) for r in rows)
                if len(rows) < PAGE:
                    break
                after = rows[-1]["seq"]
        if replay:
            sub.last_seq = max(sub.last_seq, replay[-1].seq)
        return sub, replay

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self.subscriptions.get(sub.site_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscriptions[sub.site_id]
                self._fetched.pop(sub.site_id, None)

    # --- lifetime ----------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_loop()),
            asyncio.create_task(self._notify_loop()),
            asyncio.create_task(self._reader_loop()),
            asyncio.create_task(self._poll_loop()),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)


FANOUT_KEY = web.AppKey("fanout", Fanout)


def fanout_context(settings: Settings) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        assert settings.database_url is not None
        fanout = Fanout(settings.listen_database_url or settings.database_url, app[DB_KEY])
        app[FANOUT_KEY] = fanout
        fanout.start()
        yield
        await fanout.stop()

    return ctx
