"""`make bench`: every benchmark scenario, then docs/benchmarks.md.

    .venv/bin/python -m bench [--photos ../shared/qr-photos] [--kiosks 10,200]
                              [--seconds 10] [--quick] [--out docs/benchmarks.md]

Each figure is reported next to a ceiling measured in the same run (pgbench running
the same check-in SQL), as a ratio, so runs on different machines compare.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import checkin_bench, decode_bench, export_bench, trace_bench

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cores = os.cpu_count()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    return f"{platform.machine()}, {cores} cores{memory}, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--photos", type=Path, default=decode_bench.DEFAULT_PHOTOS)
    parser.add_argument("--kiosks", default="10,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="fewer photos, shorter runs")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    seconds = 4.0 if args.quick else args.seconds
    command = (
        "make bench"
        if argv is None and len(sys.argv) == 1
        else "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    )

    checkin_bench.log("check-in: kiosks over WebSockets and HTTP, against pgbench")
    checkin = checkin_bench.run([int(k) for k in args.kiosks.split(",")], seconds, ("ws", "http"))
    checkin_bench.log("export: 1,000,000 events as CSV, against COPY")
    export = export_bench.run(100_000 if args.quick else 1_000_000)
    checkin_bench.log("trace: a year of stays")
    trace = trace_bench.measure(["--events", "100000"] if args.quick else [])
    checkin_bench.log("decode: photographs and 720p throughput")
    decode = decode_bench.run(args.photos, quick=args.quick)

    text = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
            f"Machine: {machine()}. The service, PostgreSQL and the load generator share it.",
            "",
            "## Check-in: decisions per second and latency",
            "",
            "Closed loop: every kiosk keeps one scan in flight. Half rate: open loop at half the",
            "closed-loop rate, to read latency below saturation. Ceiling: pgbench running the",
            "check-in SQL (bench/checkin_scan.pgbench) on the same database server, 32 clients.",
            "",
            checkin_bench.to_markdown(checkin),
            "",
            "Reading these: every check-in transaction locks its site's event-chain head until",
            "it commits (that lock orders the hash chain and keeps presence and capacity exact",
            "across instances). pgbench's 32 clients on one site therefore queue on that lock,",
            "and its rate is the lock's rate: one scan per transaction is bounded by the",
            "transaction's length, ten per transaction by ten times that. The service groups",
            "the scans waiting at a moment into one transaction under one lock, which is why",
            "it passes the ceiling. What bounds it now is the service process itself (JSON,",
            "validation, hashing and the decision in Python on one event loop, about 150 µs",
            "of CPU a scan) and the time the lock is held while that loop is busy.",
            "",
            "## Audit export and contact tracing",
            "",
            "Export: `GET /api/v1/audit/events?format=csv` through the running service (the",
            "CSV is made by PostgreSQL's COPY and streamed through), against `COPY ... TO",
            "STDOUT` of the same rows; memory is the service's resident size. Trace: the",
            "`/api/v1/trace` query over a 14-day window on a year of stays of one site.",
            "",
            export_bench.to_markdown(export),
            "",
            trace_bench.HEADER,
            trace,
            "",
            "## Decoding",
            "",
            decode_bench.to_markdown(decode),
            "",
        ]
    )
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
