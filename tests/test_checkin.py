"""The door decision: one test per reason code, then the rules that need a sequence."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from checkin_core.base45 import b45decode, b45encode
from checkin_core.keys import SigningKey
from checkin_core.passes import issue_pass
from checkin_core.reasons import REASONS
from service.checkin.batch import decide_batch
from service.checkin.wire import ScanIn, ScanItem
from service.events.log import verify_chain
from service.passes.trust import PassAuthenticator
from service.web.auth import Role
from tests.checkin_helpers import Door, make_door, scan, scan_body
from tests.factory import Factory, bearer

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def door(factory: Factory) -> Door:
    return await make_door(factory)


async def valid_pass(factory: Factory, door: Door, **kw: Any) -> str:
    return (await factory.issued_pass(door.key, door.site_id, **kw))[1]


async def test_a_valid_pass_is_welcome_and_opens_a_stay(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection
) -> None:
    payload = await valid_pass(factory, door)
    answer = await scan(client, door.kiosk[door.entrance], payload)
    assert answer["decision"] == "allow" and answer["reason"] == "welcome"
    assert answer["message_vi"] == "Mời vào" and answer["message_en"] == "Welcome"
    assert answer["name"].startswith("N. V. A. ")  # initials only on the public screen
    assert answer["direction"] == "in" and answer["duplicate"] is False
    assert await conn.fetchval("SELECT count(*) FROM presence WHERE exited_at IS NULL") == 1


def tampered(payload: str) -> str:
    raw = bytearray(b45decode(payload[4:]))
    raw[-1] ^= 0x01
    return "CG1:" + b45encode(bytes(raw))


async def deny_case(
    factory: Factory, door: Door, conn: asyncpg.Connection, case: str
) -> tuple[str, int]:
    """Set up the situation of one deny reason; return (payload, gate)."""
    gate = door.entrance
    if case == "malformed":
        return "hello, I am not a pass <script>", gate
    if case == "unknown_key":
        return issue_pass(
            SigningKey.generate(),
            pass_id=uuid.uuid4(),
            site_id=door.site_id,
            not_before=NOW - timedelta(hours=1),
            not_after=NOW + timedelta(hours=1),
        ), gate
    if case == "bad_signature":
        return tampered(await valid_pass(factory, door)), gate
    if case == "expired":
        return await valid_pass(
            factory, door, not_before=NOW - timedelta(hours=9), not_after=NOW - timedelta(hours=1)
        ), gate
    if case == "not_yet_valid":
        return await valid_pass(
            factory, door, not_before=NOW + timedelta(hours=1), not_after=NOW + timedelta(hours=9)
        ), gate
    if case == "wrong_site":
        other = await factory.site()
        return (await factory.issued_pass(door.key, other))[1], gate
    if case == "pass_unknown":
        return (await factory.issued_pass(door.key, door.site_id, store=False))[1], gate
    if case in ("pass_revoked", "pass_superseded"):
        pass_id, payload = await factory.issued_pass(door.key, door.site_id)
        why = "superseded" if case == "pass_superseded" else "revoked by admin"
        await conn.execute(
            "UPDATE passes SET revoked_at = now(), revoked_reason = $2 WHERE id = $1", pass_id, why
        )
        return payload, gate
    if case == "deny_listed":
        person = await factory.person()
        await conn.execute(
            "INSERT INTO deny_list (person_id, reason, added_by) VALUES ($1, 'test', 'admin:1')",
            person,
        )
        return await valid_pass(factory, door, person_id=person), gate
    if case == "declaration_missing":
        person = await factory.person()
        decl = await factory.declaration(person, door.site_id)
        await conn.execute("UPDATE declarations SET superseded_at = now() WHERE id = $1", decl)
        return await valid_pass(factory, door, person_id=person, declaration_id=decl), gate
    if case in ("declaration_review", "declaration_rejected"):
        person = await factory.person()
        decl = await factory.declaration(person, door.site_id, status=case.split("_")[1])
        return await valid_pass(factory, door, person_id=person, declaration_id=decl), gate
    if case == "declaration_expired":
        person = await factory.person()
        decl = await factory.declaration(
            person,
            door.site_id,
            submitted_at=NOW - timedelta(days=2),
            valid_until=NOW - timedelta(minutes=1),
        )
        return await valid_pass(factory, door, person_id=person, declaration_id=decl), gate
    if case == "gate_closed":
        closed = await factory.gate(door.site_id, name="Cổng đêm", direction="entrance")
        other_day = (datetime.now(UTC).astimezone().isoweekday() % 7) + 1
        await conn.execute(
            "UPDATE gates SET opening_hours = $2 WHERE id = $1",
            closed,
            [{"days": [other_day], "opens": "00:00:00", "closes": "00:00:01"}],
        )
        door.kiosk[closed] = await factory.token(Role.KIOSK, gate_id=closed)
        return await valid_pass(factory, door), closed
    raise AssertionError(case)


DENY_CASES = [
    "malformed",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_site",
    "pass_unknown",
    "pass_revoked",
    "pass_superseded",
    "deny_listed",
    "declaration_missing",
    "declaration_review",
    "declaration_rejected",
    "declaration_expired",
    "gate_closed",
]


@pytest.mark.parametrize("case", DENY_CASES)
async def test_each_deny_reason(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection, case: str
) -> None:
    payload, gate = await deny_case(factory, door, conn, case)
    answer = await scan(client, door.kiosk[gate], payload)
    assert (answer["decision"], answer["reason"]) == ("deny", case)
    assert (answer["message_vi"], answer["message_en"]) == REASONS[case][1:]
    # Every attempt is on record, with its reason.
    row = await conn.fetchrow(
        "SELECT decision, reason, detail FROM events WHERE event_id = $1",
        uuid.UUID(answer["event_id"]),
    )
    assert (row["decision"], row["reason"]) == ("deny", case)
    assert await conn.fetchval("SELECT count(*) FROM presence") == 0


async def test_wrong_direction_at_an_entrance(
    client: TestClient[Any, Any], factory: Factory, door: Door
) -> None:
    answer = await scan(
        client, door.kiosk[door.entrance], await valid_pass(factory, door), direction="out"
    )
    assert (answer["decision"], answer["reason"]) == ("deny", "wrong_direction")


async def test_anti_passback_and_exit_pairing(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection
) -> None:
    payload = await valid_pass(factory, door)
    assert (await scan(client, door.kiosk[door.entrance], payload))["reason"] == "welcome"
    assert (await scan(client, door.kiosk[door.entrance], payload))["reason"] == "already_inside"
    out = await scan(client, door.kiosk[door.exit], payload)
    assert (out["decision"], out["reason"], out["direction"]) == ("allow", "goodbye", "out")
    assert (await scan(client, door.kiosk[door.entrance], payload))["reason"] == "welcome"
    stays = await conn.fetch("SELECT exited_at, exit_kind FROM presence ORDER BY id")
    assert [s["exit_kind"] for s in stays] == ["scan", None]


async def test_anti_passback_warn_mode_allows_with_a_warning(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection
) -> None:
    await conn.execute(
        'UPDATE sites SET checkin_rules = checkin_rules || \'{"anti_passback": "warn"}\''
        " WHERE id = $1",
        door.site_id,
    )
    payload = await valid_pass(factory, door)
    await scan(client, door.kiosk[door.entrance], payload)
    again = await scan(client, door.kiosk[door.entrance], payload)
    assert (again["decision"], again["reason"]) == ("allow", "welcome")
    detail = await conn.fetchval(
        "SELECT detail FROM events WHERE event_id = $1", uuid.UUID(again["event_id"])
    )
    assert detail["warnings"] == ["already_inside"]
    assert await conn.fetchval("SELECT count(*) FROM presence") == 1


async def test_the_same_pass_at_two_gates_is_a_shared_pass(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection
) -> None:
    await conn.execute(
        'UPDATE sites SET checkin_rules = checkin_rules || \'{"anti_passback": "warn"}\''
        " WHERE id = $1",
        door.site_id,
    )
    payload = await valid_pass(factory, door)
    assert (await scan(client, door.kiosk[door.entrance], payload))["reason"] == "welcome"
    second = await scan(client, door.kiosk[door.entrance_b], payload)
    assert (second["decision"], second["reason"]) == ("deny", "shared_pass")


async def test_exit_is_never_refused_for_an_expired_or_revoked_pass(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection
) -> None:
    pass_id, payload = await factory.issued_pass(door.key, door.site_id)
    await scan(client, door.kiosk[door.entrance], payload)
    await conn.execute(
        "UPDATE passes SET revoked_at = now(), revoked_reason = 'F1' WHERE id = $1", pass_id
    )
    out = await scan(client, door.kiosk[door.exit], payload)
    assert (out["decision"], out["reason"]) == ("allow", "goodbye")
    never_in = await scan(client, door.kiosk[door.exit], await valid_pass(factory, door))
    assert never_in["decision"] == "allow"
    detail = await conn.fetchval(
        "SELECT detail FROM events WHERE event_id = $1", uuid.UUID(never_in["event_id"])
    )
    assert detail["warnings"] == ["not_inside"]
    garbage = await scan(client, door.kiosk[door.exit], "not a pass")
    assert (garbage["decision"], garbage["reason"]) == ("deny", "malformed")


async def test_capacity_is_never_exceeded_under_concurrent_entries(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory, capacity=5)
    payloads = [await valid_pass(factory, door) for _ in range(20)]
    tokens = [door.kiosk[door.entrance], door.kiosk[door.entrance_b]]
    answers = await asyncio.gather(
        *(scan(client, tokens[i % 2], p) for i, p in enumerate(payloads))
    )
    reasons = sorted(a["reason"] for a in answers)
    assert reasons.count("welcome") == 5 and reasons.count("site_full") == 15
    assert await conn.fetchval("SELECT count(*) FROM presence WHERE exited_at IS NULL") == 5


async def test_the_same_event_sent_twenty_times_at_once_is_recorded_once(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection
) -> None:
    body = scan_body(await valid_pass(factory, door))
    headers = bearer(door.kiosk[door.entrance])

    async def send() -> dict[str, Any]:
        resp = await client.post("/api/v1/scans", json=body, headers=headers)
        assert resp.status == 200
        answer: dict[str, Any] = await resp.json()
        return answer

    answers = await asyncio.gather(*(send() for _ in range(20)))
    assert {(a["decision"], a["reason"]) for a in answers} == {("allow", "welcome")}
    assert sum(not a["duplicate"] for a in answers) == 1
    assert await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'scan'") == 1
    assert await conn.fetchval("SELECT count(*) FROM presence") == 1


async def test_a_reused_event_id_with_another_payload_keeps_the_first(
    client: TestClient[Any, Any], factory: Factory, door: Door
) -> None:
    first = scan_body(await valid_pass(factory, door))
    await scan(client, door.kiosk[door.entrance], first["payload"], event_id=first["event_id"])
    again = await scan(client, door.kiosk[door.entrance], "forged", event_id=first["event_id"])
    assert again["duplicate"] is True and again["conflict"] == "event_id_reused"
    assert (again["decision"], again["reason"]) == ("allow", "welcome")


@pytest.mark.parametrize("batched", [False, True])
async def test_batch_decides_exactly_as_one_by_one(
    factory: Factory, conn: asyncpg.Connection, batched: bool
) -> None:
    """Scans from several gates grouped into one transaction see the effects of the
    ones before them (presence, capacity, the last gate of a pass), exactly as if they
    had been decided one per transaction."""
    door = await make_door(factory, capacity=3)
    await conn.execute(
        "UPDATE sites SET checkin_rules = checkin_rules || '{\"shared_pass_window_s\": 600}'"
        " WHERE id = $1",
        door.site_id,
    )
    people = [await valid_pass(factory, door) for _ in range(5)]
    gates = {"A": door.entrance, "B": door.entrance_b, "X": door.exit}
    script = [
        (0, "A"),
        (0, "A"),
        (1, "B"),
        (0, "X"),
        (2, "A"),
        (1, "A"),
        (3, "A"),
        (0, "B"),
        (2, "X"),
        (4, "A"),
    ]
    items = [
        ScanItem(ScanIn.model_validate(scan_body(people[p])), gates[g], "kiosk:test")
        for p, g in script
    ]
    authenticator = PassAuthenticator()
    now = datetime.now(UTC)
    if batched:
        decisions = (await decide_batch(conn, items, authenticator, now)).decisions
    else:
        decisions = [
            (await decide_batch(conn, [i], authenticator, now)).decisions[0] for i in items
        ]
    assert [d.reason for d in decisions] == [
        "welcome",
        "already_inside",
        "welcome",
        "goodbye",
        "welcome",
        "shared_pass",
        "welcome",
        "site_full",
        "goodbye",
        "welcome",
    ]
    assert await conn.fetchval("SELECT count(*) FROM presence WHERE exited_at IS NULL") == 3


async def test_chain_verifies_after_scans(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection
) -> None:
    for _ in range(3):
        await scan(client, door.kiosk[door.entrance], await valid_pass(factory, door))
    await scan(client, door.kiosk[door.entrance], "junk")
    report = await verify_chain(conn, door.site_id)
    assert report.broken is None and report.checked == 4


async def test_an_exit_kiosk_with_a_slow_clock_still_closes_the_stay(
    client: TestClient[Any, Any], factory: Factory, door: Door, conn: asyncpg.Connection
) -> None:
    payload = await valid_pass(factory, door)
    await scan(client, door.kiosk[door.entrance], payload)
    behind = (datetime.now(UTC) - timedelta(minutes=4)).isoformat()
    out = await scan(client, door.kiosk[door.exit], payload, seen_at=behind)
    assert (out["decision"], out["reason"]) == ("allow", "goodbye")
    stay = await conn.fetchrow("SELECT entered_at, exited_at FROM presence")
    assert stay["exited_at"] >= stay["entered_at"]


async def test_leaving_and_coming_back_in_one_batch(
    factory: Factory, conn: asyncpg.Connection, door: Door
) -> None:
    payload = await valid_pass(factory, door)
    authenticator = PassAuthenticator()
    enter = ScanItem(ScanIn.model_validate(scan_body(payload)), door.entrance, "kiosk:test")
    await decide_batch(conn, [enter], authenticator)
    items = [
        ScanItem(ScanIn.model_validate(scan_body(payload)), gate, "kiosk:test")
        for gate in (door.exit, door.entrance, door.exit, door.entrance)
    ]
    decisions = (await decide_batch(conn, items, authenticator)).decisions
    assert [d.reason for d in decisions] == ["goodbye", "welcome", "goodbye", "welcome"]
    stays = await conn.fetch("SELECT exited_at IS NULL AS open FROM presence ORDER BY id")
    assert [s["open"] for s in stays] == [False, False, True]
