"""Who may override which denial, and when: a person known at the site, reasons only an
admin may override, the site's override window, and a denial the person has since
gone past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from checkin_core.reasons import ADMIN_ONLY_OVERRIDES
from service.people.scope import KNOWN_AT_SITE_SQL
from tests.checkin_helpers import Door, make_door, scan
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]


async def override(
    client: Client, token: str, event_id: str, person_id: int | None = None
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"event_id": event_id, "reason": "Đã kiểm tra giấy tờ gốc"}
    if person_id is not None:
        body["person_id"] = person_id
    resp = await client.post("/api/v1/overrides", json=body, headers=bearer(token))
    return resp.status, await resp.json()


def refusal(answer: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    status, body = answer
    error = body["error"]
    assert error["message_vi"] and error["message_en"] == error["message"]
    return status, error["code"]


async def known_person(factory: Factory, door: Door, **declaration: Any) -> tuple[int, str]:
    person = await factory.person()
    decl = await factory.declaration(person, door.site_id, **declaration)
    _, payload = await factory.issued_pass(
        door.key, door.site_id, person_id=person, declaration_id=decl
    )
    return person, payload


async def revoked_person(factory: Factory, door: Door) -> str:
    """The pass of a person whose passes were revoked (after a positive test)."""
    person, payload = await known_person(factory, door)
    await factory.conn.execute(
        "UPDATE passes SET revoked_at = now(), revoked_reason = 'F0' WHERE person_id = $1", person
    )
    return payload


async def test_a_scan_that_named_nobody_takes_only_a_person_known_at_the_site(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    other = await make_door(factory)
    stranger, _ = await known_person(factory, other)  # declared for the other site only
    denied = await scan(client, door.kiosk[door.entrance], "not a pass")
    nobody = int(await conn.fetchval("SELECT max(id) + 1000 FROM people"))
    for token in (door.guard, door.admin):  # not even an admin pulls them in
        answers = [await override(client, token, denied["event_id"], p) for p in (stranger, nobody)]
        assert [(s, b["error"]["code"]) for s, b in answers] == [(404, "person_not_found")] * 2
    assert not await conn.fetchval(KNOWN_AT_SITE_SQL, stranger, door.site_id)
    assert await conn.fetchval("SELECT count(*) FROM presence WHERE person_id = $1", stranger) == 0
    assert await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'override'") == 0
    mine, _ = await known_person(factory, door)
    status, body = await override(client, door.guard, denied["event_id"], mine)
    assert status == 201 and body["person_id"] == mine


async def test_a_guard_may_not_override_a_revoked_pass_or_the_deny_list_an_admin_may(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    revoked_payload = await revoked_person(factory, door)
    listed, listed_payload = await known_person(factory, door)
    await conn.execute(
        "INSERT INTO deny_list (person_id, site_id, reason, added_by) VALUES ($1, $2, 'x', 't')",
        listed,
        door.site_id,
    )
    _, rejected_payload = await known_person(factory, door, status="rejected")
    for payload, reason in (
        (revoked_payload, "pass_revoked"),
        (listed_payload, "deny_listed"),
        (rejected_payload, "declaration_rejected"),
    ):
        denied = await scan(client, door.kiosk[door.entrance], payload)
        assert denied["reason"] == reason and reason in ADMIN_ONLY_OVERRIDES
        answer = await override(client, door.guard, denied["event_id"])
        assert refusal(answer) == (403, "override_admin_only")
        status, _ = await override(client, door.admin, denied["event_id"])
        assert status == 201
    actors = await conn.fetch("SELECT actor FROM events WHERE kind = 'override' ORDER BY id")
    assert [r["actor"].split(":")[0] for r in actors] == ["admin"] * 3


async def test_an_offline_denial_hiding_a_revoked_pass_is_the_admins_too(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    payload = await revoked_person(factory, door)
    denied = await scan(
        client,
        door.kiosk[door.entrance],
        payload,
        offline={"verdict": "deny", "reason": "offline_denied"},
    )
    assert denied["reason"] == "offline_denied"
    assert refusal(await override(client, door.guard, denied["event_id"])) == (
        403,
        "override_admin_only",
    )


async def test_an_override_must_come_within_the_sites_window(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    _, payload = await known_person(factory, door, status="review")
    # Replayed from an offline kiosk, 14 minutes after the door said no.
    seen = datetime.now(UTC) - timedelta(minutes=14)
    denied = await scan(
        client,
        door.kiosk[door.entrance],
        payload,
        seen_at=seen.isoformat(),
        offline={"verdict": "deny", "reason": "offline_denied"},
    )
    assert refusal(await override(client, door.guard, denied["event_id"])) == (
        409,
        "override_too_late",
    )
    # The window is the site's: an admin widens it to 20 minutes, and the guard may.
    url = f"/api/v1/sites/{door.site_id}/door-rules"
    rules = (await (await client.get(url, headers=bearer(door.guard))).json())["rules"]
    assert rules["override_window_s"] == 300
    resp = await client.put(
        url, json=rules | {"override_window_s": 1200}, headers=bearer(door.admin)
    )
    assert resp.status == 200, await resp.text()
    status, _ = await override(client, door.guard, denied["event_id"])
    assert status == 201


async def test_the_override_window_setting_is_validated_and_the_admins(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    url = f"/api/v1/sites/{door.site_id}/door-rules"
    for bad in (0, 5, 3601, "five"):
        resp = await client.put(url, json={"override_window_s": bad}, headers=bearer(door.admin))
        error = (await resp.json())["error"]
        assert resp.status == 422 and error["fields"][0]["field"] == "override_window_s", bad
    resp = await client.put(url, json={"override_window_s": 600}, headers=bearer(door.guard))
    assert resp.status == 403
    resp = await client.put(url, json={"override_window_s": 600}, headers=bearer(door.admin))
    assert (await resp.json())["rules"]["override_window_s"] == 600
    resp = await client.get(
        f"/api/v1/sites/{door.site_id + 99}/door-rules", headers=bearer(door.admin)
    )
    assert resp.status == 404


async def test_an_override_is_refused_once_the_person_has_gone_through(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    person, payload = await known_person(factory, door)
    denied = await scan(client, door.kiosk[door.entrance], "crumpled print-out")
    allowed = await scan(client, door.kiosk[door.entrance_b], payload)  # then their phone
    assert allowed["decision"] == "allow"
    answer = await override(client, door.guard, denied["event_id"], person)
    assert refusal(answer) == (409, "denial_superseded")
    # After they left, the old denial at the entrance is still over.
    await scan(client, door.kiosk[door.exit], payload)
    assert refusal(await override(client, door.admin, denied["event_id"], person)) == (
        409,
        "denial_superseded",
    )
