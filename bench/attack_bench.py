"""Attack benchmark: the door's latency, quiet and under each attack, in one run.

    .venv/bin/python -m bench.attack_bench [--kiosks 200] [--seconds 10]
                                           [--events 1000000] [--quick]

Kiosks (bench.kiosk_load, over WebSockets) scan at a door's pace: each one person
every SCAN_INTERVAL_S, open loop, and a scan's latency counts from when it was due (a
kiosk still waiting for an answer keeps the next person waiting too). They stay
connected through every phase, as doors do, and are measured per phase: quiet, then
under each attack in turn, each attack run by its own process (bench.attackers) against
127.0.0.1, for `seconds`, stopping by itself; the next phase starts once the service
has answered the last request of the previous attack (see `phases`).

The attacks: 8 login flooders, 8 clients posting declarations, a CSV export of 1M
events (read to the end, one after another; the one in flight when the phase ends is
cut off), 8 clients rendering pass PNGs over
thousands of passes. Every attack runs twice, each time against a service of its own
on the same database: with the default limits (one attacker address: all bench clients
are 127.0.0.1), and with the per-address limits raised out of reach (a distributed
attacker: the limits do not help, only keeping CPU work off the loop does).

The goal: under each attack, the kiosks' p99 at most GOAL times the quiet p99 of the
same service in the same run. A decision slower than the kiosk's answer timeout
(scanner's ack_timeout) is one the door made offline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import export_bench, kiosk_load, load_plan
from bench.checkin_bench import LoadProcess, Service, kiosk_plan, log, seed_database
from bench.limits import raise_open_files
from bench.pg import fresh_database, server
from bench.watch import cpu_seconds
from scanner.kiosk_config import KioskConfig
from service.passes.keys import key_store_for, rotate
from service.passes.links import pass_links_for

# One person every 1.5 s at each door: a turnstile at the morning rush.
SCAN_INTERVAL_S = 1.5
GOAL = 1.5
CLIENTS = 8
WARM_UP_S = 3.0
LAUNCH_S = 2.0
PAUSE_S = 1.0
ACK_TIMEOUT_S = KioskConfig.ack_timeout
RAISED_LIMITS: dict[str, str] = {
    "CHECKIN_LOGIN_PER_MINUTE_PER_ADDRESS": "100000",
    "CHECKIN_PUBLIC_PER_MINUTE_PER_ADDRESS": "1000000",
}
LIMITS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("one address", "default limits: all attackers come from one address", {}),
    (
        "distributed",
        "per-address limits raised out of reach ("
        + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items())
        + "): attackers from many addresses",
        RAISED_LIMITS,
    ),
)
ATTACKS = ("login", "declarations", "export", "png")


def attack_name(attack: str, clients: int, events: int) -> str:
    return {
        "login": f"{clients} login flooders",
        "declarations": f"{clients} clients posting declarations",
        "export": f"CSV export of {events:,} events",
        "png": f"{clients} clients rendering pass PNGs",
    }[attack]


async def signing_key_and_passes(db_url: str, data_dir: Path) -> list[str]:
    """A signing key the service holds (declarations get passes signed; the seeded
    passes' key, public only, keeps verifying as the retiring one), and the passes' PNG
    links, each with its key as the pass page gives it."""
    conn = await asyncpg.connect(db_url)
    links = pass_links_for(data_dir)
    try:
        await rotate(conn, key_store_for(data_dir))
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM passes ORDER BY id")]
        return [f"/api/v1/passes/{i}/qr.png?key={links.key_for(i)}" for i in ids]
    finally:
        await conn.close()


def _sleep_until(wall_time: float) -> None:
    time.sleep(max(0.0, wall_time - time.time()))


class CpuTrace:
    """A process's CPU time, sampled every `every_s` in a thread of its own, so that the
    share of any stretch of time can be read afterwards."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, args=(pid, every_s), daemon=True)
        self.thread.start()

    def _sample(self, pid: int, every_s: float) -> None:
        while not self.done.is_set():
            self.samples.append((time.time(), cpu_seconds([pid])))
            self.done.wait(every_s)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def share(self, since: float, to: float) -> int | None:
        """CPU used from about `since` to about `to`, in % of one core."""
        inside = [s for s in self.samples if since <= s[0] <= to]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return round(100 * (c1 - c0) / (t1 - t0))


def kiosks_started(load: LoadProcess) -> float:
    """Wait until the kiosks are connected and their clock starts; how far it moved."""
    assert load.proc.stderr is not None
    for line in load.proc.stderr:
        if line.startswith(kiosk_load.STARTED):
            return float(line.removeprefix(kiosk_load.STARTED))
    raise RuntimeError(f"the kiosks did not start: {load.result()}")


def phases(
    service: Service,
    seeded: Any,
    *,
    kiosks: int,
    seconds: float,
    interval_s: float,
    attack_plans: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """One run of kiosks against `service`: quiet, then each attack; figures per phase.

    A phase is timed as it comes: an attacker process starts LAUNCH_S before its phase
    (its start-up is not measured; on a busy machine it begins later, and its phase
    with it), and the next phase waits until it has ended, which
    it does once the service has answered the last of its requests (a service that
    queued an attack's work is still busy with it after the attack: that is not the
    next attack's doing), then PAUSE_S more."""
    start = time.time() + 2.0 + kiosks / 200  # the kiosks' clock moves if they need longer
    warm_up, settle = min(WARM_UP_S, seconds), min(1.0, seconds / 4)
    plan = kiosk_plan(service.url, seeded, kiosks, 0, "ws", rate=kiosks / interval_s, start=start)
    plan |= {
        "measure_from": start + warm_up,
        "end_at": start + 3600.0,  # or when told
        "from_schedule": True,
        "samples": True,
        "until_told": True,
        "announce_start": True,
        "slow_after_s": ACK_TIMEOUT_S,
    }
    cpu = CpuTrace(service.proc.pid)
    kiosks_load = LoadProcess("bench.kiosk_load", plan, control=True)
    try:
        quiet_from = start + kiosks_started(kiosks_load) + warm_up
        windows = [(quiet_from + settle, quiet_from + seconds)]
        log(f"  quiet: {seconds:.0f}s")
        _sleep_until(quiet_from + seconds)
        attacked = []
        for attack, attack_plan in attack_plans.items():
            begin = time.time() + min(LAUNCH_S, seconds)
            log(f"  {attack}: {seconds:.0f}s")
            attacker = LoadProcess(
                "bench.attackers",
                attack_plan
                | {"url": service.url, "start_at": begin, "seconds": seconds, "end_at": begin},
            )
            attacked.append(attacker.result())
            began = attacked[-1]["began"]  # later than begin on a busy machine
            windows.append((began + settle, began + seconds))
            time.sleep(min(PAUSE_S, seconds))
    finally:
        kiosks_load.tell("stop")
        cpu.stop()
    measured = kiosks_load.result()
    per_phase = [
        load_plan.window(measured["samples"], since, to, ACK_TIMEOUT_S)
        | {"service_cpu_pct": cpu.share(since, to)}
        for since, to in windows
    ]
    return {
        "quiet": per_phase[0],
        "attacks": [
            {"attack": a, "kiosks": k, "attacker": r}
            for a, k, r in zip(attack_plans, per_phase[1:], attacked, strict=True)
        ],
        "kiosks_failed": measured["kiosks_failed"],
        "kiosk_errors": measured["kiosk_errors"],
        "start_shift_s": measured["start_shift_s"],
    }


def run(
    kiosks: int = 200,
    seconds: float = 10.0,
    events: int = 1_000_000,
    clients: int = CLIENTS,
    interval_s: float = SCAN_INTERVAL_S,
    only: Sequence[str] = ATTACKS,
) -> dict[str, Any]:
    raise_open_files(kiosks)
    result: dict[str, Any] = {
        "kiosks": kiosks,
        "interval_s": interval_s,
        "seconds": seconds,
        "events": events,
        "clients": clients,
        "load_average": round(os.getloadavg()[0], 1),
        "runs": [],
    }
    with (
        server() as server_url,
        fresh_database(server_url) as db_url,
        tempfile.TemporaryDirectory(prefix="cgw-bench-attacks-") as data_dir,
    ):
        log(f"attacks: seeding {kiosks} kiosks and {events:,} events")
        seeded = seed_database(db_url, kiosks)
        export_site, auditor = asyncio.run(export_bench.prepare(db_url, events))
        passes = asyncio.run(signing_key_and_passes(db_url, Path(data_dir)))
        attack_plans = {
            "login": {"attack": "login", "clients": clients},
            "declarations": {
                "attack": "declarations",
                "clients": clients,
                "site_id": seeded.site_id,
            },
            "export": {
                "attack": "export",
                "clients": 1,
                "token": auditor,
                "export_site_id": export_site,
            },
            "png": {"attack": "png", "clients": clients, "pass_paths": passes},
        }
        attack_plans = {name: plan for name, plan in attack_plans.items() if name in only}
        for label, what, env in LIMITS:
            with Service(db_url, env | {"CHECKIN_DATA_DIR": data_dir}) as service:
                log(
                    f"attacks, {what}: {kiosks} kiosks, one scan each every {interval_s} s, "
                    f"{seconds:.0f}s a phase"
                )
                run_result = phases(
                    service,
                    seeded,
                    kiosks=kiosks,
                    seconds=seconds,
                    interval_s=interval_s,
                    attack_plans=attack_plans,
                )
                result["runs"].append({"limits": label, "what": what} | run_result)
                for line in to_markdown(result).splitlines()[-len(attack_plans) - 1 :]:
                    log("  " + line)
    return result


def ratio(row: dict[str, Any], quiet: dict[str, Any]) -> float | None:
    """The phase's p99 over the quiet p99 of the same run."""
    if row["p99_ms"] is None or not quiet["p99_ms"]:
        return None
    return round(float(row["p99_ms"]) / float(quiet["p99_ms"]), 2)


def met(row: dict[str, Any], quiet: dict[str, Any]) -> bool:
    r = ratio(row, quiet)
    return r is not None and r <= GOAL and row["decisions"] > 0


def throughput(r: dict[str, Any]) -> str:
    failed = f", {r['failed']:,} failed" if r["failed"] else ""
    if r.get("drained_s", 0) >= 0.5:
        failed += f", drained {r['drained_s']:.1f} s later"
    if r["attack"] == "export":
        return (
            f"{r['rows_per_second']:,} rows/s ({r['requests']} whole exports, "
            f"{r['mib']} MiB){failed}"
        )
    rate = r["per_second"]
    return f"{rate:,.{1 if rate < 10 else 0}f} req/s ({r['requests']:,} answered{failed})"


def percent(share: int | None) -> str:
    return "-" if share is None else f"{share} %"


def refused(r: dict[str, Any]) -> str:
    return f"{r['refused_429']:,} / {r['refused_503']:,}"


def describe(result: dict[str, Any]) -> str:
    rate = result["kiosks"] / result["interval_s"]
    return (
        f"{result['kiosks']} kiosks over WebSockets, each scanning one person every "
        f"{result['interval_s']} s ({rate:,.0f} scans/s in all: a door's pace at the morning "
        "rush, open loop), in a process of their own; latency from when each scan was due. "
        f"Each phase {result['seconds']:.0f} s (the first second not measured), every attack "
        "in its own process against 127.0.0.1; the next phase starts once the service has "
        "answered the attack's last request (drained: how long after the phase that was). "
        "Goal: p99 under attack at most "
        f"{GOAL} × the quiet p99 of the same service in the same run. Slower than "
        f"{ACK_TIMEOUT_S} s: decisions past the kiosk's answer timeout (the door decided "
        f"offline). The machine's load average as the run began: {result['load_average']} "
        f"({os.cpu_count()} cores; the service, PostgreSQL, the kiosks and the attackers share "
        "them)."
    )


HEADING = "## Under attack: the door's latency"


def section(result: dict[str, Any], command: str, took_s: float) -> str:
    """The attack part of docs/benchmarks.md: how it was measured, and the table."""
    return "\n".join(
        [
            HEADING,
            "",
            f"Measured by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
            f"{took_s:.0f} s (bench/attack_bench.py).",
            "",
            describe(result),
            "",
            "Each attack runs twice, against a service started for it on the same database: "
            "*one address* with the default limits (every bench client is 127.0.0.1, so the "
            "per-address limits apply to the whole attack), and *distributed* with "
            + ", ".join(f"`{k}={v}`" for k, v in RAISED_LIMITS.items())
            + " (an attacker with many addresses: the limits do not help, only keeping CPU "
            "work off the event loop does). Attack throughput: requests answered per second "
            "by all its clients; 429 / 503: how many of those were refused by a limit or a "
            "full queue. Service CPU: the service process in the phase, in % of one core.",
            "",
            to_markdown(result),
        ]
    )


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        "| attack | limits | attack throughput | 429 / 503 | kiosk p50 ms | kiosk p99 ms "
        f"| p99 / quiet p99 | goal ≤ {GOAL}× | kiosk decisions (not decided; slower than "
        f"{ACK_TIMEOUT_S} s) | service CPU |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for run_result in result["runs"]:
        quiet = run_result["quiet"]
        phases_ = [("quiet", None, quiet)] + [
            (
                attack_name(a["attack"], result["clients"], result["events"]),
                a["attacker"],
                a["kiosks"],
            )
            for a in run_result["attacks"]
        ]
        for name, attacker, k in phases_:
            r = ratio(k, quiet)
            goal = "-" if attacker is None else ("met" if met(k, quiet) else "**not met**")
            lines.append(
                f"| {name} | {run_result['limits']} "
                f"| {'-' if attacker is None else throughput(attacker)} "
                f"| {'-' if attacker is None else refused(attacker)} "
                f"| {k['p50_ms']} | {k['p99_ms']} | {'-' if r is None else f'{r:.2f}'} | {goal} "
                f"| {k['decisions']:,} ({k['errors']:,}; {k['slow']:,}) "
                f"| {percent(k['service_cpu_pct'])} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--kiosks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--events", type=int, default=1_000_000, help="in the export")
    parser.add_argument("--quick", action="store_true", help="5 s phases, 100,000 events")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--only", choices=ATTACKS, action="append", help="only this attack (again for more)"
    )
    args = parser.parse_args(argv)
    seconds, events = (5.0, 100_000) if args.quick else (args.seconds, args.events)
    result = run(args.kiosks, seconds, events, only=args.only or ATTACKS)
    sys.stdout.write(describe(result) + "\n\n" + to_markdown(result) + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
