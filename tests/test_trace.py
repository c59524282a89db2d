"""Contact tracing: overlaps of presence stays, exact to the minute, as JSON, CSV and CLI."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.web.auth import Role
from tests.cli_helpers import env_for, run_cli
from tests.factory import Factory, bearer

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(minutes: float) -> str:
    return at(minutes).isoformat()


async def stay(
    conn: asyncpg.Connection,
    site_id: int,
    person_id: int,
    entered: float,
    exited: float | None,
    gate_id: int | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event,"
        " exited_at, exit_kind) VALUES ($1, $2, $3, $4, 1, $5, $6)",
        site_id,
        person_id,
        at(entered),
        gate_id,
        None if exited is None else at(exited),
        None if exited is None else "scan",
    )


@dataclass
class Scene:
    site: int
    other_site: int
    f0: int
    a: int
    b: int
    c: int
    d: int
    e: int
    g: int
    auditor: str
    admin: str
    people: dict[int, dict[str, Any]]

    def names(self, contacts: list[dict[str, Any]]) -> list[int]:
        return [c["person_id"] for c in contacts]


@pytest.fixture
async def scene(conn: asyncpg.Connection, factory: Factory) -> Scene:
    """F0 stays [0, 240) through gate 1 and [300, 420) through gate 2 (minutes from T0).

    a: [60, 120) gate 1, inside F0's first stay: 60.
    b: [-60, 30) gate 2 and [400, 500) gate 2, partial twice: 30 + 20 = 50.
    c: [-100, 1000) gate 1, contains both stays: 240 + 120 = 360.
    d: [240, 300) only touches the ends: no contact.
    e: [0, 240) at another site: no contact.
    g: open since 200 through gate 2; with the cut-off at 230: 30."""
    site = await factory.site()
    other_site = await factory.site()
    gate1 = await factory.gate(site)
    gate2 = await factory.gate(site)
    people = [await factory.person() for _ in range(7)]
    f0, a, b, c, d, e, g = people
    for person, entered, exited, gate in [
        (f0, 0, 240, gate1),
        (f0, 300, 420, gate2),
        (a, 60, 120, gate1),
        (b, -60, 30, gate2),
        (b, 400, 500, gate2),
        (c, -100, 1000, gate1),
        (d, 240, 300, gate1),
        (g, 200, None, gate2),
    ]:
        await stay(conn, site, person, entered, exited, gate)
    await stay(conn, other_site, e, 0, 240)
    return Scene(
        site,
        other_site,
        f0,
        a,
        b,
        c,
        d,
        e,
        g,
        auditor=await factory.token(Role.AUDITOR),
        admin=await factory.token(Role.ADMIN),
        people={
            r["id"]: dict(r)
            for r in await conn.fetch("SELECT id, full_name, phone, organisation FROM people")
        },
    )


def params(scene: Scene, **extra: str) -> dict[str, str]:
    return {
        "person": str(scene.f0),
        "from": iso(-24 * 60),
        "to": iso(24 * 60),
        "open_until": iso(230),
    } | extra


async def get_trace(
    client: TestClient[Any, Any], token: str, query: dict[str, str], status: int = 200
) -> Any:
    resp = await client.get("/api/v1/trace", params=query, headers=bearer(token))
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_overlaps_are_exact_summed_and_ranked(
    client: TestClient[Any, Any], scene: Scene
) -> None:
    body = await get_trace(client, scene.auditor, params(scene))

    def contact(person_id: int, minutes: float, stays: int, first: float, last: float) -> Any:
        return {
            "person_id": person_id,
            "full_name": scene.people[person_id]["full_name"],
            "phone": scene.people[person_id]["phone"],
            "organisation": None,
            "overlap_minutes": minutes,
            "shared_stays": stays,
            "first_overlap": iso(first),
            "last_overlap": iso(last),
            "site_ids": [scene.site],
        }

    assert body["contacts"] == [
        contact(scene.c, 360, 2, 0, 420),
        contact(scene.a, 60, 1, 60, 120),
        contact(scene.b, 50, 2, 0, 420),
        contact(scene.g, 30, 1, 200, 230),
    ]
    assert body["person"] == scene.people[scene.f0]
    assert body["window"] == {
        "from": iso(-24 * 60),
        "to": iso(24 * 60),
        "open_until": iso(230),
        "min_overlap_minutes": 0.0,
        "same_gate": False,
        "site_id": None,
    }


async def test_the_window_clips_the_overlaps(client: TestClient[Any, Any], scene: Scene) -> None:
    body = await get_trace(client, scene.admin, params(scene, **{"from": iso(60), "to": iso(90)}))
    assert [(c["person_id"], c["overlap_minutes"]) for c in body["contacts"]] == [
        (scene.a, 30),
        (scene.c, 30),
    ]
    assert body["contacts"][0]["first_overlap"] == iso(60)
    assert body["contacts"][0]["last_overlap"] == iso(90)


async def test_touching_other_site_and_self_are_not_contacts(
    client: TestClient[Any, Any], scene: Scene
) -> None:
    listed = scene.names((await get_trace(client, scene.auditor, params(scene)))["contacts"])
    assert scene.d not in listed
    assert scene.e not in listed
    assert scene.f0 not in listed


async def test_an_open_stay_ends_at_the_cut_off(client: TestClient[Any, Any], scene: Scene) -> None:
    before = params(scene, open_until=iso(200))
    assert scene.g not in scene.names((await get_trace(client, scene.auditor, before))["contacts"])
    later = params(scene, open_until=iso(350))  # also reaches into F0's second stay
    contacts = (await get_trace(client, scene.auditor, later))["contacts"]
    g = next(c for c in contacts if c["person_id"] == scene.g)
    assert (g["overlap_minutes"], g["shared_stays"]) == (40 + 50, 2)


async def test_an_open_stay_counts_until_now_by_default(
    client: TestClient[Any, Any], conn: asyncpg.Connection, factory: Factory
) -> None:
    site = await factory.site()
    f0, inside = await factory.person(), await factory.person()
    now = datetime.now(UTC)
    for person, entered, exited in [(f0, now - timedelta(minutes=60), now - timedelta(minutes=30))]:
        await conn.execute(
            "INSERT INTO presence (site_id, person_id, entered_at, entry_event, exited_at,"
            " exit_kind) VALUES ($1, $2, $3, 1, $4, 'scan')",
            site,
            person,
            entered,
            exited,
        )
    await conn.execute(
        "INSERT INTO presence (site_id, person_id, entered_at, entry_event) VALUES ($1, $2, $3, 1)",
        site,
        inside,
        now - timedelta(minutes=45),
    )
    query = {
        "person": str(f0),
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(),
    }
    body = await get_trace(client, await factory.token(Role.AUDITOR), query)
    assert [(c["person_id"], c["overlap_minutes"]) for c in body["contacts"]] == [(inside, 15)]


async def test_min_overlap_filters_on_the_total(client: TestClient[Any, Any], scene: Scene) -> None:
    body = await get_trace(client, scene.auditor, params(scene, min_overlap="50"))
    assert scene.names(body["contacts"]) == [scene.c, scene.a, scene.b]  # b: 30 + 20
    body = await get_trace(client, scene.auditor, params(scene, min_overlap="50.5"))
    assert scene.names(body["contacts"]) == [scene.c, scene.a]


async def test_same_gate_keeps_stays_entered_through_the_person_s_gate(
    client: TestClient[Any, Any], scene: Scene
) -> None:
    body = await get_trace(client, scene.auditor, params(scene, same_gate="true"))
    assert [(c["person_id"], c["overlap_minutes"]) for c in body["contacts"]] == [
        (scene.c, 240),  # gate 1, F0's first stay only
        (scene.a, 60),
        (scene.b, 20),  # gate 2, F0's second stay only
    ]


async def test_a_site_scoped_token_traces_within_its_site(
    client: TestClient[Any, Any], conn: asyncpg.Connection, factory: Factory, scene: Scene
) -> None:
    await stay(conn, scene.other_site, scene.f0, 0, 60)  # e was there too
    everywhere = await get_trace(client, scene.auditor, params(scene))
    assert scene.e in scene.names(everywhere["contacts"])
    scoped = await factory.token(Role.AUDITOR, site_id=scene.site)
    body = await get_trace(client, scoped, params(scene))
    assert scene.e not in scene.names(body["contacts"])
    assert body["window"]["site_id"] == scene.site


async def test_csv_for_the_health_authority(
    client: TestClient[Any, Any], conn: asyncpg.Connection, factory: Factory, scene: Scene
) -> None:
    await conn.execute(
        "UPDATE people SET full_name = $2, organisation = $3 WHERE id = $1",
        scene.a,
        '=HYPERLINK("http://x","Lê, Thị")',
        "@SUM(A1)",
    )
    await conn.execute("UPDATE people SET organisation = $2 WHERE id = $1", scene.c, "\tCông ty")
    resp = await client.get(
        "/api/v1/trace", params=params(scene, format="csv"), headers=bearer(scene.auditor)
    )
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == [
        "person_id",
        "full_name",
        "phone",
        "organisation",
        "overlap_minutes",
        "shared_stays",
        "first_overlap",
        "last_overlap",
        "site_ids",
    ]
    assert [r[0] for r in rows[1:]] == [str(p) for p in (scene.c, scene.a, scene.b, scene.g)]
    c_row, a_row = rows[1], rows[2]
    assert a_row[1] == '\'=HYPERLINK("http://x","Lê, Thị")'
    assert a_row[2] == "'" + scene.people[scene.a]["phone"]
    assert a_row[3] == "'@SUM(A1)"
    assert a_row[4:] == ["60.0", "1", iso(60), iso(120), str(scene.site)]
    assert c_row[3] == "'\tCông ty"
    assert raw.count(b"\r\n") == len(rows)
    assert raw.decode("utf-8-sig").splitlines()[1].startswith('"')  # every cell quoted


async def test_each_trace_is_recorded(
    client: TestClient[Any, Any], conn: asyncpg.Connection, scene: Scene
) -> None:
    await get_trace(client, scene.auditor, params(scene, min_overlap="5", same_gate="1"))
    rows = await conn.fetch("SELECT * FROM events WHERE kind = 'trace'")
    assert len(rows) == 1
    event = rows[0]
    assert event["actor"].startswith("auditor:")
    assert event["person_id"] == scene.f0
    assert event["site_id"] is None
    assert event["detail"] == {
        "from": iso(-24 * 60),
        "to": iso(24 * 60),
        "open_until": iso(230),
        "min_overlap_minutes": 5.0,
        "same_gate": True,
        "site_id": None,
        "format": "json",
        "contacts": 3,
    }


@pytest.mark.parametrize("role", [Role.GUARD, Role.KIOSK])
async def test_guard_and_kiosk_may_not_trace(
    client: TestClient[Any, Any], tokens: dict[Role, str], scene: Scene, role: Role
) -> None:
    body = await get_trace(client, tokens[role], params(scene), status=403)
    assert body["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"person": ""}, "person"),
        ({"person": "abc"}, "person"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-01T08:00:00"}, "from"),  # no offset: which time zone?
        ({"from": iso(60), "to": iso(60)}, "to"),
        ({"from": iso(90), "to": iso(60)}, "to"),
        ({"min_overlap": "-1"}, "min_overlap"),
        ({"min_overlap": "nan"}, "min_overlap"),
        ({"open_until": "soon"}, "open_until"),
        ({"same_gate": "maybe"}, "same_gate"),
        ({"format": "xlsx"}, "format"),
    ],
)
async def test_bad_parameters(
    client: TestClient[Any, Any],
    conn: asyncpg.Connection,
    scene: Scene,
    change: dict[str, str],
    parameter: str,
) -> None:
    query = {k: v for k, v in (params(scene) | change).items() if v != ""}
    body = await get_trace(client, scene.auditor, query, status=400)
    assert body["error"]["code"] == "bad_parameter"
    assert body["error"]["parameter"] == parameter
    assert await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'trace'") == 0


async def test_an_offset_sent_unencoded_is_understood(
    client: TestClient[Any, Any], scene: Scene
) -> None:
    url = (
        f"/api/v1/trace?person={scene.f0}&from=2026-11-02T08:00:00+07:00"
        f"&to=2026-11-02T09:00:00+07:00&open_until={iso(230).replace('+', '%2B')}"
    )
    resp = await client.get(url, headers=bearer(scene.auditor))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["window"]["from"] == iso(0)


async def test_unknown_person_is_404(client: TestClient[Any, Any], scene: Scene) -> None:
    body = await get_trace(client, scene.auditor, params(scene, person="999999"), status=404)
    assert body["error"]["code"] == "person_not_found"


async def test_cli_writes_the_csv_and_records_the_trace(
    db_url: str, conn: asyncpg.Connection, scene: Scene, tmp_path: Path
) -> None:
    env = env_for(db_url, tmp_path)
    out = tmp_path / "trace.csv"
    common = ["--person", str(scene.f0), "--from", iso(-24 * 60), "--to", iso(24 * 60)]
    done = run_cli(
        "trace",
        *common,
        "--open-until",
        iso(230),
        "--min-overlap",
        "40",
        "--out",
        str(out),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    assert [(r[0], r[4]) for r in rows[1:]] == [
        (str(scene.c), "360.0"),
        (str(scene.a), "60.0"),
        (str(scene.b), "50.0"),
    ]
    to_stdout = run_cli("trace", *common, "--same-gate", "--open-until", iso(230), env=env)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.startswith("\ufeff")
    assert len(to_stdout.stdout.splitlines()) == 1 + 3
    events = await conn.fetch("SELECT actor, detail FROM events WHERE kind = 'trace' ORDER BY id")
    assert [(e["actor"], e["detail"]["contacts"], e["detail"]["format"]) for e in events] == [
        ("cli", 3, "csv"),
        ("cli", 3, "csv"),
    ]


async def test_cli_refuses_bad_input(db_url: str, scene: Scene, tmp_path: Path) -> None:
    env = env_for(db_url, tmp_path)
    backwards = run_cli(
        "trace", "--person", str(scene.f0), "--from", iso(60), "--to", iso(0), env=env
    )
    assert backwards.returncode == 2
    assert "later than from" in backwards.stderr
    unknown = run_cli("trace", "--person", "999999", "--from", iso(0), "--to", iso(60), env=env)
    assert unknown.returncode == 1
    assert "no person" in unknown.stderr
