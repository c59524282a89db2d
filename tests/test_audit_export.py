"""The auditor's API: event exports in three formats, chain verification, a person's
movements and the daily report of a site."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.events.log import (
    HASHED_FIELDS,
    AppendedEvent,
    NewEvent,
    append_events,
    digest_of,
    link,
)
from service.platform.db import init_connection
from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer, scan_record

EVENTS = "/api/v1/audit/events"
VERIFY = "/api/v1/audit/verify"
BOM = "\ufeff".encode()
T0 = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
Client = TestClient[Any, Any]


@dataclass
class Seeded:
    site_a: int
    site_b: int
    gate_a: int
    gate_b: int
    nhung: int
    viet: int
    appended: list[AppendedEvent]


async def append(conn: asyncpg.Connection, events: list[NewEvent]) -> list[AppendedEvent]:
    async with conn.transaction():
        return await append_events(conn, events)


def scan_event(site: int, gate: int, person: int | None, minute: int, **over: Any) -> NewEvent:
    at = over.pop("occurred_at", T0 + timedelta(minutes=minute))
    return scan_record(site, gate, person, at, **over)


async def seed(conn: asyncpg.Connection, factory: Factory) -> Seeded:
    """40 scans over two sites and two people at T0 + n minutes, an override and a
    manual exit; seeded, so every run has the same mix."""
    site_a, site_b = await factory.site(), await factory.site()
    gate_a, gate_b = await factory.gate(site_a), await factory.gate(site_b)
    nhung = await factory.person(full_name="Nguyễn Thị Hồng Nhung")
    viet = await factory.person(full_name="Trần Đức Việt")
    rng = random.Random(42)
    events = []
    for minute in range(40):
        site, gate = rng.choice([(site_a, gate_a), (site_b, gate_b)])
        decision = rng.choice(["allow", "deny"])
        reason = "welcome" if decision == "allow" else rng.choice(["expired", "already_inside"])
        person = rng.choice([nhung, viet, None])
        events.append(scan_event(site, gate, person, minute, decision=decision, reason=reason))
    events.append(
        NewEvent(
            kind="override",
            actor="guard:2",
            occurred_at=T0 + timedelta(minutes=41),
            site_id=site_a,
            gate_id=gate_a,
            person_id=nhung,
            direction="in",
            decision="allow",
            reason="override_allowed",
            detail={"reason": "Đã kiểm tra giấy tờ"},
        )
    )
    events.append(
        NewEvent(
            kind="manual_exit",
            actor="guard:2",
            occurred_at=T0 + timedelta(minutes=42),
            site_id=site_a,
            person_id=nhung,
            direction="out",
        )
    )
    return Seeded(site_a, site_b, gate_a, gate_b, nhung, viet, await append(conn, events))


@pytest.fixture
async def auditor(factory: Factory) -> dict[str, str]:
    return bearer(await factory.token(Role.AUDITOR))


async def fetch_json_all(
    client: Client, headers: dict[str, str], params: dict[str, str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page_params = params | ({"after": after} if after else {})
        resp = await client.get(EVENTS, params=page_params, headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        rows += body["events"]
        after = body["next"]
        if after is None:
            return rows


def read_csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(BOM)
    return list(csv.DictReader(io.StringIO(body[len(BOM) :].decode("utf-8"), newline="")))


async def export(
    client: Client, headers: dict[str, str], fmt: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    """All rows of an export in any format, as dicts of text (csv) or JSON values."""
    if fmt == "json":
        return await fetch_json_all(client, headers, params)
    resp = await client.get(EVENTS, params=params | {"format": fmt}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Disposition"].startswith("attachment; filename=")
    assert resp.headers["Content-Disposition"].endswith(f'.{fmt}"')
    body = await resp.read()
    if fmt == "csv":
        return list(read_csv(body))
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]


def ids_of(rows: list[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in rows if r["kind"] != "export"]


FILTERS: dict[
    str, tuple[Callable[[Seeded], dict[str, str]], Callable[[Seeded, NewEvent], bool]]
] = {
    "none": (lambda s: {}, lambda s, e: True),
    "site_id": (lambda s: {"site_id": str(s.site_b)}, lambda s, e: e.site_id == s.site_b),
    "gate_id": (lambda s: {"gate_id": str(s.gate_a)}, lambda s, e: e.gate_id == s.gate_a),
    "person_id": (lambda s: {"person_id": str(s.viet)}, lambda s, e: e.person_id == s.viet),
    "decision": (lambda s: {"decision": "deny"}, lambda s, e: e.decision == "deny"),
    "reason": (lambda s: {"reason": "expired"}, lambda s, e: e.reason == "expired"),
    "kind": (lambda s: {"kind": "override"}, lambda s, e: e.kind == "override"),
    # 08:10 to 08:20 in Hà Nội time is T0 + 10 to 20 minutes; `to` is exclusive.
    "from_to": (
        lambda s: {"from": "2026-03-10T08:10:00+07:00", "to": "2026-03-10T01:20:00Z"},
        lambda s, e: T0 + timedelta(minutes=10) <= e.occurred_at < T0 + timedelta(minutes=20),
    ),
    "combined": (
        lambda s: {"site_id": str(s.site_a), "decision": "allow", "person_id": str(s.nhung)},
        lambda s, e: e.site_id == s.site_a and e.decision == "allow" and e.person_id == s.nhung,
    ),
}


@pytest.mark.parametrize("fmt", ["json", "csv", "jsonl"])
@pytest.mark.parametrize("name", sorted(FILTERS))
async def test_each_filter_in_each_format(
    client: Client,
    factory: Factory,
    conn: asyncpg.Connection,
    auditor: dict[str, str],
    fmt: str,
    name: str,
) -> None:
    seeded = await seed(conn, factory)
    params_of, keep = FILTERS[name]
    expected = [a.id for a in seeded.appended if keep(seeded, a.event)]
    assert expected, "the filter should match something"
    rows = await export(client, auditor, fmt, params_of(seeded))
    assert ids_of(rows) == expected


async def test_json_rows_have_every_column_with_zoned_times(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    seeded = await seed(conn, factory)
    rows = await fetch_json_all(client, auditor, {"kind": "override"})
    (row,) = rows
    recorded_at = datetime.fromisoformat(row.pop("recorded_at"))
    assert recorded_at.tzinfo is not None
    assert row == {
        "id": seeded.appended[40].id,
        "site_id": seeded.site_a,
        "seq": seeded.appended[40].seq,
        "kind": "override",
        "occurred_at": "2026-03-10T01:41:00+00:00",
        "occurred_at_local": "2026-03-10 08:41:00",
        "timezone": "Asia/Ho_Chi_Minh",
        "gate_id": seeded.gate_a,
        "gate_name": await conn.fetchval("SELECT name FROM gates WHERE id = $1", seeded.gate_a),
        "person_id": seeded.nhung,
        "full_name": "Nguyễn Thị Hồng Nhung",
        "event_id": None,
        "pass_id": None,
        "direction": "in",
        "decision": "allow",
        "reason": "override_allowed",
        "actor": "guard:2",
        "detail": {"reason": "Đã kiểm tra giấy tờ"},
    }


async def test_csv_of_real_scans_round_trips_vietnamese_names(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    door = await make_door(factory)
    person = await factory.person(full_name="Lê Thị Ánh Tuyết")
    pass_id, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    entered = await scan(client, door.kiosk[door.entrance], payload)
    left = await scan(client, door.kiosk[door.exit], payload)

    resp = await client.get(
        EVENTS, params={"format": "csv", "site_id": str(door.site_id)}, headers=auditor
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = await resp.read()
    assert body.startswith(BOM)
    table = list(csv.reader(io.StringIO(body[len(BOM) :].decode("utf-8"), newline="")))
    header, rows = table[0], [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    assert header[:12] == ["id", "site_id", "seq", "kind", "occurred_at", "occurred_at_local",
                           "timezone", "recorded_at", "gate_id", "gate_name", "person_id",
                           "full_name"]  # fmt: skip
    assert "hash" not in header
    scans = [r for r in rows if r["kind"] == "scan"]
    assert [(r["event_id"], r["direction"], r["reason"]) for r in scans] == [
        (entered["event_id"], "in", "welcome"),
        (left["event_id"], "out", "goodbye"),
    ]
    for r in scans:
        assert r["full_name"] == "Lê Thị Ánh Tuyết"
        assert r["pass_id"] == str(pass_id)
        utc = datetime.fromisoformat(r["occurred_at"])
        assert utc.utcoffset() == timedelta(0)
        # The site's local time, as the console shows it (the demo site is in Hà Nội).
        assert r["timezone"] == "Asia/Ho_Chi_Minh"
        local = datetime.strptime(r["occurred_at_local"], "%Y-%m-%d %H:%M:%S")
        assert local == utc.astimezone(HCM).replace(tzinfo=None, microsecond=0)
    assert [r["gate_name"] for r in scans] == ["Cổng A", "Cổng ra"]
    assert json.loads(scans[0]["detail"])["name"] == "L. T. Á. Tuyết"
    # The export's own record is left out unless asked for ...
    assert "export" not in {r["kind"] for r in rows}
    resp = await client.get(
        EVENTS,
        params={"format": "csv", "site_id": str(door.site_id), "include_exports": "true"},
        headers=auditor,
    )
    # ... and then it is in its own file (it is recorded before streaming).
    with_exports = read_csv(await resp.read())
    assert [r["kind"] for r in with_exports][-1] == "export"
    assert [r["kind"] for r in with_exports].count("export") == 2


async def test_csv_neutralises_formulas_but_json_keeps_the_text(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    site = await factory.site()
    gate = await factory.gate(site)
    names = ['=HYPERLINK("http://evil.example","Bấm vào")', "+84 912 345 678", "@SUM(A1:A9)",
             "-2+3", "\tTab", "\rCR", "Phạm Văn Đồng"]  # fmt: skip
    people = [await factory.person(full_name=n) for n in names]
    await append(
        conn,
        [
            scan_event(site, gate, p, i, actor="=cmd|' /C calc'!A0", reason="+welcome")
            for i, p in enumerate(people)
        ],
    )
    rows = await export(client, auditor, "csv", {"site_id": str(site), "kind": "scan"})
    assert [r["full_name"] for r in rows] == ["'" + n for n in names[:-1]] + ["Phạm Văn Đồng"]
    assert {r["actor"] for r in rows} == {"'=cmd|' /C calc'!A0"}
    assert {r["reason"] for r in rows} == {"'+welcome"}
    raw = await export(client, auditor, "jsonl", {"site_id": str(site), "kind": "scan"})
    assert [r["full_name"] for r in raw] == names


async def test_json_paging_sees_each_row_once_while_events_arrive(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    seeded = await seed(conn, factory)
    seen: list[int] = []
    after: str | None = None
    pages = 0
    while True:
        params = {"limit": "7"} | ({"after": after} if after else {})
        resp = await client.get(EVENTS, params=params, headers=auditor)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert len(body["events"]) <= 7
        seen += [e["id"] for e in body["events"]]
        pages += 1
        # Rows keep arriving at both sites between pages.
        await append(
            conn,
            [
                scan_event(seeded.site_a, seeded.gate_a, None, 100 + pages),
                scan_event(seeded.site_b, seeded.gate_b, None, 100 + pages),
            ],
        )
        after = body["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    # The walk is everything up to its own first export record (which it leaves out).
    assert seen == [a.id for a in seeded.appended]
    assert pages == 6  # 42 rows by 7
    assert await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'export'") == pages
    # A new walk sees what arrived meanwhile, and the exports when asked.
    again = await fetch_json_all(client, auditor, {"limit": "5000", "include_exports": "true"})
    assert len(again) == len(seen) + 2 * pages + pages + 1


async def test_included_hashes_let_a_recipient_check_the_chain(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    seeded = await seed(conn, factory)
    for fmt in ("jsonl", "csv", "json"):
        params = {"site_id": str(seeded.site_a), "include_hashes": "true"}
        rows = await export(client, auditor, fmt, params)
        prev = bytes(32)
        for seq, row in enumerate(rows, start=1):
            assert int(row["seq"]) == seq
            digest, prev_hash = bytes.fromhex(row["digest"]), bytes.fromhex(row["prev_hash"])
            assert prev_hash == prev
            assert link(prev_hash, digest) == bytes.fromhex(row["hash"])
            prev = bytes.fromhex(row["hash"])
            if fmt != "csv":  # the record itself hashes to its digest
                record = {k: row[k] for k in HASHED_FIELDS}
                record["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
                for key in ("pass_id", "event_id"):
                    record[key] = uuid.UUID(row[key]) if row[key] else None
                assert digest_of(record) == digest
        head = await conn.fetchval(
            "SELECT last_hash FROM event_chains WHERE chain_id = $1", seeded.site_a
        )
        assert prev == bytes(head)


async def test_an_export_is_recorded_with_its_filters(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    seeded = await seed(conn, factory)
    headers = bearer(await factory.token(Role.AUDITOR, label="Kiểm toán"))
    token_id = await conn.fetchval("SELECT id FROM api_tokens WHERE label = 'Kiểm toán'")
    params = {
        "site_id": str(seeded.site_a),
        "decision": "deny",
        "from": "2026-03-10T08:00:00+07:00",
        "format": "csv",
    }
    resp = await client.get(EVENTS, params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    row = await conn.fetchrow(
        "SELECT site_id, actor, detail, occurred_at FROM events WHERE kind = 'export'"
    )
    assert row["site_id"] == seeded.site_a
    assert row["actor"] == f"auditor:{token_id}:Kiểm toán"
    assert row["detail"] == {
        "what": "events",
        "filters": {
            "site_id": seeded.site_a,
            "decision": "deny",
            "from": "2026-03-10T08:00:00+07:00",
        },
        "format": "csv",
        "include_hashes": False,
    }
    assert abs(row["occurred_at"] - datetime.now(UTC)) < timedelta(minutes=1)


async def test_an_unencoded_plus_in_an_offset_is_read_as_one(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    seeded = await seed(conn, factory)
    resp = await client.get(
        EVENTS + "?from=2026-03-10T08:10:00+07:00&to=2026-03-10T08:20:00+07:00", headers=auditor
    )
    assert resp.status == 200, await resp.text()
    expected = [a.id for a in seeded.appended[10:20]]
    assert ids_of((await resp.json())["events"]) == expected


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        (EVENTS + "?format=xml", "format"),
        (EVENTS + "?from=yesterday", "from"),
        (EVENTS + "?from=2026-03-10T08:00:00", "from"),
        (EVENTS + "?to=2026-02-30T00:00:00Z", "to"),
        (EVENTS + "?from=2026-03-10T02:00:00Z&to=2026-03-10T09:00:00%2B07:00", "to"),
        (EVENTS + "?site_id=abc", "site_id"),
        (EVENTS + "?gate_id=-1", "gate_id"),
        (EVENTS + "?person_id=1234567890123456789", "person_id"),
        (EVENTS + "?limit=0", "limit"),
        (EVENTS + "?limit=5001", "limit"),
        (EVENTS + "?decision=maybe", "decision"),
        (EVENTS + "?kind=nope", "kind"),
        (EVENTS + "?after=%21%21%21", "after"),
        (EVENTS + "?after=OTo1", "after"),  # "9:5": after beyond the walk's end
        (EVENTS + "?include_hashes=yes", "include_hashes"),
        (VERIFY + "?site_id=x", "site_id"),
        (VERIFY + "?from_seq=0", "from_seq"),
        (VERIFY + "?site_id=1&from_seq=5&to_seq=2", "to_seq"),
        ("/api/v1/people/1/movements?from=bad", "from"),
        ("/api/v1/people/1/movements?format=jsonl", "format"),
        ("/api/v1/sites/1/report?date=2026-13-01", "date"),
        ("/api/v1/sites/1/report?date=2026-03-10&format=pdf", "format"),
    ],
)
async def test_bad_parameters_are_400(
    client: Client, auditor: dict[str, str], site_id: int, url: str, parameter: str
) -> None:
    resp = await client.get(url, headers=auditor)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "bad_parameter" and error["parameter"] == parameter
    assert parameter in error["message"]


async def test_the_report_needs_a_date(
    client: Client, auditor: dict[str, str], site_id: int
) -> None:
    resp = await client.get(f"/api/v1/sites/{site_id}/report", headers=auditor)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "missing_parameter"


@pytest.mark.parametrize(
    "url",
    [
        EVENTS + "?format=csv",
        VERIFY,
        "/api/v1/sites/{site}/report?date=2026-03-10",
    ],
)
@pytest.mark.parametrize("role", [Role.GUARD, Role.KIOSK])
async def test_guards_and_kiosks_may_not_audit(
    client: Client, tokens: dict[Role, str], conn: asyncpg.Connection, site_id: int, url: str,
    role: Role,
) -> None:  # fmt: skip
    resp = await client.get(url.format(site=site_id), headers=bearer(tokens[role]))
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    assert await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'export'") == 0


async def test_verify_reports_an_edited_row(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    seeded = await seed(conn, factory)
    in_a = [a for a in seeded.appended if a.chain_id == seeded.site_a]
    resp = await client.get(VERIFY, params={"site_id": str(seeded.site_a)}, headers=auditor)
    assert await resp.json() == {
        "chain_id": seeded.site_a,
        "checked": len(in_a),
        "first_seq": 1,
        "last_seq": len(in_a),
        "ok": True,
        "broken": None,
    }
    edited = in_a[4]
    await conn.execute(
        "UPDATE events SET detail = detail || '{\"edited\": true}' WHERE id = $1", edited.id
    )
    resp = await client.get(VERIFY, params={"site_id": str(seeded.site_a)}, headers=auditor)
    body = await resp.json()
    assert body["ok"] is False and body["checked"] == 4
    assert body["broken"]["seq"] == edited.seq == 5
    assert body["broken"]["event_row_id"] == edited.id
    assert "edited" in body["broken"]["problem"]
    # A range before the edit still verifies.
    resp = await client.get(
        VERIFY, params={"site_id": str(seeded.site_a), "to_seq": "4"}, headers=auditor
    )
    assert (await resp.json())["ok"] is True

    resp = await client.get(VERIFY, headers=auditor)
    everything = await resp.json()
    assert everything["ok"] is False
    by_chain = {c["chain_id"]: c for c in everything["chains"]}
    assert set(by_chain) == {0, seeded.site_a, seeded.site_b}
    assert by_chain[seeded.site_a]["broken"]["event_row_id"] == edited.id
    assert by_chain[seeded.site_b]["ok"] and by_chain[0]["ok"]

    resp = await client.get(VERIFY, params={"site_id": "999999"}, headers=auditor)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "site_not_found"


async def test_movements_of_a_person_from_real_scans(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    door = await make_door(factory, name="Cục Hải quan")
    person = await factory.person(full_name="Lê Thị Ánh Tuyết")
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    for gate in (door.entrance, door.exit, door.entrance_b):
        assert (await scan(client, door.kiosk[gate], payload))["decision"] == "allow"

    url = f"/api/v1/people/{person}/movements"
    resp = await client.get(url, headers=auditor)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["person_id"] == person and body["full_name"] == "Lê Thị Ánh Tuyết"
    first, second = body["movements"]
    assert (first["site_id"], first["site_name"], first["entry_gate"]) == (
        door.site_id, "Cục Hải quan", "Cổng A"
    )  # fmt: skip
    assert (first["exit_gate"], first["exit_kind"]) == ("Cổng ra", "scan")
    assert (second["entry_gate"], second["exited_at"], second["exit_kind"]) == (
        "Cổng B",
        None,
        None,
    )
    entered = datetime.fromisoformat(first["entered_at"])
    exited = datetime.fromisoformat(first["exited_at"])
    assert entered.tzinfo is not None and entered <= exited <= datetime.fromisoformat(
        second["entered_at"]
    )

    # Only the stays that overlap [from, to).
    after_first = (exited + timedelta(microseconds=1)).isoformat()
    resp = await client.get(url, params={"from": after_first}, headers=auditor)
    assert [m["stay_id"] for m in (await resp.json())["movements"]] == [second["stay_id"]]
    resp = await client.get(url, params={"to": first["entered_at"]}, headers=auditor)
    assert (await resp.json())["movements"] == []

    resp = await client.get(url, params={"format": "csv"}, headers=auditor)
    assert resp.status == 200
    assert resp.headers["Content-Disposition"].startswith("attachment; filename=")
    rows = read_csv(await resp.read())
    assert [(r["entry_gate"], r["exit_gate"]) for r in rows] == [("Cổng A", "Cổng ra"),
                                                                 ("Cổng B", "")]  # fmt: skip
    assert rows[0]["site_name"] == "Cục Hải quan"

    exports = await conn.fetch(
        "SELECT person_id, detail FROM events WHERE kind = 'export' ORDER BY id"
    )
    assert [r["person_id"] for r in exports] == [person] * 4
    assert exports[-1]["detail"] == {
        "what": "movements",
        "filters": {"person_id": person},
        "format": "csv",
    }

    resp = await client.get("/api/v1/people/999999/movements", headers=auditor)
    assert resp.status == 404


def hcm(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=HCM)


async def test_daily_report_of_a_scripted_day(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    site = await factory.site()
    other = await factory.site()
    gate, other_gate = await factory.gate(site), await factory.gate(other)
    people = [await factory.person() for _ in range(7)]
    # Stays (site time, 10 March): one carried over from the evening before, one that
    # begins as another ends (10:00), one still open, one the next day.
    stays = [
        (hcm(9, 20), hcm(10, 8, 30)),
        (hcm(10, 8), hcm(10, 12)),
        (hcm(10, 9), hcm(10, 10)),
        (hcm(10, 9, 30), hcm(10, 11, 30)),
        (hcm(10, 10), hcm(10, 10, 45)),
        (hcm(10, 11), None),
        (hcm(11, 0), hcm(11, 1)),
    ]
    for person, (entered, exited) in zip(people, stays, strict=True):
        await conn.execute(
            "INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event,"
            " exited_at, exit_kind) VALUES ($1, $2, $3, $4, 0, $5, $6)",
            site,
            person,
            entered,
            gate,
            exited,
            "scan" if exited else None,
        )
    for person in people[:4]:  # a busier day elsewhere
        await conn.execute(
            "INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event,"
            " exited_at, exit_kind) VALUES ($1, $2, $3, $4, 0, $5, 'scan')",
            other,
            person,
            hcm(10, 9),
            other_gate,
            hcm(10, 10),
        )

    def at(when: datetime, **over: Any) -> NewEvent:
        return scan_event(site, gate, people[0], 0, occurred_at=when, **over)

    await append(
        conn,
        [
            at(hcm(10, 0, 30)),  # 17:30 UTC the day before: still the 10th here
            at(hcm(10, 7)),
            at(hcm(10, 8)),
            at(hcm(10, 23, 59)),
            at(hcm(9, 23, 59)),  # the day before
            at(hcm(11, 0, 0)),  # the day after (the end is exclusive)
            at(hcm(10, 9), decision="deny", reason="expired"),
            at(hcm(10, 9, 1), decision="deny", reason="expired"),
            at(hcm(10, 9, 2), decision="deny", reason="already_inside"),
            at(hcm(10, 17), direction="out", reason="goodbye"),
            at(hcm(10, 18), direction="out", reason="goodbye"),
            NewEvent(
                kind="override",
                actor="guard:1",
                occurred_at=hcm(10, 9, 3),
                site_id=site,
                gate_id=gate,
                person_id=people[0],
                direction="in",
                decision="allow",
                reason="override_allowed",
            ),
            NewEvent(
                kind="manual_exit",
                actor="guard:1",
                occurred_at=hcm(10, 19),
                site_id=site,
                person_id=people[0],
                direction="out",
            ),
            NewEvent(kind="export", actor="auditor:1", occurred_at=hcm(10, 12), site_id=site),
            scan_event(other, other_gate, None, 0, occurred_at=hcm(10, 9)),
            scan_event(
                other,
                other_gate,
                None,
                0,
                occurred_at=hcm(10, 9),
                decision="deny",
                reason="expired",
            ),
        ],
    )
    url = f"/api/v1/sites/{site}/report"
    resp = await client.get(url, params={"date": "2026-03-10"}, headers=auditor)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "site_id": site,
        "date": "2026-03-10",
        "timezone": "Asia/Ho_Chi_Minh",
        "entries": 5,
        "exits": 3,
        "manual_exits": 1,
        "denials": 3,
        "denials_by_reason": {"expired": 2, "already_inside": 1},
        # 09:30: stays 2, 3, 4; at 10:00 one leaves as another comes: still 3.
        "peak_occupancy": 3,
        "peak_at": "2026-03-10T09:30:00+07:00",
    }

    resp = await client.get(url, params={"date": "2026-03-10", "format": "csv"}, headers=auditor)
    assert resp.status == 200
    metrics = {r["metric"]: r["value"] for r in read_csv(await resp.read())}
    assert metrics["entries"] == "5" and metrics["denials:expired"] == "2"
    assert metrics["peak_occupancy"] == "3"

    resp = await client.get(url, params={"date": "2026-03-12"}, headers=auditor)
    quiet = await resp.json()
    assert (quiet["entries"], quiet["peak_occupancy"], quiet["peak_at"]) == (
        0,
        1,
        "2026-03-12T00:00:00+07:00",
    )
    resp = await client.get(
        "/api/v1/sites/999999/report", params={"date": "2026-03-10"}, headers=auditor
    )
    assert resp.status == 404


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_a_long_export_streams_in_chunks(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str], fmt: str
) -> None:
    site = await factory.site()
    gate = await factory.gate(site)
    person = await factory.person(full_name="Đặng Thuỳ Trâm")
    appended = await append(conn, [scan_event(site, gate, person, i) for i in range(1234)])
    resp = await client.get(
        EVENTS, params={"format": fmt, "site_id": str(site), "kind": "scan"}, headers=auditor
    )
    assert resp.status == 200
    assert "Content-Length" not in resp.headers  # streamed, not built whole
    chunks = [chunk async for chunk in resp.content.iter_any()]
    body = b"".join(chunks)
    rows = read_csv(body) if fmt == "csv" else [json.loads(x) for x in body.splitlines()]
    assert [int(r["id"]) for r in rows] == [a.id for a in appended]
    assert {r["full_name"] for r in rows} == {"Đặng Thuỳ Trâm"}


async def test_a_walk_waits_for_a_write_that_holds_an_older_id(
    client: TestClient[Any, Any], db_url: str, tokens: dict[Role, str], factory: Factory
) -> None:
    """Another site's batch has taken an event id and not committed yet: the walk's
    first page waits for it instead of skipping past its id for ever."""
    other_site = await factory.site()
    writer = await asyncpg.connect(db_url)
    await init_connection(writer)
    tx = writer.transaction()
    await tx.start()
    await append_events(
        writer,
        [
            NewEvent(
                kind="admin", actor="admin:1", occurred_at=datetime.now(UTC), site_id=other_site
            )
        ],
    )
    walk = asyncio.create_task(
        client.get("/api/v1/audit/events?limit=50", headers=bearer(tokens[Role.AUDITOR]))
    )
    await asyncio.sleep(0.3)
    assert not walk.done()  # waiting for the older write to end
    await tx.commit()
    await writer.close()
    resp = await asyncio.wait_for(walk, 5)
    kinds = [e["kind"] for e in (await resp.json())["events"]]
    assert kinds == ["admin"]


async def test_the_openapi_document_names_the_export_parameters(client: Client) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    operation = spec["paths"]["/api/v1/audit/events"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    # A flag is documented with the exact words it takes (true, false, 1, 0).
    assert params["include_exports"] == params["include_hashes"]
    assert {"true", "false"} <= set(params["include_exports"]["enum"])
    assert {"site_id", "kind", "from", "to", "format", "after", "limit"} <= params.keys()


async def test_json_lines_made_by_the_database_match_the_json_pages(
    client: Client, factory: Factory, conn: asyncpg.Connection, auditor: dict[str, str]
) -> None:
    await seed(conn, factory)
    for params in ({}, {"include_hashes": "true"}):
        lines = await export(client, auditor, "jsonl", params)
        pages = await fetch_json_all(client, auditor, params)
        for row in lines + pages:  # the same instants, with or without trailing zeros
            for key in ("occurred_at", "recorded_at"):
                row[key] = datetime.fromisoformat(row[key])
        # The same rows and values; the page walk also has the JSON Lines' export record.
        assert lines == pages[: len(lines)]
        assert {r["kind"] for r in pages[len(lines) :]} <= {"export"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
async def test_an_export_of_a_site_that_does_not_exist_is_a_404(
    client: TestClient[Any, Any], tokens: dict[Role, str], fmt: str
) -> None:
    # Found by tests/test_openapi_constraints.py: it was a 500 (no event chain to record
    # the export in).
    resp = await client.get(
        "/api/v1/audit/events",
        params={"format": fmt, "site_id": "49146098"},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "site_not_found"
