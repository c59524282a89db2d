"""Health desk benchmark: re-screening a site's declarations, and a case's trace + suspend.

    .venv/bin/python -m bench.health_bench [--declarations 100000] [--events 1000000]
                                           [--people 2000] [--touch 0.01]

(a) A fresh database with one site and `--declarations` current declarations (one per
person; 60 % declare travel to one to three of 60 areas, `--touch` of them to the area
then flagged), ANALYZE, then the re-screen that flagging an area runs
(service.health.rescreen: one statement, plus the events of the new suspensions),
in a transaction rolled back after each of three runs.
(b) A year of stays at another site (bench.trace_bench's data: `--events` entry and exit
events), then recording a case for a person who was in on the last days
(service.health.cases.record_case: the trace over the infectious window, the case, its
suspension) and suspending all its contacts, timed together, three people.
Seeded with set-based SQL. Goal for each: under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench import trace_bench
from bench.pg import fresh_database, server
from service.health.cases import record_case
from service.health.rescreen import rescreen
from service.health.suspensions import Hold, suspend
from service.platform.db import init_connection

GOAL_MS = 1000.0
RUNS = 3
TARGET = "Phường Thạch Bàn"
ACTOR = "health:bench"

PEOPLE_SQL = """
INSERT INTO people (kind, full_name, phone)
SELECT 'visitor', 'Khách ' || i, '+848' || lpad(i::text, 8, '0')
FROM generate_series(1, $1::int) AS i
RETURNING id
"""
# Areas named like the real ones (with diacritics), so area_key does its real work.
DECLARATIONS_SQL = """
WITH pool AS (SELECT array_agg('Xã Đông Hưng ' || i) AS areas FROM generate_series(1, 60) AS i)
INSERT INTO declarations (person_id, site_id, answers, status, reasons, submitted_at, valid_until)
SELECT p.id, $1::bigint,
       jsonb_build_object('kind', 'visitor', 'travel_areas',
           CASE WHEN r.travel >= 0.6 THEN '[]'::jsonb
                WHEN r.travel < $3::float8
                     THEN to_jsonb(ARRAY[pool.areas[1 + (p.id % 60)], $4::text])
                ELSE to_jsonb(pool.areas[1 + (p.id % 60):1 + (p.id % 60) + (p.id % 3)]) END),
       'cleared', '[]'::jsonb, $2::timestamptz - make_interval(mins => (p.id % 600)::int),
       $2::timestamptz + interval '1 day'
FROM people p CROSS JOIN pool
     CROSS JOIN LATERAL (SELECT random() + 0 * p.id AS travel) AS r  -- drawn per row
WHERE p.id = ANY ($5::bigint[])
"""
AREA_SQL = """
INSERT INTO flagged_areas (site_id, name, flagged_from) VALUES ($1, $2, $3)
RETURNING id, site_id, name, code, flagged_from, flagged_until, created_at
"""
# People with a stay in the last two days of the year of stays: cases with contacts.
RECENT_PEOPLE_SQL = """
SELECT DISTINCT person_id FROM presence WHERE entered_at >= $1 ORDER BY person_id LIMIT $2
"""


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


async def rescreen_runs(conn: asyncpg.Connection, args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC)
    site = await conn.fetchval(
        "INSERT INTO sites (code, name) VALUES ('bench-rescreen', 'Trụ sở') RETURNING id"
    )
    t0 = time.perf_counter()
    people = [r["id"] for r in await conn.fetch(PEOPLE_SQL, args.declarations)]
    await conn.execute("SELECT setseed(0.42)")
    await conn.execute(DECLARATIONS_SQL, site, now, args.touch, TARGET, people)
    await conn.execute("ANALYZE")
    log(f"seeded {args.declarations:,} declarations in {time.perf_counter() - t0:.1f} s")
    timings, result = [], None
    for _ in range(RUNS):
        tx = conn.transaction()
        await tx.start()
        try:
            area = await conn.fetchrow(AREA_SQL, site, TARGET, (now - timedelta(days=3)).date())
            started = time.perf_counter()
            result = await rescreen(conn, area, actor=ACTOR, now=datetime.now(UTC))
            timings.append((time.perf_counter() - started) * 1000)
        finally:
            await tx.rollback()
    assert result is not None
    return {
        "declarations": args.declarations,
        "rescreened": result.rescreened,
        "suspended": result.suspended,
        "median_ms": round(statistics.median(timings), 1),
        "max_ms": round(max(timings), 1),
    }


async def case_runs(conn: asyncpg.Connection, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    end = await trace_bench.fill(conn, people=args.people, stays=args.events // 2)
    stays = await conn.fetchval("SELECT count(*) FROM presence")
    site = await conn.fetchval("SELECT id FROM sites WHERE code = 'bench'")
    # The stays' people must be known at the site as the desk sees them: declarations.
    await conn.execute(
        "INSERT INTO declarations (person_id, site_id, answers, status, valid_until)"
        " SELECT id, $1, '{}', 'cleared', now() + interval '1 day' FROM people"
        " WHERE kind = 'staff'",
        site,
    )
    await conn.execute("ANALYZE")
    log(f"filled {stays:,} stays in {time.perf_counter() - t0:.1f} s")
    recent = end - timedelta(days=2)
    cases = [r["person_id"] for r in await conn.fetch(RECENT_PEOPLE_SQL, recent, RUNS)]
    timings, contacts = [], []
    for person_id in cases:
        tx = conn.transaction()
        await tx.start()
        try:
            now = datetime.now(UTC)
            started = time.perf_counter()
            case = await record_case(
                conn,
                person_id=person_id,
                site_id=site,
                onset_on=now.date(),
                note="bench",
                actor=ACTOR,
                now=now,
            )
            holds = [
                Hold(c["person_id"], exposed_at=datetime.fromisoformat(c["last_overlap_at"]))
                for c in case.contacts
            ]
            await suspend(
                conn,
                site_id=site,
                cause="contact_traced",
                holds=holds,
                actor=ACTOR,
                now=now,
                case_id=case.id,
            )
            timings.append((time.perf_counter() - started) * 1000)
            contacts.append(len(holds))
        finally:
            await tx.rollback()
    return {
        "events": 2 * stays,
        "cases": len(timings),
        "contacts_each": round(statistics.mean(contacts)) if contacts else 0,
        "median_ms": round(statistics.median(timings), 1) if timings else None,
        "max_ms": round(max(timings), 1) if timings else None,
    }


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await init_connection(conn)
        case = await case_runs(conn, args)  # first: its stays are of everyone there is
        return {"rescreen": await rescreen_runs(conn, args), "case": case, "goal_ms": GOAL_MS}
    finally:
        await conn.close()


def _verdict(ms: float | None) -> str:
    return "-" if ms is None else ("ok" if ms < GOAL_MS else f"over {GOAL_MS:.0f} ms")


def to_markdown(r: dict[str, Any]) -> str:
    """Two markdown table rows, under HEADER."""
    s, c = r["rescreen"], r["case"]
    return "\n".join(
        [
            f"| re-screen {s['declarations']:,} declarations for a flagged area "
            f"| {s['rescreened']:,} touched, {s['suspended']:,} suspended "
            f"| median {s['median_ms']} ms | max {s['max_ms']} ms "
            f"| goal {GOAL_MS:.0f} ms: {_verdict(s['max_ms'])} |",
            f"| case: trace + suspend contacts over {c['events']:,} events "
            f"| {c['cases']} cases, {c['contacts_each']} contacts each "
            f"| median {c['median_ms']} ms | max {c['max_ms']} ms "
            f"| goal {GOAL_MS:.0f} ms: {_verdict(c['max_ms'])} |",
        ]
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--declarations", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000, help="entry + exit events")
    p.add_argument("--people", type=int, default=2000, help="people with stays")
    p.add_argument("--touch", type=float, default=0.01, help="share who went to the area")
    return p


def measure(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv or [])
    with server() as admin_url, fresh_database(admin_url) as url:
        return asyncio.run(run(url, args))


HEADER = "| scenario | size | median | max | goal |\n|---|---|---:|---:|---|"


def main() -> None:
    sys.stdout.write(HEADER + "\n" + to_markdown(measure(sys.argv[1:])) + "\n")


if __name__ == "__main__":
    main()
