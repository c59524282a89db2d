"""PgBouncer in front of PostgreSQL, or not: the same kiosks against the same server, one
service straight to it and one through PgBouncer (Debian's 1.18) in transaction mode,
one after the other in the same run.

Through PgBouncer the service runs as docs/scaling.md says it must: its pool's
statements unprepared (CHECKIN_DB_STATEMENT_CACHE_SIZE=0) and its LISTEN connection
straight to PostgreSQL (CHECKIN_LISTEN_DATABASE_URL). PgBouncer refuses to run as root,
so as root it runs as the postgres user; it reaches the server over TCP, so the bench
needs DATABASE_URL to name a TCP server and says so otherwise.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m bench --pgbouncer-only
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.checkin_bench import Service, analyze, free_port, load, log, seed_database
from bench.pg import fresh_database, server
from bench.watch import cpu_seconds

POOL_SIZE = 20  # PgBouncer's server connections per database: the service's own pool size
ARMS = ("straight to PostgreSQL", "through PgBouncer (transaction mode)")


def binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
    )


def why_not(server_url: str) -> str | None:
    """Why this run cannot measure PgBouncer, or None."""
    if binary() is None:
        return "pgbouncer is not installed (scripts/system-deps.sh pgbouncer)"
    if not urlsplit(server_url).hostname:
        return "DATABASE_URL must name a TCP server for PgBouncer (the embedded one has a socket)"
    return None


@contextlib.contextmanager
def bouncer(server_url: str) -> Iterator[tuple[str, int, int]]:
    """A PgBouncer in transaction mode in front of `server_url`'s server: its host, port
    and process id."""
    parts = urlsplit(server_url)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cgw-pgbouncer-") as folder:
        conf = Path(folder)
        conf.chmod(0o755)  # read by the postgres user
        users = conf / "users.txt"
        users.write_text(f'"{parts.username or "postgres"}" ""\n')
        ini = conf / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={parts.hostname} port={parts.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {users}\n"
            f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\n"
            "max_client_conn = 2000\n"
        )
        for path in (users, ini):
            path.chmod(0o644)
        command = [binary() or "pgbouncer", str(ini)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        try:
            _wait_for(port)
            yield "127.0.0.1", port, _pid_of(proc)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _pid_of(proc: subprocess.Popen[bytes]) -> int:
    """PgBouncer's own pid (runuser's child, when run through it)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    found = children.read_text().split() if children.exists() else []
    return int(found[0]) if found else proc.pid


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError("PgBouncer did not start listening")


def through(db_url: str, host: str, port: int) -> str:
    parts = urlsplit(db_url)
    user = parts.username or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}:{port}"))


def run(kiosks: int = 1000, seconds: float = 10.0) -> dict[str, Any]:
    with server() as server_url:
        reason = why_not(server_url)
        if reason is not None:
            return {"skipped": reason}
        parts = urlsplit(server_url)
        result: dict[str, Any] = {
            "kiosks": kiosks,
            "seconds": seconds,
            "arms": {},
            "server": f"postgresql://{parts.username or 'postgres'}@{parts.hostname}:{parts.port}",
        }
        rate: float | None = None
        with bouncer(server_url) as (host, port, pid):
            for arm in ARMS:
                with fresh_database(server_url) as db_url:
                    seeded = seed_database(db_url, kiosks)
                    url, env = db_url, {}
                    if arm != ARMS[0]:
                        url = through(db_url, host, port)
                        env = {
                            "CHECKIN_LISTEN_DATABASE_URL": db_url,
                            "CHECKIN_DB_STATEMENT_CACHE_SIZE": "0",
                        }
                    with Service(url, env) as service:
                        service.db_url = db_url  # the watcher reads pg_stat_activity straight
                        log(f"{kiosks} kiosks, {arm}: warming up")
                        load(service, seeded, kiosks, max(4.0, seconds / 2), "ws")
                        analyze(db_url)
                        peak = load(service, seeded, kiosks, seconds, "ws")
                        log(f"  closed loop: {peak['per_second']:.0f}/s, p99 {peak['p99_ms']} ms")
                        time.sleep(2.0)  # the closed loop's last scans drain
                        # Both arms at the same rate: half what the straight one sustained.
                        rate = rate or peak["per_second"] / 2
                        spent = cpu_seconds([pid])
                        half = load(service, seeded, kiosks, seconds, "ws", rate)
                        spent = cpu_seconds([pid]) - spent
                        log(f"  half rate: p50 {half['p50_ms']} ms, p99 {half['p99_ms']} ms")
                    decided = half["per_second"] * seconds
                    half["bouncer_cpu_us"] = (
                        round(spent / decided * 1e6) if arm != ARMS[0] and decided else None
                    )
                    result["arms"][arm] = {"peak": peak, "half_rate": half}
        result["rate"] = rate
        return result


HEADING = "## PgBouncer in front of PostgreSQL"


def section(result: dict[str, Any], command: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    env = f"DATABASE_URL={result['server']}/postgres " if "server" in result else ""
    return "\n".join(
        [HEADING, "", f"Measured by `{env}{command}` on {when} UTC.", "", to_markdown(result), ""]
    )


def to_markdown(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"Skipped: {result['skipped']}."
    lines = [
        f"{result['kiosks']} WebSocket kiosks, {result['seconds']:.0f} s a run; closed loop "
        "(each kiosk's next scan when the last is answered), then both at "
        f"{result['rate']:,.0f} scans/s (half what the straight one sustained)",
        "",
        "| service's database | decisions/s (closed loop) | p99 ms (closed loop) "
        "| at the same rate: p50 / p99 ms | server connections (peak) "
        "| CPU µs per decision at that rate: service / PostgreSQL / PgBouncer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for arm, r in result["arms"].items():
        peak, half = r["peak"], r["half_rate"]
        cpu = half["cpu_us"]
        lines.append(
            f"| {arm} | {peak['per_second']:,.0f} | {peak['p99_ms']} | "
            f"{half['p50_ms']} / {half['p99_ms']} | {peak['db_connections']} | "
            f"{cpu['service']} / {cpu['postgres']} / {half['bouncer_cpu_us'] or '-'} |"
        )
    return "\n".join(lines)
