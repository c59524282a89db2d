"""Check-in benchmark: simulated kiosks against the real service on the real database,
and, in the same run, pgbench running the same check-in SQL as the ceiling.

    .venv/bin/python -m bench.checkin_bench [--kiosks 10,200] [--seconds 10] [--quick]

Scenarios: for each kiosk count, closed-loop kiosks over WebSockets (and over plain
HTTP with --http): decisions per second, p50 and p99 latency; then the latency at half
the measured rate (open loop). Ceilings: pgbench with one scan per transaction, with
one scan and a NOTIFY per transaction, and with ten scans per transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
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

from bench.pg import fresh_database, libpq_env, pgbench_path, server
from bench.seed import Seeded, seed
from service.db import init_connection

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PEOPLE_PER_KIOSK = 40


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
    """`checkin-gateway serve` as its own process, on a free port."""

    def __init__(self, db_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ) | {
            "DATABASE_URL": db_url,
            "CHECKIN_PORT": str(self.port),
            "CHECKIN_LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"], env=env, cwd=PROJECT_ROOT
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


def load(
    service: Service,
    seeded: Seeded,
    kiosks: int,
    seconds: float,
    transport: str,
    rate: float | None = None,
) -> dict[str, Any]:
    start = time.time() + 2.0 + kiosks / 500  # let every kiosk connect first
    plan = {
        "url": service.url,
        "tokens": seeded.tokens[:kiosks],
        "payloads": seeded.payloads[:kiosks],
        "transport": transport,
        "start_at": start,
        "measure_from": start + min(2.0, seconds / 4),
        "end_at": start + seconds,
        "interval_s": kiosks / rate if rate else None,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan, f)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.kiosk_load", f.name],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            timeout=seconds + 120,
            check=True,
        )
    finally:
        os.unlink(f.name)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


SCAN_SCRIPT = Path(__file__).with_name("checkin_scan.pgbench")


def checkin_script(n_scans: int, notify: bool) -> str:
    """The check-in transaction in pgbench's language: the statements the service runs
    for a batch of n scans (lock the chain, read the state, append, update presence),
    one round trip each. The per-scan block uses :p for the person; scan i gets :p{i}."""
    block = SCAN_SCRIPT.read_text(encoding="utf-8")
    lines = [f"\\set p{i} random(1, :npeople)" for i in range(n_scans)]
    lines += ["BEGIN;", "SELECT last_seq FROM event_chains WHERE chain_id = :site FOR UPDATE;"]
    lines += [block.replace(":p", f":p{i}").rstrip("\n") for i in range(n_scans)]
    lines.append("SELECT count(*) FROM presence WHERE site_id = :site AND exited_at IS NULL;")
    if notify:
        lines.append("SELECT pg_notify('bench', 'x');")
    lines.append("END;")
    return "\n".join(lines) + "\n"


def pgbench(db_url: str, seeded: Seeded, n_scans: int, notify: bool, seconds: float) -> float:
    """Scans per second that pgbench gets through the same SQL (tps x scans per tx)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(checkin_script(n_scans, notify))
    try:
        done = subprocess.run(
            [
                pgbench_path(),
                "-n",
                "-M",
                "prepared",
                "-c",
                "32",
                "-j",
                "2",
                "-T",
                str(int(seconds)),
                "-f",
                f.name,
                "-D",
                f"site={seeded.site_id}",
                "-D",
                f"gate={seeded.gate_ids[0]}",
                "-D",
                f"npeople={len(seeded.person_ids)}",
            ],
            capture_output=True,
            text=True,
            env=libpq_env(db_url),
            timeout=seconds + 60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
    finally:
        os.unlink(f.name)
    match = re.search(r"tps = ([0-9.]+)", done.stdout)
    if match is None:
        raise RuntimeError(f"pgbench said: {done.stdout}\n{done.stderr}")
    return float(match[1]) * n_scans


def run(
    kiosk_counts: Sequence[int] = (10, 200),
    seconds: float = 10,
    transports: Sequence[str] = ("ws",),
) -> dict[str, Any]:
    result: dict[str, Any] = {"scenarios": [], "ceilings": {}}
    with server() as server_url:
        with fresh_database(server_url) as db_url:
            seeded = seed_database(db_url, max(kiosk_counts))
            for label, n, notify in (
                ("pgbench_1_per_tx", 1, False),
                ("pgbench_1_per_tx_notify", 1, True),
                ("pgbench_10_per_tx", 10, False),
            ):
                log(f"ceiling: {label} for {seconds:.0f}s")
                result["ceilings"][label] = round(pgbench(db_url, seeded, n, notify, seconds))
        for transport in transports:
            for kiosks in kiosk_counts:
                with fresh_database(server_url) as db_url:
                    seeded = seed_database(db_url, kiosks)
                    with Service(db_url) as service:
                        log(f"{kiosks} kiosks over {transport}, closed loop, {seconds:.0f}s")
                        peak = load(service, seeded, kiosks, seconds, transport)
                        scenario = {"kiosks": kiosks, "transport": transport, "peak": peak}
                        if peak["per_second"] > 0:
                            half = peak["per_second"] / 2
                            log(f"{kiosks} kiosks over {transport} at {half:.0f}/s (half rate)")
                            scenario["half_rate"] = load(
                                service, seeded, kiosks, seconds, transport, rate=half
                            )
                        result["scenarios"].append(scenario)
    return result


def to_markdown(result: dict[str, Any]) -> str:
    ceiling = result["ceilings"].get("pgbench_10_per_tx")
    lines = [
        "| scenario | decisions/s | p50 ms | p99 ms | ceiling (pgbench, 10 scans/tx) | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in result["scenarios"]:
        for key, label in (("peak", "closed loop"), ("half_rate", "at half rate")):
            if key not in s:
                continue
            r = s[key]
            ratio = f"{r['per_second'] / ceiling:.2f}" if ceiling else "-"
            lines.append(
                f"| {s['kiosks']} kiosks, {s['transport']}, {label} | {r['per_second']:,.0f} "
                f"| {r['p50_ms']} | {r['p99_ms']} | {ceiling:,} | {ratio} |"
            )
    lines.append("")
    lines.append("| ceiling | scans/s |")
    lines.append("|---|---:|")
    for name, value in result["ceilings"].items():
        lines.append(f"| {name} | {value:,} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--kiosks", default="10,200", help="kiosk counts, comma-separated")
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
