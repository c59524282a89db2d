"""Automatic check-out benchmark: the sweep over 100,000 open stays at one site.

    .venv/bin/python -m bench.sweep_bench [--stays 100000] [--batch N]

Builds a fresh database with that many people inside one site since 2 to 10 hours ago
(each with the entry scan in the event log, so the last-evidence lookup has rows to
probe), ANALYZE, then times: a sweep when no rule is due (what the service pays every
round), and the sweep that closes them all (`auto_checkout.after_minutes` = 60): one
`auto_exit` chained event and one estimated end per stay, in batches of
service.door.auto_checkout.BATCH. Goal: the full sweep under 1 s. The ceiling, timed in
the same run: the bare writes for every stay at once (BARE_EVENTS_SQL, BARE_STAYS_SQL).

Meanwhile a second connection plays the door: every few milliseconds it takes the
site's chain lock as a door batch does (and commits at once), and the bench reports how
long that took, quiet and during the sweep: what the sweep adds to a door decision.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.pg import fresh_database, server
from service.door import auto_checkout
from service.events.log import verify_chain
from service.platform.db import init_connection

GOAL_S = 1.0
HEADING = "## Automatic check-out: the sweep"

PEOPLE_SQL = """
INSERT INTO people (kind, full_name, phone)
SELECT 'staff', 'Nhân viên ' || i, '+849' || lpad(i::text, 8, '0')
FROM generate_series(1, $1::int) AS i
"""
# The entry scans, chained with stand-in hashes (the bench checks the chain from the
# sweep's first event on), and the stays they opened, written in the order people came
# in, as a door writes them (a person's id says nothing of when they come).
EVENTS_SQL = """
INSERT INTO events (chain_id, seq, kind, occurred_at, site_id, gate_id, person_id, event_id,
                    direction, decision, reason, actor, digest, prev_hash, hash)
SELECT $1, row_number() OVER (ORDER BY s.at, s.id), 'scan', s.at,
       $1, $2, s.id, md5(s.id::text)::uuid, 'in', 'allow', 'welcome', 'kiosk:bench',
       sha256(s.id::text::bytea), sha256((s.id - 1)::text::bytea), sha256(s.id::text::bytea)
FROM (SELECT p.id, $3::timestamptz - make_interval(mins => 120 + (p.id % 480)::int,
                                                   secs => (p.id % 997) * 0.06) AS at
      FROM people p) AS s
ORDER BY s.at, s.id
"""
STAYS_SQL = """
INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event)
SELECT e.site_id, e.person_id, e.occurred_at, e.gate_id, e.id FROM events e WHERE e.site_id = $1
ORDER BY e.id
"""
HEAD_SQL = """
UPDATE event_chains SET last_seq = $2::bigint, last_hash = sha256($2::bigint::text::bytea)
WHERE chain_id = $1
"""


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


async def fill(conn: asyncpg.Connection, stays: int, now: datetime) -> int:
    site = await conn.fetchval(
        "INSERT INTO sites (code, name) VALUES ('bench', 'Tòa nhà lớn') RETURNING id"
    )
    gate = await conn.fetchval(
        "INSERT INTO gates (site_id, name, direction) VALUES ($1, 'Cổng A', 'entrance')"
        " RETURNING id",
        site,
    )
    await conn.execute(PEOPLE_SQL, stays)
    await conn.execute(EVENTS_SQL, site, gate, now)
    await conn.execute(STAYS_SQL, site)
    await conn.execute(HEAD_SQL, site, stays)
    await conn.execute("ANALYZE")
    return int(site)


async def set_minutes(conn: asyncpg.Connection, site: int, minutes: int) -> None:
    rules = {"auto_checkout": {"after_minutes": minutes}}
    await conn.execute("UPDATE sites SET checkin_rules = $2 WHERE id = $1", site, rules)


async def timed_sweep(
    conn: asyncpg.Connection, now: datetime, batch: int = auto_checkout.BATCH
) -> tuple[float, Any]:
    started = time.perf_counter()
    report = await auto_checkout.sweep(conn, now, batch=batch)
    return time.perf_counter() - started, report


# The ceiling: the sweep's writes and nothing else, for every stay at once, in one
# transaction rolled back (then vacuumed): one INSERT of the auto_exit rows with stand-in
# records and hashes, one UPDATE ending the stays. No per-stay work can beat these two.
BARE_EVENTS_SQL = """
INSERT INTO events (chain_id, seq, kind, occurred_at, site_id, person_id, direction, actor,
                    detail, digest, prev_hash, hash)
SELECT $1, $2::bigint + p.id, 'auto_exit', p.entered_at + interval '1 hour', $1, p.person_id, 'out',
       'service:auto_checkout', '{"estimated": true, "rule": "after_minutes", "rule_value": 60}',
       sha256(p.id::text::bytea), sha256(p.id::text::bytea), sha256(p.id::text::bytea)
FROM presence p WHERE p.site_id = $1 AND p.exited_at IS NULL
"""
BARE_STAYS_SQL = """
UPDATE presence SET exited_at = entered_at + interval '1 hour', exit_kind = 'auto',
                    exit_event = entry_event, last_evidence_at = entered_at
WHERE site_id = $1 AND exited_at IS NULL
"""


async def bare_writes(conn: asyncpg.Connection, site: int, stays: int) -> dict[str, float]:
    """Seconds for the ceiling's INSERT and UPDATE (see above)."""
    took = {}
    tx = conn.transaction()
    await tx.start()
    try:
        for name, sql, args in (
            ("insert_s", BARE_EVENTS_SQL, (site, stays)),
            ("update_s", BARE_STAYS_SQL, (site,)),
        ):
            started = time.perf_counter()
            await conn.execute(sql, *args)
            took[name] = round(time.perf_counter() - started, 2)
    finally:
        await tx.rollback()
    await conn.execute("VACUUM (ANALYZE) presence, events")
    # Its WAL would otherwise bring a checkpoint into the middle of the sweep.
    await conn.execute("CHECKPOINT")
    return took


DOOR_LOCK_SQL = "SELECT last_seq FROM event_chains WHERE chain_id = $1 FOR UPDATE"
PROBE_GAP_S = 0.005


async def door_probe(url: str, site: int, stop: asyncio.Event) -> list[float]:
    """The chain lock as a door batch takes it, again and again until `stop`: ms each."""
    conn = await asyncpg.connect(url)
    waits = []
    try:
        while not stop.is_set():
            started = time.perf_counter()
            async with conn.transaction():
                await conn.fetchval(DOOR_LOCK_SQL, site)
            waits.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PROBE_GAP_S)
    finally:
        await conn.close()
    return waits


def percentiles(waits: list[float]) -> dict[str, float]:
    ordered = sorted(waits) or [0.0]

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 1)}


async def probed(url: str, site: int, work: Any) -> tuple[Any, dict[str, float]]:
    """Run `work` with the door probe beside it."""
    stop = asyncio.Event()
    probe = asyncio.create_task(door_probe(url, site, stop))
    try:
        result = await work
    finally:
        stop.set()
    return result, percentiles(await probe)


async def run(url: str, stays: int, batch: int = auto_checkout.BATCH) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await init_connection(conn)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        site = await fill(conn, stays, now)
        log(f"filled {stays} open stays in {time.perf_counter() - t0:.1f} s")
        await set_minutes(conn, site, 24 * 60)  # nobody is due
        await timed_sweep(conn, now)  # warm the cache
        idle_s, _ = await timed_sweep(conn, now)
        bare = await bare_writes(conn, site, stays)
        _, quiet = await probed(url, site, asyncio.sleep(2))
        await set_minutes(conn, site, 60)
        (full_s, report), during = await probed(url, site, timed_sweep(conn, now, batch))
        left = await conn.fetchval(
            "SELECT count(*) FROM presence WHERE site_id = $1 AND exited_at IS NULL", site
        )
        chain = await verify_chain(conn, site, from_seq=stays + 1)
    finally:
        await conn.close()
    return {
        "stays": stays,
        "closed": report.closed,
        "left_open": left,
        "batches": report.batches,
        "batch": batch,
        "idle_ms": round(idle_s * 1000, 1),
        "full_s": round(full_s, 2),
        "per_batch_ms": round(full_s * 1000 / max(report.batches, 1), 1),
        "chain_ok": chain.broken is None and chain.checked == report.closed,
        "goal_s": GOAL_S,
        "bare": bare,
        "door_quiet_ms": quiet,
        "door_sweep_ms": during,
    }


HEADER = (
    "| scenario | closed | sweep | per batch | nothing due | chain | ceiling: the bare writes"
    " (INSERT + UPDATE) | ratio | door's chain lock, quiet / during the sweep (p50, p99, max)"
    " | goal |\n"
    "|---|---:|---:|---:|---:|---|---:|---:|---|---|"
)


def _door(q: dict[str, float]) -> str:
    return f"{q['p50']} / {q['p99']} / {q['max']} ms"


def to_markdown(r: dict[str, Any]) -> str:
    verdict = "ok" if r["full_s"] < r["goal_s"] else f"over {r['goal_s']:.0f} s"
    bare = r["bare"]["insert_s"] + r["bare"]["update_s"]
    return (
        f"| sweep, {r['stays']:,} open stays at one site | {r['closed']:,} "
        f"({r['left_open']} left) | {r['full_s']} s | {r['per_batch_ms']} ms "
        f"({r['batches']} batches of {r['batch']}) | {r['idle_ms']} ms "
        f"| {'verified' if r['chain_ok'] else 'BROKEN'} "
        f"| {bare:.2f} s ({r['bare']['insert_s']} + {r['bare']['update_s']}) "
        f"| {r['full_s'] / bare:.1f} "
        f"| {_door(r['door_quiet_ms'])}; {_door(r['door_sweep_ms'])} "
        f"| goal {r['goal_s']:.0f} s: {verdict} |"
    )


def section(r: dict[str, Any], command: str) -> str:
    return "\n".join(
        [
            HEADING,
            "",
            f"`{command}`. Every stay open since 2 to 10 hours, `after_minutes` = 60: each",
            "closure is an `auto_exit` event chained into the site's log and an estimated end",
            "with the person's last evidence. Each batch is one call of auto_checkout_batch",
            "(schema.sql): the closure times, the events' canonical records, digests and hash",
            "links in SQL, one UPDATE and one INSERT, the chain locked for the writes only and",
            "the commit not waiting for the disk (service/door/auto_checkout.py). 'nothing",
            "due' is the round the service runs every `CHECKIN_AUTO_CHECKOUT_INTERVAL`",
            "seconds. The door column: a second connection takes the site's chain lock as a",
            "door batch does, every 5 ms, quiet and during the sweep.",
            "",
            "The ceiling is the sweep's writes alone, for every stay at once: one bare INSERT",
            "of 100,000 auto_exit rows and one bare UPDATE ending 100,000 stays, in a",
            "transaction rolled back, vacuumed and checkpointed before the sweep (else the",
            "checkpoint its WAL brings lands in the sweep: 6.86 s, the door's p99 60 ms). Those",
            "two statements alone take several times the goal on this machine (an end moves",
            "the stay in five indexes, the trace's GiST one the dearest), so no arrangement of",
            "per-stay records reaches 1 s: that needs another record (one closure event per",
            "batch, or closures kept apart from the stays).",
            "",
            "History: the sweep in Python 19.01 s, then in SQL 10.09 s, on earlier sessions'",
            "machines; on this one 12.19 s before each step was read once and planned once",
            "(0020_sweep_once.sql), 8.97 s after, and 7.84 s with the bench's stays written in",
            "the order people came in, as a door writes them (the fill had scattered them).",
            "Batches of 1,000 swept no faster (20,000 stays: 7.67 s against 7.81 s) and held",
            "the door up to 400 ms, so a batch stays 200. A sweep this large happens once, when",
            "a site turns a rule on over a backlog; a day's sweep closes the day's forgotten",
            "exits, a few hundred at an office.",
            "",
            HEADER,
            to_markdown(r),
            "",
        ]
    )


def measure(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--stays", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=auto_checkout.BATCH)
    args = p.parse_args(argv or [])
    with server() as admin_url, fresh_database(admin_url) as url:
        return asyncio.run(run(url, args.stays, args.batch))


def main() -> None:
    sys.stdout.write(HEADER + "\n" + to_markdown(measure(sys.argv[1:])) + "\n")


if __name__ == "__main__":
    main()
