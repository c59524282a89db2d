"""Check-in benchmark: simulated kiosks against the real service on the real database,
and, in the same run, pgbench running the same check-in SQL as the ceiling.

    .venv/bin/python -m bench.checkin_bench [--kiosks 10,200,1000] [--seconds 10] [--http]

Scenarios: for each kiosk count, closed-loop kiosks over WebSockets (and over plain
HTTP with --http): decisions per second, p50 and p99 latency; then the latency at half
the measured rate (open loop), HALF_RATE_RUNS times: the run with the median p99 is
reported, with the range of the p99s beside it (on two cores shared with PostgreSQL and
the load generator, the same code's p99 at 200 kiosks went from 12 to 50 ms between
runs, so one run's p99 says little). Each run also records the service's peak open
files and database connections, and every answer that was not a decision (503s,
errors).

Ceilings: pgbench running the same check-in SQL on the same server (bench/ceilings.py):
one site's chain lock, the database's commit rate over 1,000 sites, and one transaction
alone, the floor for a scan's latency.

Each database is warmed up before it is measured (a short load, then ANALYZE), so
that it looks like one in service: statistics taken of empty tables make the planner
scan whole tables for what are index lookups once there is a history, and prepared
statements keep those plans until the next ANALYZE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from bench.ceilings import CEILINGS, THROUGHPUT_CEILING, pgbench, prepare
from bench.limits import raise_open_files
from bench.pg import fresh_database, server
from bench.seed import Seeded, seed
from bench.watch import watch
from service.platform.db import init_connection

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CEILINGS_BY_LABEL = {c.label: c for c in CEILINGS}
PEOPLE_PER_KIOSK = 40
HALF_RATE_RUNS = 3


def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_database(db_url: str, kiosks: int) -> Seeded:
    async def go() -> Seeded:
        conn = await asyncpg.connect(db_url)
        try:
            await init_connection(conn)
            return await seed(conn, kiosks=kiosks, people_per_kiosk=PEOPLE_PER_KIOSK)
        finally:
            await conn.close()

    return asyncio.run(go())


class Service:
    """`checkin-gateway serve` as its own process, on a free port; `env` adds settings."""

    def __init__(self, db_url: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url
        settings = {
            "DATABASE_URL": db_url,
            "CHECKIN_PORT": str(self.port),
            "CHECKIN_LOG_LEVEL": "WARNING",
            # Closed-loop kiosks scan as fast as they are answered, which no door does:
            # the per-token limit would measure itself, not the service's ceiling.
            "CHECKIN_KIOSK_HTTP_SCANS_PER_SECOND": "100000",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=dict(os.environ) | settings | (env or {}),
            cwd=PROJECT_ROOT,
        )

    def __enter__(self) -> Service:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("the service did not become ready")

    def __exit__(self, *_: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def kiosk_plan(
    url: str,
    seeded: Seeded,
    kiosks: int,
    seconds: float,
    transport: str,
    rate: float | None = None,
    start: float | None = None,
) -> dict[str, Any]:
    """What bench.kiosk_load does: which kiosks, how, when (wall-clock times)."""
    if start is None:
        start = time.time() + 2.0 + kiosks / 500  # let every kiosk connect first
    return {
        "url": url,
        "tokens": seeded.tokens[:kiosks],
        "payloads": seeded.payloads[:kiosks],
        "transport": transport,
        "start_at": start,
        "measure_from": start + min(2.0, seconds / 4),
        "end_at": start + seconds,
        "interval_s": kiosks / rate if rate else None,
    }


class LoadProcess:
    """A load process (`python -m module PLAN.json`) started now; `result()` waits for
    its end and returns the JSON line it printed. Started ahead of its plan's start_at,
    it has imported what it needs by then and waits for the time itself. With `control`,
    its stdin is a pipe, and `tell` sends it a line."""

    def __init__(self, module: str, plan: dict[str, Any], *, control: bool = False) -> None:
        self.module, self.plan = module, plan
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(plan, f)
        self.plan_file = f.name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, f.name],
            stdin=subprocess.PIPE if control else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        try:
            out, err = self.proc.communicate(timeout=self.plan["end_at"] - time.time() + 120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"{self.module} did not stop") from None
        finally:
            os.unlink(self.plan_file)
        if self.proc.returncode != 0:
            raise RuntimeError(f"{self.module} failed: {err[-2000:]}")
        result: dict[str, Any] = json.loads(out)
        return result


def run_load(module: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Run a load process to its end; its JSON result."""
    return LoadProcess(module, plan).result()


def load(
    service: Service,
    seeded: Seeded,
    kiosks: int,
    seconds: float,
    transport: str,
    rate: float | None = None,
) -> dict[str, Any]:
    plan = kiosk_plan(service.url, seeded, kiosks, seconds, transport, rate)
    window = (plan["measure_from"], plan["end_at"])
    with watch([service.proc.pid], service.db_url, window) as peaks:
        result = run_load("bench.kiosk_load", plan)
    result["service_open_files"] = peaks.open_files
    result["db_connections"] = peaks.db_connections
    # CPU per decision: what one costs the service and the database server, in µs.
    decisions = result["per_second"] * peaks.window_s
    result["cpu_us"] = {
        "service": round(peaks.service_cpu_s / decisions * 1e6) if decisions else None,
        "postgres": round(peaks.db_cpu_s / decisions * 1e6) if decisions else None,
    }
    result["checkpoints"] = peaks.checkpoints
    return result


def analyze(db_url: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(go())


def ceilings(server_url: str, kiosks: int, seconds: float) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    with fresh_database(server_url) as db_url:
        seeded = seed_database(db_url, kiosks)
        gates = prepare(db_url, seeded)
        log("warming up the ceilings' database")
        warm_up = CEILINGS_BY_LABEL[THROUGHPUT_CEILING]
        pgbench(db_url, seeded, gates, warm_up, max(2.0, seconds / 3))
        analyze(db_url)
        for ceiling in CEILINGS:
            log(f"ceiling: {ceiling.label} ({ceiling.what}) for {seconds:.0f}s")
            found[ceiling.label] = figure = pgbench(db_url, seeded, gates, ceiling, seconds)
            log(
                f"  -> {figure['scans_per_s']:,} scans/s, p50 {figure['p50_ms']} ms, "
                f"p99 {figure['p99_ms']} ms"
            )
    return found


def run(
    kiosk_counts: Sequence[int] = (10, 200),
    seconds: float = 10,
    transports: Sequence[str] = ("ws",),
) -> dict[str, Any]:
    limits = raise_open_files(max(kiosk_counts))
    log(f"open files: soft limit {limits.before} -> {limits.soft} (hard {limits.hard})")
    result: dict[str, Any] = {"scenarios": [], "ceilings": {}, "open_files": limits.__dict__}
    with server() as server_url:
        result["ceilings"] = ceilings(server_url, max(kiosk_counts), seconds)
        for transport in transports:
            for kiosks in kiosk_counts:
                with fresh_database(server_url) as db_url:
                    log(f"{kiosks} kiosks over {transport}: seeding, starting the service")
                    seeded = seed_database(db_url, kiosks)
                    with Service(db_url) as service:
                        log(f"{kiosks} kiosks over {transport}: warming up")
                        load(service, seeded, kiosks, max(4.0, seconds / 2), transport)
                        analyze(db_url)
                        log(f"{kiosks} kiosks over {transport}, closed loop, {seconds:.0f}s")
                        peak = load(service, seeded, kiosks, seconds, transport)
                        log("  -> " + summary(peak))
                        scenario: dict[str, Any] = {
                            "kiosks": kiosks,
                            "transport": transport,
                            "peak": peak,
                        }
                        if peak["per_second"] > 0:
                            half = peak["per_second"] / 2
                            runs = []
                            for n in range(1, HALF_RATE_RUNS + 1):
                                # Scans the previous run left in flight are still
                                # decided after its kiosks hang up; let them drain first.
                                time.sleep(2.0)
                                log(
                                    f"{kiosks} kiosks over {transport} at {half:.0f}/s "
                                    f"(half rate), run {n} of {HALF_RATE_RUNS}"
                                )
                                runs.append(
                                    load(service, seeded, kiosks, seconds, transport, rate=half)
                                )
                                log("  -> " + summary(runs[-1]))
                            scenario["half_rate"] = median_run(runs)
                        result["scenarios"].append(scenario)
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median p99, with every run's p99 (sorted) beside it."""
    by_p99 = sorted(runs, key=lambda r: r["p99_ms"] if r["p99_ms"] is not None else math.inf)
    return by_p99[(len(by_p99) - 1) // 2] | {"p99s_ms": [r["p99_ms"] for r in by_p99]}


def p99_text(r: dict[str, Any]) -> str:
    """A run's p99; for the median of several, with their range."""
    spread = r.get("p99s_ms")
    if not spread or len(spread) < 2:
        return str(r["p99_ms"])
    return f"{r['p99_ms']} ({spread[0]}–{spread[-1]})"


def summary(r: dict[str, Any]) -> str:
    failures = f" (first: {r['kiosk_errors'][0]})" if r["kiosk_errors"] else ""
    return (
        f"{r['per_second']:,.0f} decisions/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
        f"all connected in {r['connected_s']} s (clock moved {r['start_shift_s']} s), "
        f"{r['errors']} errors, {r['kiosks_failed']} kiosks failed{failures}, service: "
        f"{r['service_open_files']} open files, {r['db_connections']} db connections; "
        f"CPU per decision: service {r['cpu_us']['service']} µs, PostgreSQL "
        f"{r['cpu_us']['postgres']} µs; {r['checkpoints']} checkpoint(s)"
    )


def to_markdown(result: dict[str, Any]) -> str:
    ceiling = result["ceilings"].get(THROUGHPUT_CEILING, {}).get("scans_per_s")
    lines = [
        "| scenario | decisions/s | p50 ms | p99 ms | ceiling (pgbench, 10 scans/tx) | ratio "
        "| not decided | service: open files, db connections "
        "| CPU per decision, µs: service / PostgreSQL | checkpoints |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for s in result["scenarios"]:
        for key, label in (("peak", "closed loop"), ("half_rate", "at half rate")):
            if key not in s:
                continue
            r = s[key]
            ratio = f"{r['per_second'] / ceiling:.2f}" if ceiling else "-"
            failed = r["errors"] + r["kiosks_failed"]
            lines.append(
                f"| {s['kiosks']:,} kiosks, {s['transport']}, {label} | {r['per_second']:,.0f} "
                f"| {r['p50_ms']} | {p99_text(r)} | {ceiling or 0:,} | {ratio} | {failed} "
                f"| {r['service_open_files']:,}, {r['db_connections']} "
                f"| {r['cpu_us']['service']} / {r['cpu_us']['postgres']} | {r['checkpoints']} |"
            )
    lines.append("")
    lines.append("| ceiling | pgbench | scans/s | p50 ms | p99 ms |")
    lines.append("|---|---|---:|---:|---:|")
    for name, c in result["ceilings"].items():
        lines.append(
            f"| {name} | {c['what']} | {c['scans_per_s']:,} | {c['p50_ms']} | {c['p99_ms']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--kiosks", default="10,200,1000", help="kiosk counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--http", action="store_true", help="also over plain HTTP")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    counts = [int(k) for k in args.kiosks.split(",")]
    transports = ("ws", "http") if args.http else ("ws",)
    result = run(counts, args.seconds, transports)
    sys.stdout.write(to_markdown(result) + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
