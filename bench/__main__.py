"""`make bench`: every benchmark scenario, then docs/benchmarks.md.

    .venv/bin/python -m bench [--photos ../shared/qr-photos] [--kiosks 10,200,1000]
                              [--consoles 1,100] [--fanout-rate 20] [--seconds 10]
                              [--attack-kiosks 200] [--attack-seconds 10]
                              [--attack-events 1000000]
                              [--attacks-only | --health-only | --sweep-only | --decode-only
                               | --revocation-only | --rotating-only | --latency-only
                               | --pgbouncer-only]
                              [--revocation-kiosks 100]
                              [--quick]
                              [--out docs/benchmarks.md]

`--attacks-only` runs only the attack benchmark (the door's latency, quiet and under
each attack; about 3 minutes) and replaces its section and its summary rows in --out,
keeping the rest of the file. `--health-only` does the same for the health desk's
benchmark (re-screen of 100,000 declarations, a case's trace + suspend over 1,000,000
events; about 2 minutes), `--sweep-only` for the automatic check-out sweep over 100,000
open stays, `--decode-only` for decoding, and `--revocation-only` for a pass revoked to
every connected kiosk knowing it (about a minute), and `--rotating-only` for the
rotating pass check's cost per scan on the kiosk (a few seconds), and `--latency-only` for
the kiosk's frame-to-verdict latency with the live service (about a minute), and
`--pgbouncer-only` for 1,000 kiosks straight to PostgreSQL and through PgBouncer (it
needs DATABASE_URL to name a TCP server; kept across a full run, as chaos-ha's is).

Each figure is reported next to a ceiling measured in the same run (pgbench running
the same check-in SQL; a raw LISTEN/NOTIFY round trip; PostgreSQL's own COPY), as a
ratio, so runs on different machines compare. Progress goes to stderr as it runs.

1,000 kiosks are 1,000 sockets in the load process and 1,000 in the service: the bench
raises its soft open-file limit (RLIMIT_NOFILE) to the hard limit, at most 65,536, and
the processes it starts inherit it (bench/limits.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    attack_bench,
    checkin_bench,
    decode_bench,
    export_bench,
    fanout_bench,
    health_bench,
    kiosk_latency,
    pgbouncer_bench,
    revocation_bench,
    rotating_bench,
    summary,
    sweep_bench,
    trace_bench,
)
from bench.kept import kept_sections
from bench.limits import raise_open_files

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cores = os.cpu_count()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    return f"{platform.machine()}, {cores} cores{memory}"


class Steps:
    """Numbered progress lines with the time since the start."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def next(self, what: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        checkin_bench.log(f"step {self.done}/{self.total} at {elapsed:.0f}s: {what}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--photos", type=Path, default=decode_bench.DEFAULT_PHOTOS)
    parser.add_argument("--kiosks", default="10,200,1000")
    parser.add_argument("--consoles", default="1,100")
    parser.add_argument("--fanout-rate", type=float, default=20.0, help="scans/s while fanning out")
    parser.add_argument("--seconds", type=float, default=10.0, help="per load scenario")
    parser.add_argument("--attack-kiosks", type=int, default=200, help="kiosks under attack")
    parser.add_argument("--attack-seconds", type=float, default=10.0, help="per attack phase")
    parser.add_argument("--attack-events", type=int, default=1_000_000, help="in the export")
    parser.add_argument(
        "--attacks-only", action="store_true", help="only the attack benchmark (see above)"
    )
    parser.add_argument(
        "--sweep-only", action="store_true", help="only the automatic check-out sweep"
    )
    parser.add_argument(
        "--decode-only",
        action="store_true",
        help="only the decode benchmark (photos, phone screens, 720p speed, the photos again "
        "under a CPU hog), into its section of --out",
    )
    parser.add_argument(
        "--health-only", action="store_true", help="only the health desk benchmark (see above)"
    )
    parser.add_argument(
        "--revocation-only", action="store_true", help="only the revocation benchmark"
    )
    parser.add_argument("--revocation-kiosks", type=int, default=100, help="kiosks told")
    parser.add_argument(
        "--rotating-only", action="store_true", help="only the rotating pass check (see above)"
    )
    parser.add_argument("--latency-only", action="store_true", help="only the kiosk's latency")
    parser.add_argument("--pgbouncer-only", action="store_true", help="only PgBouncer or not")
    parser.add_argument("--quick", action="store_true", help="fewer photos, shorter runs")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    seconds = 4.0 if args.quick else args.seconds
    kiosks = [int(k) for k in args.kiosks.split(",")]
    consoles = [int(n) for n in args.consoles.split(",")]
    command = (
        "make bench"
        if argv is None and len(sys.argv) == 1
        else "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    limits = raise_open_files(max(kiosks + consoles + [args.attack_kiosks]))
    attack_args = (
        args.attack_kiosks,
        5.0 if args.quick else args.attack_seconds,
        100_000 if args.quick else args.attack_events,
    )
    if args.revocation_only:
        revocation = revocation_bench.run(args.revocation_kiosks)
        write_section(
            args.out, revocation_bench.section(revocation, command), [], (), "## Audit export"
        )
        sys.stdout.write(revocation_bench.to_markdown(revocation) + "\n")
        checkin_bench.log(f"updated the revocation section of {args.out}")
        return 0
    if args.rotating_only:
        rotating = rotating_bench.run()
        section = rotating_bench.section(rotating, command)
        write_section(args.out, section, [], (), None)
        sys.stdout.write(section)
        return 0
    if args.pgbouncer_only:
        section = pgbouncer_bench.section(pgbouncer_bench.run(max(kiosks), seconds), command)
        write_section(args.out, section, [], (), "## Kiosk: frame to verdict")
        sys.stdout.write(section)
        return 0
    if args.latency_only:
        section = kiosk_latency.section(kiosk_latency.run(), command)
        write_section(args.out, section, [], (), kiosk_latency.BEFORE)
        sys.stdout.write(section)
        return 0
    if args.attacks_only:
        started = time.monotonic()
        attacks = attack_bench.run(*attack_args)
        took = time.monotonic() - started
        write_attacks(args.out, attack_bench.section(attacks, command, took), attacks)
        sys.stdout.write(attack_bench.to_markdown(attacks) + "\n")
        checkin_bench.log(f"updated the attack section of {args.out} in {took:.0f}s")
        return 0
    health_args = ["--declarations", "10000", "--events", "100000"] if args.quick else []
    if args.health_only:
        started = time.monotonic()
        health = health_bench.measure(health_args)
        section = health_section(health, command)
        rows = summary.to_markdown(summary.health_rows(health), machine()).splitlines()[2:]
        write_section(args.out, section, rows, summary.HEALTH_ROW_PREFIXES, "## Decoding")
        sys.stdout.write(section + "\n")
        took = time.monotonic() - started
        checkin_bench.log(f"updated the health desk section of {args.out} in {took:.0f}s")
        return 0
    if args.sweep_only:
        sweep = sweep_bench.measure()
        write_section(args.out, sweep_bench.section(sweep, command), [], (), "## Decoding")
        sys.stdout.write(sweep_bench.to_markdown(sweep) + "\n")
        return 0
    if args.decode_only:
        started = time.monotonic()
        decode = decode_bench.run(args.photos, quick=args.quick, hog=True)
        took = time.monotonic() - started
        rows = summary.to_markdown(summary.decode_rows(decode), machine()).splitlines()[2:]
        section = decode_section(decode, command, took)
        write_section(args.out, section, rows, (summary.DECODE_ROW_PREFIX,), None)
        sys.stdout.write(decode_bench.to_markdown(decode) + "\n")
        checkin_bench.log(f"updated the decode section of {args.out} in {took:.0f}s")
        return 0
    checkin_bench.log(
        f"open files: soft limit {limits.before} -> {limits.soft} (hard {limits.hard}); "
        f"{seconds:.0f}s per load scenario; writing {args.out}"
    )

    steps = Steps(9)
    steps.next("check-in: kiosks over WebSockets and HTTP, against pgbench")
    checkin = checkin_bench.run(kiosks, seconds, ("ws", "http"))
    steps.next("fan-out: consoles on another instance, against a raw LISTEN/NOTIFY")
    fanout = fanout_bench.run(consoles, args.fanout_rate, seconds)
    steps.next("revocation: a pass revoked to every connected kiosk knowing it")
    revocation = revocation_bench.run(args.revocation_kiosks, 10 if args.quick else 20)
    steps.next("export: events as CSV, against COPY")
    export = export_bench.run(100_000 if args.quick else 1_000_000)
    steps.next("trace: a year of stays")
    trace = trace_bench.measure(["--events", "100000"] if args.quick else [])
    steps.next("health desk: re-screen of declarations, a case's trace + suspend")
    health = health_bench.measure(health_args)
    steps.next("automatic check-out: the sweep over 100,000 open stays")
    sweep = sweep_bench.measure()
    steps.next("decode: photographs, 720p throughput, the kiosk's frame-to-verdict latency")
    decode = decode_bench.run(args.photos, quick=args.quick, hog=True)
    rotating = rotating_bench.run()
    latency = kiosk_latency.run()
    steps.next("attacks: kiosk latency, quiet and under each attack")
    attack_started = time.monotonic()
    attacks = attack_bench.run(*attack_args)
    attack_took = time.monotonic() - attack_started

    table = summary.rows(checkin, fanout, export, trace, decode, health, attacks)
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
            f"{time.monotonic() - steps.started:.0f} s.",
            f"Machine: {machine()}, Python {platform.python_version()}. The service, "
            "PostgreSQL and the load generators share it. Open files (RLIMIT_NOFILE soft "
            f"limit) for the bench and what it starts: {limits.soft}"
            + (f", raised from {limits.before}." if limits.before != limits.soft else "."),
            "",
            "## Summary",
            "",
            "Throughput ratios are figure / ceiling; latency ratios are figure / floor "
            "(how many times the bare database operation the figure takes).",
            "",
            summary.to_markdown(table, machine()),
            "",
            "## Check-in: decisions per second and latency",
            "",
            "Closed loop: every kiosk keeps one scan in flight. Half rate: open loop at half the",
            "closed-loop rate, to read latency below saturation; run "
            f"{checkin_bench.HALF_RATE_RUNS} times, the run with the median p99 is shown,",
            "with the range of the p99s in brackets (on two shared cores the same code's",
            "p99 at 200 kiosks went from 12 to 50 ms between runs). HTTP kiosks open their",
            "keep-alive connection (a heartbeat) before the clock starts, as WebSocket kiosks",
            "connect first. Ceiling: pgbench making the service's two check-in calls",
            "(bench/ceilings.py) on the same database server. Not decided: answers",
            "that were not a decision (503, errors) and kiosks that failed. The service's open",
            "files and database connections are the peaks sampled while it ran: its pool stays",
            "at `CHECKIN_POOL_MAX_SIZE` (20, plus the LISTEN connection) however many kiosks",
            "connect. Each database is warmed up by a short load and ANALYZEd before it is",
            "measured.",
            "",
            checkin_bench.to_markdown(checkin),
            "",
            attack_bench.section(attacks, command, attack_took),
            "",
            "Reading these: every check-in write locks its site's event-chain head until it",
            "commits (that lock orders the hash chain). pgbench's 32 clients on one site hold",
            "it from their read to their commit (else most of their writes would be refused),",
            "so they queue on it, and its rate is the lock's rate: one scan per transaction is",
            "bounded by the transaction's length, ten per transaction by ten times that. Spread",
            "over 1,000 sites the same transaction is bounded by the database's commit rate",
            "instead. The service reads without the lock, and holds it only while PostgreSQL",
            "writes and commits a batch of all the scans waiting at a moment (a write is",
            "refused, and the batch decided again, if the site moved since its read). What",
            "bounds it then is the service process itself (JSON, validation, hashing and the",
            "decision in Python on one event loop) and its two round trips a batch; see",
            "docs/scaling.md.",
            "",
            "## Fan-out: scan recorded to console",
            "",
            f"{fanout['kiosks']} kiosks scan at {fanout['rate']:.0f} scans/s on instance A; "
            "consoles watch the site's live feed",
            "on instance B (another `checkin-gateway serve` on the same database), so every",
            "event crosses instances by LISTEN/NOTIFY; the last run puts them on A. Latency: from",
            "the kiosk receiving its decision (sent only after commit) to each console receiving",
            "the event. Ceiling: the raw LISTEN/NOTIFY round trip measured with asyncpg on the",
            "same server in the same run, the least a delivery between instances can cost. (The",
            "same measurement with 1 console is the first row: the ratio of the 100-console row",
            "to it is the cost of fanning out.) Delivered counts (event, console) pairs; every",
            "console checks that seqs follow each other with no gap and no duplicate.",
            "",
            fanout_bench.to_markdown(fanout),
            "",
            revocation_bench.section(revocation, command),
            "## Audit export and contact tracing",
            "",
            "Export: `GET /api/v1/audit/events?format=csv` through the running service (the",
            "CSV is made by PostgreSQL's COPY and streamed through), against `COPY ... TO",
            "STDOUT` of the same rows; memory is the service's resident size. Trace: the",
            "`/api/v1/trace` query over a 14-day window on a year of stays of one site, one",
            "GiST scan per stay of the person (before 2026-12-08 the estimated ends of issue",
            "22 had made the planner hash-join the whole site: median 425.8 ms, max 967.8",
            "ms). An export streams paced while scans come in (the attacks below); here",
            "none do.",
            "",
            export_bench.to_markdown(export),
            "",
            trace_bench.HEADER,
            trace_bench.to_markdown(trace),
            "",
            health_section(health, command),
            "",
            sweep_bench.section(sweep, command),
            decode_section(decode, command, None),
            "",
            rotating_bench.section(rotating, command),
            "",
            kiosk_latency.section(latency, command),
        ]
    )
    text += kept_sections(args.out)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    checkin_bench.log(f"wrote {args.out} in {time.monotonic() - steps.started:.0f}s")
    return 0


DECODE_HEADING = "## Decoding"
DECODE_NOTES = """\
Photographs: the dev half of the labelled collection (`--photos`; the bench skips them,
saying so, when the folder is absent). A code is found when a decoded code's centre is
inside a labelled polygon (BoofCV images) or by its expected text (zxing-cpp samples);
"by texts" counts distinct texts per image (capped), which caps `lots` (60 codes, 14
texts an image). The pipelines' work is fixed per frame (a budget of estimated CPU ms),
so the run under a CPU hog (a spinning process on the other core) must give the same
result for every image. Phone screens and 720p frames come from seeded generators
(bench/phone_screens.py, bench/decode_speed.py; seed 22's frames were not looked at when
the deblur settings were chosen on seeds 20 and 21); fps is 1 / CPU time of the decoding
thread, on one core (OpenCV threads 1), with the load average of the shared machine
(wall-clock fps on two cores shared with other work are noisy; CPU time is not)."""


HEALTH_HEADING = "## Health desk: re-screen and a case's trace + suspend"


def health_section(health: dict[str, Any], command: str) -> str:
    return "\n".join(
        [
            HEALTH_HEADING,
            "",
            "Flagging an area re-screens the site's current declarations in the flagging",
            "transaction; recording a case traces its infectious window, and suspending its",
            "contacts writes one suspension and one chained event each (bench/health_bench.py;",
            "each run rolled back; seeded with set-based SQL).",
            f"Measured on {datetime.now(UTC):%Y-%m-%d} with `{command}`, on {machine()}"
            f" (load average {os.getloadavg()[0]:.1f}, the cores shared).",
            "",
            health_bench.HEADER,
            health_bench.to_markdown(health),
        ]
    )


def write_section(
    out: Path, section: str, rows: list[str], prefixes: Sequence[str], before: str | None
) -> None:
    """Replace one benchmark's section (its first line is its heading; new ones go
    before the heading `before`, or at the end) and its summary rows (those starting
    with `| ` and one of `prefixes`) in `out`, keeping the rest."""
    if not out.exists():
        out.write_text("# Benchmarks\n\n" + section + "\n", encoding="utf-8")
        return
    heading = section.splitlines()[0]
    lines = out.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not any(line.startswith("| " + p) for p in prefixes)]
    if "## Summary" in kept:
        at = kept.index("## Summary")
        while at < len(kept) and not kept[at].startswith("| scenario |"):
            at += 1
        while at < len(kept) and kept[at].startswith("|"):
            at += 1
        kept[at:at] = rows
    if heading in kept:
        start = kept.index(heading)
        end = next((i for i in range(start + 1, len(kept)) if kept[i].startswith("## ")), len(kept))
        kept[start:end] = [*section.splitlines(), ""]
    else:
        end = next(
            (i for i, line in enumerate(kept) if before and line.startswith(before)), len(kept)
        )
        kept[end:end] = [*section.splitlines(), ""]
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")


def decode_section(decode: dict[str, Any], command: str, took: float | None) -> str:
    when = f"Measured by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    when += f" in {took:.0f} s." if took is not None else "."
    return "\n".join(
        [DECODE_HEADING, "", when, "", DECODE_NOTES, "", decode_bench.to_markdown(decode)]
    )


def write_attacks(out: Path, section: str, attacks: dict[str, Any]) -> None:
    """Replace the attack section (before the fan-out one if the file has none yet) and
    the attack rows of the summary in `out`."""
    rows = summary.to_markdown(summary.attack_rows(attacks), machine()).splitlines()[2:]
    write_section(out, section, rows, (summary.ATTACK_ROW_PREFIX,), "## Fan-out")


if __name__ == "__main__":
    sys.exit(main())
