"""Export benchmark: a CSV export of N events through the running service, against
PostgreSQL's own `COPY ... TO STDOUT` of the same rows in the same run, with the
service's memory before and at its peak during the export.

    .venv/bin/python -m bench.export_bench [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.checkin_bench import Service, log
from bench.pg import fresh_database, server
from service.platform.db import init_connection
from service.web.auth import Role, create_token

# Events of one site, in the shape scans have, made in the database (no hashing:
# the export reads them, it does not verify them).
FILL_SQL = """
INSERT INTO events (chain_id, seq, kind, occurred_at, site_id, gate_id, person_id, event_id,
                    direction, decision, reason, actor, detail, digest, prev_hash, hash)
SELECT $1, i, 'scan', now() - interval '1 second' * ($2 - i), $1, $3, 1 + i % 500,
       gen_random_uuid(), CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END,
       CASE WHEN i % 10 = 0 THEN 'deny' ELSE 'allow' END,
       CASE WHEN i % 10 = 0 THEN 'declaration_expired'
            WHEN i % 2 = 0 THEN 'welcome' ELSE 'goodbye' END,
       'kiosk:1:Cổng A', jsonb_build_object('name', 'N. V. A.', 'payload_len', 150),
       sha256(i::text::bytea), sha256((i - 1)::text::bytea), sha256((i + 1)::text::bytea)
FROM generate_series(1, $2) AS i
"""
# +848...: not the kiosk seed's +849... numbers, so both can fill one database.
PEOPLE_SQL = """
INSERT INTO people (kind, full_name, phone)
SELECT 'staff', 'Nguyễn Văn Xuất ' || i, '+848' || lpad(i::text, 8, '0')
FROM generate_series(1, 500) AS i
"""
COPY_SQL = """
SELECT e.id, e.site_id, e.seq, e.kind, e.occurred_at, e.recorded_at, e.gate_id, e.person_id,
       p.full_name, e.event_id, e.pass_id, e.direction, e.decision, e.reason, e.actor, e.detail
FROM events e LEFT JOIN people p ON p.id = e.person_id WHERE e.site_id = $1 ORDER BY e.id
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def prepare(db_url: str, events: int) -> tuple[int, str]:
    conn = await asyncpg.connect(db_url)
    try:
        await init_connection(conn)
        site = await conn.fetchval(
            "INSERT INTO sites (code, name) VALUES ('x', 'Xuất') RETURNING id"
        )
        gate = await conn.fetchval(
            "INSERT INTO gates (site_id, name, direction) VALUES ($1, 'A', 'both') RETURNING id",
            site,
        )
        await conn.execute(PEOPLE_SQL)
        await conn.execute(FILL_SQL, site, events, gate)
        await conn.execute(
            "UPDATE event_chains SET last_seq = $2 WHERE chain_id = $1", site, events
        )
        await conn.execute("ANALYZE")
        _, token = await create_token(conn, role=Role.AUDITOR)
        return int(site), token
    finally:
        await conn.close()


async def copy_rate(db_url: str, site: int) -> tuple[float, int]:
    conn = await asyncpg.connect(db_url)
    received = 0

    async def sink(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)

    try:
        start = time.perf_counter()
        await conn.copy_from_query(COPY_SQL, site, output=sink, format="csv")
        return time.perf_counter() - start, received
    finally:
        await conn.close()


async def read_export(
    session: aiohttp.ClientSession, url: str, token: str, site: int, tally: dict[str, int]
) -> None:
    """One CSV export read to its end; rows (with the header line) and bytes are added to
    `tally` as they arrive, so an export cut short still counts what it read."""
    async with session.get(
        f"{url}/api/v1/audit/events",
        params={"format": "csv", "site_id": str(site)},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        resp.raise_for_status()
        async for chunk in resp.content.iter_chunked(1 << 16):
            tally["bytes"] += len(chunk)
            tally["rows"] += chunk.count(b"\n")


async def export_rate(url: str, token: str, site: int) -> tuple[float, int, int]:
    tally = {"rows": 0, "bytes": 0}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        start = time.perf_counter()
        await read_export(session, url, token, site, tally)
        return time.perf_counter() - start, tally["bytes"], tally["rows"] - 1  # less the header


def run(events: int = 1_000_000) -> dict[str, Any]:
    with server() as server_url, fresh_database(server_url) as db_url:
        log(f"export: filling {events:,} events")
        site, token = asyncio.run(prepare(db_url, events))
        copy_s, copy_bytes = asyncio.run(copy_rate(db_url, site))
        with Service(db_url) as service:
            pid = service.proc.pid
            before = rss_kib(pid)
            peak = before
            done = threading.Event()

            def watch() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_kib(pid))
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                log("export: CSV through the service")
                export_s, export_bytes, rows = asyncio.run(export_rate(service.url, token, site))
            finally:
                done.set()
                watcher.join()
    return {
        "events": events,
        "rows": rows,
        "export_rows_per_s": round(rows / export_s),
        "export_mib": round(export_bytes / 2**20, 1),
        "copy_rows_per_s": round(events / copy_s),
        "copy_mib": round(copy_bytes / 2**20, 1),
        "ratio": round((rows / export_s) / (events / copy_s), 2),
        "service_rss_before_mib": round(before / 1024, 1),
        "service_rss_peak_mib": round(peak / 1024, 1),
    }


def to_markdown(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| scenario | rows/s | ceiling (COPY TO STDOUT) | ratio | service memory |",
            "|---|---:|---:|---:|---|",
            f"| CSV export of {r['events']:,} events ({r['export_mib']} MiB) | "
            f"{r['export_rows_per_s']:,} | {r['copy_rows_per_s']:,} | {r['ratio']} | "
            f"{r['service_rss_before_mib']} MiB before, {r['service_rss_peak_mib']} MiB at peak |",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    sys.stdout.write(to_markdown(run(args.events)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
