"""Fan-out benchmark: how long after a scan is recorded each connected console has it.

    .venv/bin/python -m bench.fanout_bench [--consoles 1,100] [--rate 20] [--seconds 10]

Two service processes on one database, as two replicas behind a load balancer: kiosks
scan on instance A at a steady rate (open loop), consoles watch the site's live feed on
instance B, so every event crosses instances through LISTEN/NOTIFY. Latency is the
time from the kiosk receiving its decision (the service answers only after commit, so
the event is recorded by then) to a console receiving the event, per event and per
console; both are wall-clock times on this machine, taken in two load processes. One
more run puts the consoles on A itself (no NOTIFY on the path).

Ceiling: the raw LISTEN/NOTIFY round trip on the same server, measured with asyncpg in
the same run (one connection NOTIFYs, another LISTENs): the least any delivery from one
instance to another can cost. The ratio says how much the service adds to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from bench.ceilings import percentile_ms
from bench.checkin_bench import (
    PROJECT_ROOT,
    Service,
    kiosk_plan,
    log,
    run_load,
    seed_database,
)
from bench.limits import raise_open_files
from bench.pg import fresh_database, server
from bench.seed import Seeded
from service.web.auth import Role, create_token

KIOSKS = 10
GRACE_S = 3.0  # consoles keep reading this long after the last scan


async def auditor_token(db_url: str) -> str:
    conn = await asyncpg.connect(db_url)
    try:
        return (await create_token(conn, role=Role.AUDITOR, label="bench consoles"))[1]
    finally:
        await conn.close()


async def notify_round_trip(db_url: str, samples: int, interval_s: float) -> dict[str, Any]:
    """NOTIFY on one connection until LISTEN on another hears it, `samples` times."""
    listener = await asyncpg.connect(db_url)
    sender = await asyncpg.connect(db_url)
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[float]] = {}

    def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        future = waiting.pop(payload, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    try:
        await listener.add_listener("bench_round_trip", heard)
        took: list[float] = []
        for i in range(samples):
            waiting[str(i)] = future = loop.create_future()
            sent = time.perf_counter()
            await sender.execute("SELECT pg_notify('bench_round_trip', $1)", str(i))
            took.append(await asyncio.wait_for(future, 10) - sent)
            await asyncio.sleep(interval_s)
    finally:
        await listener.close()
        await sender.close()
    took.sort()
    return {
        "samples": len(took),
        "p50_ms": percentile_ms(took, 0.50, unit=1.0),
        "p99_ms": percentile_ms(took, 0.99, unit=1.0),
    }


def watch_consoles(plan: dict[str, Any], folder: Path) -> subprocess.Popen[str]:
    """Start the console process; it connects at once, reads until the plan ends and
    writes its results to folder/consoles.json."""
    (folder / "plan.json").write_text(json.dumps(plan))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.console_load",
            str(folder / "plan.json"),
            str(folder / "consoles.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )


def measure(
    kiosk_side: Service,
    console_side: Service,
    seeded: Seeded,
    token: str,
    consoles: int,
    seconds: float,
    rate: float,
) -> dict[str, Any]:
    start = time.time() + 3.0 + consoles / 100  # consoles connected by then
    kiosks = kiosk_plan(kiosk_side.url, seeded, KIOSKS, seconds, "ws", rate=rate, start=start)
    kiosks["record_acks"] = True
    watchers = {
        "url": console_side.url,
        "token": token,
        "site_id": seeded.site_id,
        "consoles": consoles,
        "end_at": kiosks["end_at"],
        "grace_s": GRACE_S,
    }
    with tempfile.TemporaryDirectory(prefix="cgw-consoles-") as tmp:
        proc = watch_consoles(watchers, Path(tmp))
        try:
            scans = run_load("bench.kiosk_load", kiosks)
            _, err = proc.communicate(timeout=seconds + GRACE_S + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
        if proc.returncode != 0:
            raise RuntimeError(f"bench.console_load failed: {err[-2000:]}")
        seen: dict[str, Any] = json.loads((Path(tmp) / "consoles.json").read_text())
    acks: dict[str, float] = scans["acks"]
    latencies = sorted(
        arrived - acked
        for event_id, acked in acks.items()
        for arrived in seen["receipts"].get(event_id, [])
    )
    expected = len(acks) * seen["connected"]
    return {
        "consoles": consoles,
        "same_instance": kiosk_side is console_side,
        "scans": len(acks),
        "scans_per_s": scans["per_second"],
        "deliveries": len(latencies),
        "missing": expected - len(latencies),
        "gaps": seen["gaps"],
        "duplicates": seen["duplicates"],
        "consoles_connected": seen["connected"],
        "consoles_failed": seen["consoles_failed"],
        "console_errors": seen["console_errors"],
        "scan_errors": scans["errors"] + scans["kiosks_failed"],
        "p50_ms": percentile_ms(latencies, 0.50, unit=1.0),
        "p99_ms": percentile_ms(latencies, 0.99, unit=1.0),
        "max_ms": percentile_ms(latencies, 1.0, unit=1.0),
    }


def run(
    consoles: Sequence[int] = (1, 100), rate: float = 20.0, seconds: float = 10.0
) -> dict[str, Any]:
    raise_open_files(max(consoles) + KIOSKS)
    result: dict[str, Any] = {"rate": rate, "kiosks": KIOSKS, "scenarios": []}
    with server() as server_url, fresh_database(server_url) as db_url:
        seeded = seed_database(db_url, KIOSKS)
        token = asyncio.run(auditor_token(db_url))
        samples = max(50, min(500, int(seconds * rate)))
        log(f"fan-out ceiling: raw LISTEN/NOTIFY round trip, {samples} samples")
        result["ceiling"] = asyncio.run(notify_round_trip(db_url, samples, 1 / rate))
        log(f"  -> p50 {result['ceiling']['p50_ms']} ms, p99 {result['ceiling']['p99_ms']} ms")
        with Service(db_url) as a, Service(db_url) as b:
            runs = [(n, b) for n in consoles] + [(max(consoles), a)]
            for n, console_side in runs:
                where = "the same instance" if console_side is a else "the other instance"
                log(f"fan-out: {n} consoles on {where}, {rate:.0f} scans/s on A, {seconds:.0f}s")
                figure = measure(a, console_side, seeded, token, n, seconds, rate)
                log(
                    f"  -> p50 {figure['p50_ms']} ms, p99 {figure['p99_ms']} ms; "
                    f"{figure['deliveries']:,} deliveries, {figure['missing']} missing, "
                    f"{figure['gaps']} gaps, {figure['duplicates']} duplicates"
                )
                result["scenarios"].append(figure)
    return result


def scenario_name(s: dict[str, Any]) -> str:
    where = "same instance" if s["same_instance"] else "other instance"
    return f"{s['consoles']} console{'s' if s['consoles'] != 1 else ''}, {where}"


def to_markdown(result: dict[str, Any]) -> str:
    c = result["ceiling"]
    lines = [
        "| consoles | scans/s | p50 ms | p99 ms | ceiling p50 / p99 ms (raw NOTIFY) "
        "| ratio p50 / p99 | delivered | missing, gaps, duplicates |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in result["scenarios"]:
        lines.append(
            f"| {scenario_name(s)} | {s['scans_per_s']:,.0f} | {s['p50_ms']} | {s['p99_ms']} "
            f"| {c['p50_ms']} / {c['p99_ms']} | {ratio(s['p50_ms'], c['p50_ms'])} / "
            f"{ratio(s['p99_ms'], c['p99_ms'])} | {s['deliveries']:,} "
            f"| {s['missing']}, {s['gaps']}, {s['duplicates']} |"
        )
    return "\n".join(lines)


def ratio(figure: float | None, ceiling: float | None) -> str:
    return f"{figure / ceiling:.1f}" if figure is not None and ceiling else "-"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--consoles", default="1,100", help="console counts, comma-separated")
    parser.add_argument("--rate", type=float, default=20.0, help="scans per second on A")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = run([int(n) for n in args.consoles.split(",")], args.rate, args.seconds)
    sys.stdout.write(to_markdown(result) + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
