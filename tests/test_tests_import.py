"""`checkin-gateway tests import`: a lab's CSV of official results, run as a person would,
against the real database and the real service's door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from tests.cli_helpers import env_for, run_cli
from tests.factory import Factory
from tests.health_helpers import Client, call, declare, door, make_desk
from tests.test_health_desk import new_case, overlapping_pair

HEADER = "phone,person_id,kind,taken_at,result,source\n"


def lab_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.csv"
    path.write_bytes(("\ufeff" + text).encode())
    return path


async def test_an_import_records_every_row_and_each_sets_off_what_the_api_does(
    client: Client, factory: Factory, db_url: str, tmp_path: Path, conn: asyncpg.Connection
) -> None:
    desk = await make_desk(factory)
    a, b = await overlapping_pair(client, desk)
    c = await declare(client, desk.site_id, "Ngô Bảo Châu", "0913 000 009")
    case = await new_case(client, desk, a)
    url = f"/api/v1/cases/{case['id']}/contacts/suspend"
    await call(client, "POST", url, desk.health, 200, person_ids=[b.person_id])
    assert await door(client, desk.entrance, b) == ("deny", "contact_traced")
    now = datetime.now(UTC)
    path = lab_file(
        tmp_path,
        HEADER
        + f",{b.person_id},pcr,{now.isoformat()},negative,CDC Hà Nội\n"
        + "\n"  # a blank line, as spreadsheets leave them
        + f"0913 000 009,,rapid,{(now - timedelta(hours=1)).isoformat()},positive,CDC Hà Nội\n",
    )
    done = run_cli(
        "tests", "import", str(path), "--site", str(desk.site_id), env=env_for(db_url, tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert (
        "recorded 2 official result(s): 1 positive, 1 case(s) opened, 1 suspension(s) cleared"
        in done.stdout
    )
    assert "tests" in done.stderr  # the progress bar
    # The negative cleared the contact; the positive opened a case and holds the person.
    assert await door(client, desk.entrance, b) == ("allow", "welcome")
    assert await door(client, desk.entrance, c) == ("deny", "case_confirmed")
    cases = await conn.fetch(
        "SELECT person_id, test_id FROM health_cases WHERE site_id = $1 ORDER BY id", desk.site_id
    )
    assert [r["person_id"] for r in cases] == [a.person_id, c.person_id]
    assert cases[1]["test_id"] is not None
    tests = await call(client, "GET", f"/api/v1/people/{c.person_id}/tests", desk.health, 200)
    assert [(t["kind"], t["result"], t["recorded_by"]) for t in tests["tests"]] == [
        ("rapid", "positive", "cli:tests-import")
    ]
    events = await conn.fetch(
        "SELECT kind, actor FROM events WHERE actor = 'cli:tests-import' ORDER BY seq"
    )
    assert {e["kind"] for e in events} >= {"official_test", "health_case", "suspension", "admin"}


async def test_a_file_with_bad_rows_writes_nothing_and_names_each_row_column_and_reason(
    client: Client, factory: Factory, db_url: str, tmp_path: Path, conn: asyncpg.Connection
) -> None:
    desk = await make_desk(factory)
    a = await declare(client, desk.site_id, "Phan Thị Yến", "0913 000 021")
    other = await make_desk(factory)
    elsewhere = await declare(client, other.site_id, "Trịnh Văn Quyết", "0913 000 022")
    now = datetime.now(UTC)
    taken = now.isoformat()
    path = lab_file(
        tmp_path,
        HEADER
        + f",{a.person_id},pcr,{taken},negative,CDC\n"  # 2: good
        + f"0999 999 999,,pcr,{taken},negative,CDC\n"  # 3: nobody has this phone
        + f",{a.person_id},antigen,{taken},negative,CDC\n"  # 4: bad kind
        + f",{a.person_id},pcr,{(now + timedelta(days=1)).isoformat()},negative,CDC\n"  # 5
        + f",{elsewhere.person_id},pcr,{taken},positive,CDC\n"  # 6: not known at the site
        + f",{a.person_id},pcr,{taken},negative,CDC\n"  # 7: the same as row 2
        + f"0913 000 022,{a.person_id},pcr,{taken},negative,CDC\n"  # 8: two people
        + f",{a.person_id},pcr\n",  # 9: too few cells
    )
    done = run_cli(
        "tests", "import", str(path), "--site", str(desk.site_id), env=env_for(db_url, tmp_path)
    )
    assert done.returncode == 1, done.stdout
    lines = [
        line.split(": ", 1)[1] for line in done.stderr.splitlines() if line.startswith(str(path))
    ]
    assert [line.split(" (")[-1] for line in lines] == [
        "person_not_found)",
        "literal_error)",
        "date_in_future)",
        "not_known_at_site)",
        "duplicate_row)",
        "identity_conflict)",
        "column_count)",
    ]
    assert lines[0] == (
        "row 3: phone: Không có người nào có phone này / No person has this phone"
        " (person_not_found)"
    )
    assert lines[1].startswith("row 4: kind: Chọn một trong: 'pcr' hoặc 'rapid' / Choose one of")
    assert lines[2].startswith("row 5: taken_at: ")
    assert lines[4].startswith("row 7: taken_at: Trùng kết quả với dòng 2 của tệp")
    assert "nothing imported" in done.stderr
    assert await conn.fetchval("SELECT count(*) FROM official_tests") == 0
    assert await conn.fetchval("SELECT count(*) FROM health_cases") == 0


async def test_a_bad_header_an_empty_file_and_an_unknown_site_are_refused(
    db_url: str, tmp_path: Path, factory: Factory, conn: asyncpg.Connection
) -> None:
    env = env_for(db_url, tmp_path)
    for text, expected in (
        ("", "row 1: header: Tệp trống / The file is empty (empty_file)"),
        ("name,kind,taken_at,result,source\n", "(bad_columns)"),
        ("kind,taken_at,result,source\n", "(bad_columns)"),
    ):
        done = run_cli("tests", "import", str(lab_file(tmp_path, text)), env=env)
        assert done.returncode == 1 and expected in done.stderr, done.stderr
    site_id = await factory.site()
    done = run_cli(
        "tests", "import", str(lab_file(tmp_path, HEADER)), "--site", str(site_id + 1000), env=env
    )
    assert done.returncode == 2 and f"no site with id {site_id + 1000}" in done.stderr
    assert run_cli("tests", "import", str(tmp_path / "missing.csv"), env=env).returncode == 2
    assert await conn.fetchval("SELECT count(*) FROM official_tests") == 0
