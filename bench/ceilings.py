"""The ceilings of the check-in benchmark: pgbench running the service's check-in SQL
(bench/checkin_scan.pgbench) on the same database server, in the same run.

- one site's chain lock: 32 clients on one site, with one scan, one scan and a NOTIFY,
  and ten scans per transaction; the lock's rate, whatever the server;
- the database's commit rate: the same transaction spread over 1,000 sites, so that
  clients rarely share a lock;
- one transaction alone (1 client): the floor under any scan's latency.

Each gives scans per second (transactions x scans per transaction) and the p50/p99 of
its transactions' latency, read from pgbench's per-transaction log.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.pg import libpq_env, pgbench_path
from bench.seed import Seeded

EXTRA_SITES = 1000  # for the ceiling without a shared chain lock


@dataclass(frozen=True)
class Ceiling:
    """One pgbench run: `scans` per transaction, `clients` connections, and whether
    each transaction picks one of many sites (no shared lock) or NOTIFYs."""

    label: str
    what: str
    scans: int = 1
    clients: int = 32
    many_sites: bool = False
    notify: bool = False


CEILINGS = (
    Ceiling("pgbench_1_per_tx", "one site, 1 scan/tx, 32 clients"),
    Ceiling("pgbench_1_per_tx_notify", "one site, 1 scan + NOTIFY/tx, 32 clients", notify=True),
    Ceiling("pgbench_10_per_tx", "one site, 10 scans/tx, 32 clients", scans=10),
    Ceiling(
        "pgbench_1_per_tx_many_sites",
        f"{EXTRA_SITES:,} sites, 1 scan/tx, 32 clients",
        many_sites=True,
    ),
    Ceiling("pgbench_1_client", "one site, 1 scan/tx, 1 client (latency floor)", clients=1),
)
THROUGHPUT_CEILING = "pgbench_10_per_tx"
LATENCY_CEILING = "pgbench_1_client"


SCAN_SCRIPT = Path(__file__).with_name("checkin_scan.pgbench")


def checkin_script(n_scans: int, notify: bool, many_sites: bool = False) -> str:
    """The check-in transaction in pgbench's language: the statements the service runs
    for a batch of n scans (lock the chain, read the state, append, update presence),
    one round trip each. The per-scan block uses :p for the person; scan i gets :p{i}.
    With many_sites each transaction picks a site (its own chain lock) at random."""
    block = SCAN_SCRIPT.read_text(encoding="utf-8")
    lines = [f"\\set p{i} random(1, :npeople)" for i in range(n_scans)]
    if many_sites:
        lines.append("\\set site random(:site_lo, :site_hi)")
    lines += ["BEGIN;", "SELECT last_seq FROM event_chains WHERE chain_id = :site FOR UPDATE;"]
    lines += [block.replace(":p", f":p{i}").rstrip("\n") for i in range(n_scans)]
    lines.append("SELECT count(*) FROM presence WHERE site_id = :site AND exited_at IS NULL;")
    if notify:
        lines.append("SELECT pg_notify('bench', 'x');")
    lines.append("END;")
    return "\n".join(lines) + "\n"


def pgbench(db_url: str, seeded: Seeded, ceiling: Ceiling, seconds: float) -> dict[str, Any]:
    """Scans per second that pgbench gets through the same SQL (tps x scans per tx),
    and the p50/p99 of its transactions' latency (from its per-transaction log)."""
    with tempfile.TemporaryDirectory(prefix="cgw-pgbench-") as tmp:
        script = Path(tmp) / "checkin.sql"
        script.write_text(checkin_script(ceiling.scans, ceiling.notify, ceiling.many_sites))
        sites = [seeded.site_id + 1, seeded.site_id + EXTRA_SITES] if ceiling.many_sites else []
        done = subprocess.run(
            [
                pgbench_path(),
                "-n",
                "-M",
                "prepared",
                "-c",
                str(ceiling.clients),
                "-j",
                str(min(2, ceiling.clients)),
                "-T",
                str(max(1, int(seconds))),
                "-f",
                str(script),
                "--log",
                f"--log-prefix={tmp}/log",
                "-D",
                f"site={seeded.site_id}",
                "-D",
                f"site_lo={sites[0] if sites else 0}",
                "-D",
                f"site_hi={sites[1] if sites else 0}",
                "-D",
                f"gate={seeded.gate_ids[0]}",  # a foreign key only: any gate will do
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
        match = re.search(r"tps = ([0-9.]+)", done.stdout)
        if match is None:
            raise RuntimeError(f"pgbench said: {done.stdout}\n{done.stderr}")
        # Per transaction: client, number, elapsed microseconds, script, epoch, us.
        latencies = sorted(
            int(line.split()[2])
            for log_file in Path(tmp).glob("log.*")
            for line in log_file.read_text().splitlines()
            if line
        )
    return {
        "what": ceiling.what,
        "scans_per_s": round(float(match[1]) * ceiling.scans),
        "p50_ms": percentile_ms(latencies, 0.50, unit=1e-6),
        "p99_ms": percentile_ms(latencies, 0.99, unit=1e-6),
    }


def percentile_ms(sorted_values: Sequence[float], q: float, *, unit: float) -> float | None:
    """The q-quantile of values in `unit` seconds, in milliseconds (None if empty)."""
    if not sorted_values:
        return None
    value = sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
    return round(value * unit * 1000, 2)
