"""The `checkin-gateway` command, run as a person would run it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service.web.auth import Role, lookup_token
from service.web.token_usage import TOKEN_USAGE_KEY
from tests.cli_helpers import env_for, run_cli
from tests.factory import bearer


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


async def test_token_list_shows_scope_and_last_use_and_revoke_takes_its_id(
    db_url: str,
    tmp_path: Path,
    site_id: int,
    gate_id: int,
    client: TestClient[Any, Any],
) -> None:
    env = env_for(db_url, tmp_path)
    made = {
        label: run_cli("token", "create", "--label", label, *how, env=env).stdout.strip()
        for label, how in (
            ("ops", ("--role", "admin")),
            ("Bảo vệ ca sáng", ("--role", "guard", "--site", str(site_id))),
            ("door 1", ("--role", "kiosk", "--gate", str(gate_id))),
        )
    }
    heartbeat = await client.post(
        "/api/v1/kiosk/heartbeat", json={}, headers=bearer(made["door 1"])
    )
    assert heartbeat.status == 204
    await client.app[TOKEN_USAGE_KEY].flush()  # what the service does once a minute

    listed = run_cli("token", "list", env=env)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split() == ["id", "role", "scope", "created", "last", "used", "label"]
    rows = {label: next(li for li in lines if li.endswith(" " + label)).split() for label in made}
    minute = r"\d{4}-\d\d-\d\d \d\d:\d\dZ"
    assert re.fullmatch(rf"\d+ +kiosk +gate {gate_id} +{minute} +{minute} +door 1", lines[2])
    assert rows["ops"][1:3] == ["admin", "every"]
    assert rows["Bảo vệ ca sáng"][1:4] == ["guard", "site", str(site_id)]
    assert rows["ops"][-2:] == ["never", "ops"]  # never used

    kiosk_id = rows["door 1"][0]
    revoked = run_cli("token", "revoke", "--id", kiosk_id, env=env)
    assert revoked.returncode == 0 and revoked.stderr == "", revoked.stderr
    assert revoked.stdout == f"revoked token {kiosk_id} (kiosk, gate {gate_id}, door 1)\n"
    assert "door 1" not in run_cli("token", "list", env=env).stdout
    everything = run_cli("token", "list", "--all", env=env).stdout.splitlines()
    assert re.fullmatch(rf"{kiosk_id} +kiosk .* {minute} +door 1", everything[3])
    assert everything[1].endswith(" -                  ops")  # not revoked


def test_admin_commands_print_only_their_output(empty_db_url: str, tmp_path: Path) -> None:
    env = env_for(empty_db_url, tmp_path)
    for args in (("migrate",), ("migrate",), ("token", "list"), ("keys", "list")):
        done = run_cli(*args, env=env)
        assert done.returncode == 0 and done.stdout, done.stderr
        assert done.stderr == "", (args, done.stderr)  # no INFO lines, no warnings
    # A log level asked for is a log level given.
    loud = run_cli("migrate", env=env | {"CHECKIN_LOG_LEVEL": "DEBUG"})
    assert loud.returncode == 0 and '"level": "DEBUG"' in loud.stderr


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


async def three_admin_events(conn: asyncpg.Connection, site_id: int, *, actor: str) -> None:
    from datetime import UTC, datetime

    from service.events.log import NewEvent, append_events

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
