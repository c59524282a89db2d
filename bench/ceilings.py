"""The ceilings of the check-in benchmark: pgbench making the service's check-in calls
(`checkin_batch_state`, then `checkin_batch_write`, schema.sql) on the same database
server, in the same run; bench/checkin_batch.sql builds the write's arguments in
PostgreSQL, where the service builds them in Python.

- one site's chain lock: 32 clients on one site, with one scan, one scan and a NOTIFY,
  and ten scans per transaction; the lock's rate, whatever the server. With 32
  writers on one site, each transaction holds the chain from read to commit (the
  service's fallback after refused writes), else most writes would be refused;
- the database's commit rate: the same transaction spread over 1,000 sites, so that
  clients rarely share a lock;
- one transaction alone (1 client): the floor under any scan's latency, made as the
  service makes it: read without the lock, then write and commit in one call.

Each gives scans per second (transactions x scans per transaction) and the p50/p99 of
its transactions' latency, read from pgbench's per-transaction log.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.pg import libpq_env, pgbench_path
from bench.seed import Seeded

EXTRA_SITES = 1000  # for the ceiling without a shared chain lock
HELPER_SQL = Path(__file__).with_name("checkin_batch.sql")


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

    @property
    def locked(self) -> bool:
        return self.clients > 1


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


@dataclass(frozen=True)
class Gates:
    """pgbench's choice of gate: the seeded site's, or one of the extra sites'."""

    main: int
    extra_lo: int
    extra_hi: int


def prepare(db_url: str, seeded: Seeded) -> Gates:
    """Add the extra sites (each with its chain and one gate) and the write helper."""

    async def go() -> Gates:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute(HELPER_SQL.read_text(encoding="utf-8"))
            # Each new site gets its own event chain (a trigger), hence its own lock.
            sites = await conn.fetch(
                "INSERT INTO sites (code, name) SELECT 'x' || i, 'Chi cục ' || i"
                " FROM generate_series(1, $1::int) AS i RETURNING id",
                EXTRA_SITES,
            )
            gates = await conn.fetchval(
                "WITH g AS (INSERT INTO gates (site_id, name, direction)"
                " SELECT unnest($1::bigint[]), 'Cổng chính', 'both' RETURNING id)"
                " SELECT array_agg(id ORDER BY id) FROM g",
                [r["id"] for r in sites],
            )
            # pgbench picks among consecutive ids.
            if gates[-1] - gates[0] + 1 != len(gates):
                raise RuntimeError("the extra sites' gate ids are not consecutive")
            return Gates(seeded.gate_ids[0], gates[0], gates[-1])
        finally:
            await conn.close()

    return asyncio.run(go())


# The check-in transaction in pgbench's language: the service's two calls for a batch
# of :n scans of :n different people (read the state; write and commit).
STATE_CALL = (
    "SELECT checkin_batch_state(ARRAY[:gate]::bigint[],"
    " ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :n::int)),"
    " ARRAY(SELECT id FROM passes WHERE person_id BETWEEN :p::bigint AND :p::bigint + :n::int - 1),"
    " interval '1 hour', :locked::boolean) AS state \\gset"
)
WRITE_CALL = (
    "SELECT bench_checkin_write(:state::jsonb, :gate::bigint,"
    " ARRAY(SELECT generate_series(:p::bigint, :p::bigint + :n::int - 1)));"
)


def checkin_script(ceiling: Ceiling) -> str:
    lines = ["\\set p random(1, :npeople - :n + 1)"]
    if ceiling.many_sites:
        lines.append("\\set gate random(:gate_lo, :gate_hi)")
    lines += ["BEGIN;"] if ceiling.locked else []
    lines += [STATE_CALL, WRITE_CALL]
    lines += ["SELECT pg_notify('bench', 'x');"] if ceiling.notify else []
    lines += ["END;"] if ceiling.locked else []
    return "\n".join(lines) + "\n"


def pgbench(
    db_url: str, seeded: Seeded, gates: Gates, ceiling: Ceiling, seconds: float
) -> dict[str, Any]:
    """Scans per second that pgbench gets through the same SQL (tps x scans per tx),
    and the p50/p99 of its transactions' latency (from its per-transaction log)."""
    with tempfile.TemporaryDirectory(prefix="cgw-pgbench-") as tmp:
        script = Path(tmp) / "checkin.sql"
        script.write_text(checkin_script(ceiling))
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
                f"n={ceiling.scans}",
                "-D",
                f"locked={str(ceiling.locked).lower()}",
                "-D",
                f"gate={gates.main}",
                "-D",
                f"gate_lo={gates.extra_lo}",
                "-D",
                f"gate_hi={gates.extra_hi}",
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
