"""What kiosks know offline, from the real service: GET /api/v1/kiosk/sync (kiosk token
only, its own site only, cursors) and the socket's ``knowledge`` pushes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.events import fanout
from service.health.suspensions import Hold, suspend
from service.web.auth import Role
from tests.checkin_helpers import Door, make_door
from tests.factory import Factory, bearer
from tests.health_helpers import declare, make_desk, official_test
from tests.test_errors import assert_error

Client = TestClient[Any, Any]
SYNC = "/api/v1/kiosk/sync"


async def sync(client: Client, token: str, after: str | None = None) -> dict[str, Any]:
    params = {"after": after} if after is not None else {}
    resp = await client.get(SYNC, params=params, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def refused(answer: dict[str, Any]) -> dict[uuid.UUID, str | None]:
    return {uuid.UUID(c["pass_id"]): c["reason"] for c in answer["changes"]}


async def revoke(client: Client, door: Door, pass_id: uuid.UUID) -> None:
    resp = await client.post(
        f"/api/v1/passes/{pass_id}/revoke", json={"reason": "lost"}, headers=bearer(door.admin)
    )
    assert resp.status == 200, await resp.text()


async def test_only_a_kiosk_token_syncs_and_only_its_own_site(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    other = await make_door(factory)
    revoked_here, _ = await factory.issued_pass(door.key, door.site_id)
    revoked_there, _ = await factory.issued_pass(other.key, other.site_id)
    await revoke(client, door, revoked_here)
    await revoke(client, other, revoked_there)
    for token in (door.admin, door.guard, await factory.token(Role.AUDITOR)):
        resp = await client.get(SYNC, headers=bearer(token))
        assert resp.status == 403
        assert_error(await resp.json(), "forbidden")
    resp = await client.get(SYNC)
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")
    answer = await sync(client, door.kiosk[door.entrance])
    assert answer["snapshot"] is True and answer["site_id"] == door.site_id
    assert refused(answer) == {revoked_here: "pass_revoked"}  # not the other site's
    assert answer["rules"] == {
        "max_offline_age_s": 86400,
        "anti_passback": "strict",
        "repeat_window_s": 120,
        "static_pass": "allow",
    }


async def test_changes_since_a_cursor_revoked_deny_listed_suspended_and_cleared(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    kiosk = door.kiosk[door.entrance]
    person = await factory.person()
    kept, _ = await factory.issued_pass(door.key, door.site_id)
    first = await sync(client, kiosk)
    assert refused(first) == {}

    revoked, _ = await factory.issued_pass(door.key, door.site_id)
    denied, _ = await factory.issued_pass(door.key, door.site_id, person_id=person)
    suspended_person = await factory.person()
    suspended, _ = await factory.issued_pass(door.key, door.site_id, person_id=suspended_person)
    await revoke(client, door, revoked)
    resp = await client.post(
        "/api/v1/deny-list",
        json={"person_id": person, "site_id": None, "reason": "threats"},  # every site
        headers=bearer(door.admin),
    )
    assert resp.status == 201, await resp.text()
    entry = (await resp.json())["id"]
    area = await conn.fetchval(
        "INSERT INTO flagged_areas (site_id, name, flagged_from) VALUES ($1, 'Chợ', now())"
        " RETURNING id",
        door.site_id,
    )
    async with conn.transaction():
        await suspend(
            conn,
            site_id=door.site_id,
            cause="area_flagged",
            holds=[Hold(suspended_person)],
            actor="health:test",
            now=datetime.now(UTC),
            area_id=area,
        )

    second = await sync(client, kiosk, first["cursor"])
    assert second["snapshot"] is False and second["from"] == first["cursor"]
    assert refused(second) == {
        revoked: "pass_revoked",
        denied: "deny_listed",
        suspended: "area_flagged",
    }
    assert kept not in refused(second)
    # nothing new: the same cursor; passes issued just before it are told again (a
    # first pass of a person already refused logs no event), the revoked one is not
    again = await sync(client, kiosk, second["cursor"])
    assert again["cursor"] == again["from"] == second["cursor"]
    assert refused(again) == {denied: "deny_listed", suspended: "area_flagged"}

    resp = await client.post(
        f"/api/v1/deny-list/{entry}/remove",
        json={"reason": "apologised"},
        headers=bearer(door.admin),
    )
    assert resp.status == 204, await resp.text()
    third = await sync(client, kiosk, second["cursor"])
    assert refused(third) == {denied: None, suspended: "area_flagged"}  # forget that one


async def test_a_first_pass_of_a_person_already_refused_is_told(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    kiosk = door.kiosk[door.entrance]
    person = await factory.person()
    resp = await client.post(
        "/api/v1/deny-list",
        json={"person_id": person, "site_id": door.site_id, "reason": "threats"},
        headers=bearer(door.admin),
    )
    assert resp.status == 201, await resp.text()
    before = await sync(client, kiosk)
    first, _ = await factory.issued_pass(door.key, door.site_id, person_id=person)  # no event
    assert refused(await sync(client, kiosk, before["cursor"])) == {first: "deny_listed"}


async def test_bad_and_old_cursors(client: Client, factory: Factory) -> None:
    door = await make_door(factory)
    kiosk = door.kiosk[door.entrance]
    for bad in ("abc", "1", "1.2.3", "-1.0", "1." + "9" * 19):
        resp = await client.get(SYNC, params={"after": bad}, headers=bearer(kiosk))
        assert resp.status == 400, bad
        body = await resp.json()
        assert_error(body, "bad_cursor")
        assert body["error"]["parameter"] == "after"
        assert body["error"]["message_vi"].startswith("after phải là con trỏ")
    resp = await client.get(SYNC, params={"after": "1.0\x01"}, headers=bearer(kiosk))
    assert resp.status == 422  # the text rules of every query parameter
    # a cursor ahead of the log (a restored database): the whole copy again
    ahead = await sync(client, kiosk, "999999.999999")
    assert ahead["snapshot"] is True and ahead["from"] is None


async def test_max_offline_age_is_a_door_rule_with_bounds(client: Client, factory: Factory) -> None:
    door = await make_door(factory)
    url = f"/api/v1/sites/{door.site_id}/door-rules"
    resp = await client.put(url, json={"max_offline_age_s": 30}, headers=bearer(door.admin))
    assert resp.status == 422
    assert [f["field"] for f in (await resp.json())["error"]["fields"]] == ["max_offline_age_s"]
    resp = await client.put(url, json={"max_offline_age_s": 3600}, headers=bearer(door.admin))
    assert resp.status == 200, await resp.text()
    answer = await sync(client, door.kiosk[door.entrance])
    assert answer["rules"]["max_offline_age_s"] == 3600


async def test_the_printed_pass_rule_reaches_the_kiosk_by_sync(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    kiosk = door.kiosk[door.entrance]
    before = await sync(client, kiosk)
    url = f"/api/v1/sites/{door.site_id}/door-rules"
    resp = await client.put(url, json={"static_pass": "guard_check"}, headers=bearer(door.admin))
    assert resp.status == 200, await resp.text()
    after = await sync(client, kiosk, before["cursor"])
    assert after["rules"]["static_pass"] == "guard_check"


async def test_a_revocation_is_pushed_to_the_kiosk_sockets_of_its_site(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    target, _ = await factory.issued_pass(door.key, door.site_id)
    sockets = [
        await client.ws_connect("/api/v1/kiosk/stream", headers=bearer(door.kiosk[g]))
        for g in (door.entrance, door.exit)
    ]
    try:
        for ws in sockets:
            assert (await ws.receive_json())["type"] == "hello"
        before = await sync(client, door.kiosk[door.entrance])
        await asyncio.sleep(0.3)  # the site's watch has read its cursor
        await revoke(client, door, target)
        for ws in sockets:
            async with asyncio.timeout(10):
                msg = await ws.receive_json()
            assert msg["type"] == "knowledge"
            assert refused(msg) == {target: "pass_revoked"}
            assert msg["snapshot"] is False and msg["cursor"] != before["cursor"]
    finally:
        for ws in sockets:
            await ws.close()


@pytest.fixture
def no_fanout_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the app starts: only a push can reach the kiosks in the test's time."""
    monkeypatch.setattr(fanout, "POLL_INTERVAL_S", 3600.0)


async def test_a_positive_official_test_is_pushed_to_the_kiosks_at_once(
    no_fanout_poll: None, client: Client, factory: Factory
) -> None:
    desk = await make_desk(factory)
    person = await declare(client, desk.site_id, "Lê Văn Dương", "0912000777")
    ws = await client.ws_connect("/api/v1/kiosk/stream", headers=bearer(desk.entrance))
    try:
        assert (await ws.receive_json())["type"] == "hello"
        await sync(client, desk.entrance)
        await asyncio.sleep(0.3)  # the site's watch has read its cursor
        await official_test(client, desk.health, person.person_id, "positive", datetime.now(UTC))
        async with asyncio.timeout(20):
            msg = await ws.receive_json()
        assert msg["type"] == "knowledge"
        assert set(refused(msg).values()) == {"case_confirmed"}
    finally:
        await ws.close()
