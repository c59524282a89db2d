"""The `checkin-gateway` command, run as a person would run it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg

from service.auth import Role, lookup_token


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def env_for(db_url: str | None, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if db_url:
        env["DATABASE_URL"] = db_url
    env["CHECKIN_DATA_DIR"] = str(data_dir)
    return env


async def test_token_create_prints_only_the_token_and_revoke_takes_it_back(
    db_url: str, tmp_path: Path, gate_id: int
) -> None:
    env = env_for(db_url, tmp_path)
    done = run_cli("token", "create", "--role", "kiosk", "--gate", str(gate_id), env=env)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert re.fullmatch(r"cgw_[A-Za-z0-9_-]{43}", token), done.stdout
    assert token not in done.stderr  # the secret goes to stdout only, never the logs

    conn = await asyncpg.connect(db_url)
    try:
        found = await lookup_token(conn, token)
        assert found is not None and found.role is Role.KIOSK and found.gate_id == gate_id
        revoked = run_cli("token", "revoke", token, env=env)
        assert revoked.returncode == 0, revoked.stderr
        assert await lookup_token(conn, token) is None
        assert run_cli("token", "revoke", token, env=env).returncode == 1
    finally:
        await conn.close()


def test_kiosk_token_without_gate_is_refused(db_url: str, tmp_path: Path) -> None:
    done = run_cli("token", "create", "--role", "kiosk", env=env_for(db_url, tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "gate" in done.stderr


def test_migrate_twice(empty_db_url: str, tmp_path: Path) -> None:
    env = env_for(empty_db_url, tmp_path)
    first = run_cli("migrate", env=env)
    assert first.returncode == 0 and "applied" in first.stdout, first.stderr
    second = run_cli("migrate", env=env)
    assert second.returncode == 0 and "up to date" in second.stdout


def test_bad_setting_fails_fast_naming_the_variable(tmp_path: Path) -> None:
    env = env_for(None, tmp_path) | {"CHECKIN_PORT": "eighty"}
    done = run_cli("migrate", env=env)
    assert done.returncode == 2
    assert "CHECKIN_PORT" in done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"service exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} not ready within {seconds}s")


TOKEN = re.compile(r"cgw_[A-Za-z0-9_-]{43}")


def serve_demo(data_dir: Path, port: int) -> str:
    """Run `serve --demo` on the embedded database until ready, check the printed
    admin token works, stop it with Ctrl-C; return what it printed."""
    env = env_for(None, data_dir) | {"CHECKIN_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc, 60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return out


def test_serve_demo_on_embedded_database_keeps_data_across_runs(tmp_path: Path) -> None:
    port = free_port()
    first = serve_demo(tmp_path, port)
    assert "kiosk-entrance" in first and "/readyz" in first
    tokens = set(TOKEN.findall(first))
    assert len(tokens) == 5
    second = serve_demo(tmp_path, port)
    site = re.compile(r"Demo site id: (\d+)")
    assert site.findall(first) == site.findall(second)  # the data of the first run is kept
    assert not tokens & set(TOKEN.findall(second))  # fresh tokens each run


async def three_admin_events(conn: asyncpg.Connection, site_id: int, *, actor: str) -> None:
    from datetime import UTC, datetime

    from service.events import NewEvent, append_events

    now = datetime.now(UTC)
    async with conn.transaction():
        await append_events(
            conn,
            [
                NewEvent(
                    kind="admin", actor=actor, occurred_at=now, site_id=site_id, detail={"n": n}
                )
                for n in range(3)
            ],
        )


async def test_audit_verify_reports_the_first_broken_link(
    db_url: str, tmp_path: Path, site_id: int, conn: asyncpg.Connection
) -> None:
    await three_admin_events(conn, site_id, actor="admin:1")
    env = env_for(db_url, tmp_path)
    ok = run_cli("audit", "verify", env=env)
    assert ok.returncode == 0, ok.stderr
    assert all('"ok": true' in line for line in ok.stdout.splitlines())
    await conn.execute("UPDATE events SET actor = 'someone else' WHERE seq = 2")
    bad = run_cli("audit", "verify", "--site", str(site_id), env=env)
    assert bad.returncode == 1
    assert '"seq": 2' in bad.stdout and "edited" in bad.stdout


async def test_export_writes_the_filtered_log_and_records_itself(
    db_url: str, tmp_path: Path, site_id: int, conn: asyncpg.Connection
) -> None:
    import csv
    import json

    await three_admin_events(conn, site_id, actor="=cmd|' /C calc'!A0")
    env = env_for(db_url, tmp_path)
    out = tmp_path / "events.csv"
    done = run_cli("export", "--out", str(out), "--site", str(site_id), "--include-hashes", env=env)
    assert done.returncode == 0, done.stderr
    assert "4 event(s) written" in done.stderr  # the three, and the export's own record
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert [r["kind"] for r in rows] == ["admin", "admin", "admin", "export"]
    assert [json.loads(r["detail"])["n"] for r in rows[:3]] == [0, 1, 2]
    assert all(r["actor"].startswith("'=") for r in rows[:3])  # no formula reaches a sheet
    assert all(len(r["hash"]) == 64 for r in rows)
    jsonl = tmp_path / "events.jsonl"
    assert run_cli("export", "--out", str(jsonl), "--format", "jsonl", env=env).returncode == 0
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 3  # the exports left out
    asked = ("export", "--out", str(jsonl), "--format", "jsonl", "--include-exports")
    assert run_cli(*asked, env=env).returncode == 0
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 6  # and the three exports
    assert (
        await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'export' AND actor = 'cli'")
        == 3
    )
    bad = run_cli("export", "--out", str(out), "--from", "yesterday", env=env)
    assert bad.returncode == 2 and "--from" in bad.stderr
