"""Overstays: someone still inside past the departure they declared (a visitor), or
silent (no scan at the site, no guard's "seen") longer than the site's
`silent_after_minutes`, raises one `overstay` event per stay, which the site's webhook
hears of (type `overstay`).

The automatic check-out's background round raises them after its sweep, on the same
advisory lock, so one instance does it. An overstay happens when its condition became
true (the departure, or the last evidence plus the silence allowed), not when the
round saw it: after a restart the events are those a round at each moment would have
raised. A departure declared before the entry is an old one and is ignored, as the
sweep ignores it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from checkin_core.reasons import short_name
from service.events.fanout import Fanout
from service.events.log import NewEvent, append_events, lock_chains
from service.sites.door_rules import CheckinRules

logger = logging.getLogger(__name__)

ACTOR = "service:overstay"
BATCH = 200  # events per transaction: the site's chain is held that long

SITES_SQL = """
SELECT s.id, s.checkin_rules::text AS rules FROM sites s
WHERE EXISTS (SELECT 1 FROM presence p WHERE p.site_id = s.id AND p.exited_at IS NULL)
ORDER BY s.id
"""
# Open stays at site $1 overdue at $2 ($3: the silence allowed) that have not raised
# one yet, with when each became overdue. Silence needs an entry older than $3
# (presence_open_entered_idx); a departure needs a visitor's current declaration.
# Evidence as the roll call counts it (service/door/roll_call.py).
OVERDUE_SQL = """
SELECT c.* FROM (
    SELECT p.id, p.person_id, p.entered_at, pe.full_name,
           coalesce(ev.at, p.entered_at) AS last_seen_at, dep.at AS expected_departure
    FROM presence p JOIN people pe ON pe.id = p.person_id
    LEFT JOIN LATERAL (
        SELECT (d.answers->>'expected_departure')::timestamptz AS at FROM declarations d
        WHERE pe.kind = 'visitor' AND d.person_id = p.person_id AND d.site_id = p.site_id
          AND d.superseded_at IS NULL AND d.answers ? 'expected_departure'
    ) AS dep ON dep.at > p.entered_at
    LEFT JOIN LATERAL (
        SELECT max(e.occurred_at) AS at FROM events e
        WHERE e.person_id = p.person_id AND e.site_id = p.site_id AND e.occurred_at >= p.entered_at
          AND (e.kind = 'scan' OR (e.kind = 'presence_confirmed' AND e.detail->>'status' = 'seen'))
    ) AS ev ON true
    WHERE p.site_id = $1 AND p.exited_at IS NULL
      AND (p.entered_at <= $2::timestamptz - $3::interval OR dep.at <= $2::timestamptz)
      AND NOT EXISTS (SELECT 1 FROM events o
                      WHERE o.person_id = p.person_id AND o.site_id = p.site_id
                        AND o.kind = 'overstay' AND o.occurred_at >= p.entered_at)
) AS c
WHERE c.last_seen_at <= $2::timestamptz - $3::interval OR c.expected_departure <= $2::timestamptz
ORDER BY c.entered_at, c.id LIMIT $4
"""
# Under the chain lock: still open, and none raised meanwhile.
STILL_DUE_SQL = """
SELECT p.id FROM presence p
WHERE p.id = ANY($1::bigint[]) AND p.exited_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM events o
                  WHERE o.person_id = p.person_id AND o.site_id = p.site_id
                    AND o.kind = 'overstay' AND o.occurred_at >= p.entered_at)
"""


def overstay_event(site_id: int, row: Any, now: datetime, silent_after: timedelta) -> NewEvent:
    """The event for an overdue stay (a row of OVERDUE_SQL), at the time it became so."""
    departure: datetime | None = row["expected_departure"]
    silent_at = row["last_seen_at"] + silent_after
    reasons = (("silent", silent_at), ("past_departure", departure))
    why = [w for w, at in reasons if at is not None and at <= now]
    since = min(at for at in (silent_at, departure) if at is not None and at <= now)
    return NewEvent(
        kind="overstay",
        actor=ACTOR,
        occurred_at=max(since, row["entered_at"]),
        site_id=site_id,
        person_id=row["person_id"],
        detail={
            "why": why,
            "name": short_name(row["full_name"]),
            "entered_at": row["entered_at"].isoformat(),
            "last_seen_at": row["last_seen_at"].isoformat(),
            "expected_departure": None if departure is None else departure.isoformat(),
            "silent_after_minutes": int(silent_after.total_seconds() // 60),
        },
    )


async def _raise_batch(
    conn: asyncpg.Connection, site_id: int, rows: list[Any], now: datetime, silent: timedelta
) -> tuple[int, int]:
    """One transaction: the events of those still due; (how many, the chain's last seq)."""
    async with conn.transaction():
        heads = await lock_chains(conn, [site_id])
        due = {r["id"] for r in await conn.fetch(STILL_DUE_SQL, [r["id"] for r in rows])}
        events = [overstay_event(site_id, r, now, silent) for r in rows if r["id"] in due]
        await append_events(conn, events, heads)
    return len(events), heads[site_id][0]


async def raise_overstays(
    conn: asyncpg.Connection, now: datetime, fanout: Fanout | None = None
) -> int:
    """Raise the overstays due by `now` at every site with people inside; how many.
    The caller holds the sweep's advisory lock (one instance at a time)."""
    raised = 0
    for site in await conn.fetch(SITES_SQL):
        rules = CheckinRules.model_validate_json(site["rules"])
        silent = timedelta(minutes=rules.silent_after_minutes)
        while True:
            rows = list(await conn.fetch(OVERDUE_SQL, site["id"], now, silent, BATCH))
            if not rows:
                break
            count, seq = await _raise_batch(conn, site["id"], rows, now, silent)
            raised += count
            if count and fanout is not None:
                fanout.poke({site["id"]: seq})
            if len(rows) < BATCH:
                break
    if raised:
        logger.info("overstays raised", extra={"raised": raised})
    return raised
