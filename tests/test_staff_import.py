"""Staff import from CSV: all rows or none, every bad row reported; the keys commands."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from service.people.staff_import import import_staff_csv
from tests.cli_helpers import env_for, run_cli

HEADER = "full_name,phone,national_id,organisation,position,risk_level\n"
GOOD = (
    HEADER
    + "Nguyễn Văn An,0912345678,,Chi cục Hải quan,Kiểm hóa viên,very_high\n"
    + 'Trần Thị Bình,,001099012345,"Đội Kiểm soát, Tổ 2",Lái xe,low\n'
    + "\n"
)


async def test_good_file_imports_every_row(conn: asyncpg.Connection) -> None:
    visitor = await conn.fetchval(
        "INSERT INTO people (kind, full_name, phone) VALUES ('visitor', 'An', '+84912345678') "
        "RETURNING id"
    )
    result = await import_staff_csv(conn, ("\ufeff" + GOOD).encode("utf-8"))
    assert result.ok and (result.created, result.updated) == (1, 1)
    rows = await conn.fetch(
        "SELECT id, kind, full_name, phone, national_id, organisation, risk_level FROM people "
        "ORDER BY id"
    )
    assert [dict(r) for r in rows] == [
        {
            "id": visitor,
            "kind": "staff",
            "full_name": "Nguyễn Văn An",
            "phone": "+84912345678",
            "national_id": None,
            "organisation": "Chi cục Hải quan",
            "risk_level": "very_high",
        },
        {
            "id": visitor + 1,
            "kind": "staff",
            "full_name": "Trần Thị Bình",
            "phone": None,
            "national_id": "001099012345",
            "organisation": "Đội Kiểm soát, Tổ 2",
            "risk_level": "low",
        },
    ]


async def test_a_file_with_bad_rows_imports_nothing_and_lists_each(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute(
        "INSERT INTO people (kind, full_name, phone) VALUES ('visitor', 'X', '+84933333333');"
        "INSERT INTO people (kind, full_name, national_id) VALUES ('visitor', 'Y', '123456789')"
    )
    text = (
        HEADER
        + "Good Person,0911111111,,,,low\n"  # line 2
        + "Bad Phone,12345,,,,low\n"  # 3
        + "No Risk,0922222222,,,,extreme\n"  # 4
        + ",,,,,low\n"  # 5
        + "Dup,0911111111,,,,low\n"  # 6
        + "Two People,0933333333,123456789,,,low\n"  # 7
        + "Short,0944444444\n"  # 8
    ).encode("utf-8") + b"Bad \xff Bytes,0955555555,,,,low\n"  # 9
    result = await import_staff_csv(conn, text)
    assert not result.ok
    assert [(e.line, e.field, e.code) for e in result.errors] == [
        (3, "phone", "phone_format"),
        (4, "risk_level", "literal_error"),
        (5, "full_name", "string_too_short"),
        (6, "phone", "duplicate"),
        (7, "national_id", "identity_conflict"),
        (8, "row", "column_count"),
        (9, "full_name", "invalid_unicode"),
    ]
    assert await conn.fetchval("SELECT count(*) FROM people") == 2
    assert await conn.fetchval("SELECT count(*) FROM events") == 0


async def test_bad_header_is_reported(conn: asyncpg.Connection) -> None:
    result = await import_staff_csv(conn, b"name,phone\nAn,0912345678\n")
    assert [(e.line, e.field, e.code) for e in result.errors] == [(1, "header", "bad_columns")]
    assert "missing: full_name" in result.errors[0].reason
    result = await import_staff_csv(conn, b"")
    assert [e.code for e in result.errors] == ["missing"]


def test_staff_import_command(db_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, tmp_path)
    good = tmp_path / "staff.csv"
    good.write_text(GOOD, encoding="utf-8")
    done = run_cli("staff", "import", str(good), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "imported 2 staff (2 new, 0 updated)\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "A,0912,,,,low\nB,0913,,,,low\n", encoding="utf-8")
    done = run_cli("staff", "import", str(bad), env=env)
    assert done.returncode == 1
    assert "line 2: phone:" in done.stderr and "line 3: phone:" in done.stderr
    assert "nothing imported: 2 error(s)" in done.stderr
    assert run_cli("staff", "import", str(tmp_path / "missing.csv"), env=env).returncode == 2


def test_keys_commands(db_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, tmp_path)
    first = run_cli("keys", "rotate", env=env)
    assert first.returncode == 0, first.stderr
    kid1 = first.stdout.split()[1]
    second = run_cli("keys", "rotate", env=env)
    assert second.stdout == f"active: {second.stdout.split()[1].rstrip(';')}; retiring: {kid1}\n"
    kid2 = second.stdout.split()[1].rstrip(";")
    key_file = tmp_path / "keys" / f"{kid2}.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    listed = run_cli("keys", "list", env=env).stdout
    assert f"{kid1}  retiring" in listed and f"{kid2}  active" in listed
    refused = run_cli("keys", "retire", kid2, env=env)
    assert refused.returncode == 1 and "rotate first" in refused.stderr
    retired = run_cli("keys", "retire", kid1, env=env)
    assert retired.returncode == 0 and retired.stdout == f"retired: {kid1}\n"
    assert not (tmp_path / "keys" / f"{kid1}.key").exists()
    assert f"{kid1}  retired" in run_cli("keys", "list", env=env).stdout
