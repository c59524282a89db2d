"""Contact-tracing benchmark: the trace query on a year of stays at one large site.

    .venv/bin/python -m bench.trace_bench [--events 1000000] [--people 2000] [--traces 7]

Builds a fresh database, fills presence with about a year of stays (one stay is two
events, an entry and an exit; the last day leaves some stays open), ANALYZE, then times
the trace of a few random people over the last 14 days. Prints one markdown line; goal
< 200 ms. `--explain` prints the plan: each of the person's stays should be one scan of
the GiST index on the stays' time ranges.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench.pg import fresh_database, server
from service.audit.trace import TraceQuery, fetch_contacts
from service.platform.db import init_connection

DAYS = 365
GOAL_MS = 200.0

PEOPLE_SQL = """
INSERT INTO people (kind, full_name, phone, organisation)
SELECT 'staff', 'Nhân viên ' || i, '+849' || lpad(i::text, 8, '0'), 'Công ty ' || (i % 40)
FROM generate_series(1, $1::int) AS i
"""
# Each person comes in on about `rate` of the days, between 07:00 and 10:00 (site
# time), through one of two gates, and stays 30 minutes to 10 hours.
STAYS_SQL = """
INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event,
                      exited_at, exit_gate_id, exit_kind)
SELECT $1::bigint, s.person_id, s.entered_at, s.gate, 1,
       s.entered_at + make_interval(mins => 30 + (random() * 570)::int), $4::bigint, 'scan'
FROM (
    SELECT p.id AS person_id,
           $5::timestamptz + make_interval(days => d, mins => (random() * 180)::int) AS entered_at,
           CASE WHEN random() < 0.5 THEN $2::bigint ELSE $3::bigint END AS gate
    FROM generate_series(0, $6::int - 1) AS d CROSS JOIN people p
    WHERE random() < $7::float8
) AS s
"""
# On the last day some people have not left yet (at most one open stay each).
OPEN_LAST_DAY_SQL = """
UPDATE presence SET exited_at = NULL, exit_gate_id = NULL, exit_kind = NULL
WHERE entered_at >= $1 AND person_id % 5 = 0
"""


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


async def fill(conn: asyncpg.Connection, *, people: int, stays: int) -> datetime:
    """The data; returns the end of the year of stays (07:00 of 'today' + 1 day)."""
    site = await conn.fetchval(
        "INSERT INTO sites (code, name) VALUES ('bench', 'Tòa nhà lớn') RETURNING id"
    )
    gates = [
        await conn.fetchval(
            "INSERT INTO gates (site_id, name, direction) VALUES ($1, $2, $3) RETURNING id",
            site,
            name,
            direction,
        )
        for name, direction in [("Cổng A", "entrance"), ("Cổng B", "entrance"), ("Ra", "exit")]
    ]
    await conn.execute(PEOPLE_SQL, people)
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=DAYS - 1
    )
    await conn.execute("SELECT setseed(0.42)")
    rate = min(1.0, stays / (people * DAYS))
    await conn.execute(STAYS_SQL, site, gates[0], gates[1], gates[2], first_day, DAYS, rate)
    await conn.execute(OPEN_LAST_DAY_SQL, first_day + timedelta(days=DAYS - 1))
    await conn.execute("ANALYZE")
    return first_day + timedelta(days=DAYS)


async def time_traces(
    conn: asyncpg.Connection, person_ids: list[int], end: datetime
) -> tuple[list[float], int]:
    start = end - timedelta(days=14)
    timings = []
    contacts = 0
    for person_id in person_ids:
        query = TraceQuery(person_id=person_id, start=start, end=end, open_until=end)
        t0 = time.perf_counter()
        found = await fetch_contacts(conn, query)
        timings.append((time.perf_counter() - t0) * 1000)
        contacts += len(found)
    return timings, contacts


async def explain(conn: asyncpg.Connection, person_id: int, end: datetime) -> str:
    from service.audit.trace import CONTACTS_SQL

    rows = await conn.fetch(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + CONTACTS_SQL,
        person_id,
        end - timedelta(days=14),
        end,
        end,
        False,
        0.0,
        None,
    )
    return "\n".join(r[0] for r in rows)


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fill a year of stays, trace a few people; the figures (see to_markdown)."""
    conn = await asyncpg.connect(url)
    try:
        await init_connection(conn)
        t0 = time.perf_counter()
        end = await fill(conn, people=args.people, stays=args.events // 2)
        stays = await conn.fetchval("SELECT count(*) FROM presence")
        log(f"filled {stays} stays in {time.perf_counter() - t0:.1f} s")
        person_ids = random.Random(42).sample(range(1, args.people + 1), args.traces)
        await time_traces(conn, person_ids[:1], end)  # warm the cache
        timings, contacts = await time_traces(conn, person_ids, end)
        if args.explain:
            log(await explain(conn, person_ids[0], end))
    finally:
        await conn.close()
    return {
        "stays": stays,
        "people": args.people,
        "traced": len(timings),
        "contacts_each": round(contacts / len(timings)),
        "median_ms": round(statistics.median(timings), 1),
        "max_ms": round(max(timings), 1),
        "goal_ms": GOAL_MS,
    }


def to_markdown(r: dict[str, Any]) -> str:
    """One markdown table row, under HEADER."""
    verdict = "ok" if r["max_ms"] < r["goal_ms"] else f"over {r['goal_ms']:.0f} ms"
    return (
        f"| trace, 14 days, {r['stays']:,} stays ({2 * r['stays']:,} events), "
        f"{r['people']:,} people | {r['traced']} people, {r['contacts_each']} contacts each "
        f"| median {r['median_ms']} ms | max {r['max_ms']} ms "
        f"| goal {r['goal_ms']:.0f} ms: {verdict} |"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--events", type=int, default=1_000_000, help="entry + exit events")
    p.add_argument("--people", type=int, default=2000)
    p.add_argument("--traces", type=int, default=7, help="people traced")
    p.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE")
    return p


def measure(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv or [])
    with server() as admin_url, fresh_database(admin_url) as url:
        return asyncio.run(run(url, args))


HEADER = "| scenario | traced | median | max | goal |\n|---|---|---:|---:|---|"


def main() -> None:
    import sys

    sys.stdout.write(HEADER + "\n" + to_markdown(measure(sys.argv[1:])) + "\n")


if __name__ == "__main__":
    main()
