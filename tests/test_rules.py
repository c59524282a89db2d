"""Site rules and flagged areas: the admin API, and their effect on declarations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service.declarations.policy import SiteRules
from service.events.log import verify_chain
from service.web.auth import Role
from tests.declaring import declaration
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]


async def test_rules_round_trip(
    client: Client, site_id: int, tokens: dict[Role, str], conn: asyncpg.Connection
) -> None:
    url = f"/api/v1/sites/{site_id}/rules"
    auditor = bearer(tokens[Role.AUDITOR])
    resp = await client.get(url, headers=auditor)
    assert resp.status == 200
    assert await resp.json() == {"site_id": site_id, "rules": SiteRules().model_dump(mode="json")}

    rules = {
        "validity": {"mode": "end_of_day"},
        "actions": {"symptoms": "reject"},
        "visitor_test_required": True,
        "visitor_test_days": 2,
    }
    resp = await client.put(url, json=rules, headers=bearer(tokens[Role.ADMIN]))
    assert resp.status == 200, await resp.text()
    expected = SiteRules.model_validate(rules).model_dump(mode="json")
    assert (await resp.json())["rules"] == expected
    resp = await client.get(url, headers=bearer(tokens[Role.GUARD]))
    assert (await resp.json())["rules"] == expected
    stored = await conn.fetchval("SELECT declaration_rules FROM sites WHERE id = $1", site_id)
    assert stored == expected
    assert (await verify_chain(conn, site_id)).broken is None

    # The new rules apply: a visitor now needs a test.
    resp = await client.post("/api/v1/declarations", json=declaration(site_id))
    assert (await resp.json())["reasons"][0]["code"] == "test_required"


async def test_bad_rules_are_422(client: Client, site_id: int, tokens: dict[Role, str]) -> None:
    admin = bearer(tokens[Role.ADMIN])
    url = f"/api/v1/sites/{site_id}/rules"
    for body, field in [
        ({"actions": {"symptoms": "shrug"}}, "actions.symptoms"),
        ({"validity": {"mode": "hours", "hours": 0}}, "validity.hours.hours"),
        ({"test_cadence_days": {"high": 99}}, "test_cadence_days.high"),
        ({"unknown": 1}, "unknown"),
    ]:
        resp = await client.put(url, json=body, headers=admin)
        assert resp.status == 422, body
        fields = [f["field"] for f in (await resp.json())["error"]["fields"]]
        assert field in fields, fields
    resp = await client.put("/api/v1/sites/999999/rules", json={}, headers=admin)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "site_not_found"


async def test_guard_of_another_site_may_not_read_rules(
    client: Client, tokens: dict[Role, str], factory: Factory
) -> None:
    other = await factory.site()
    resp = await client.get(f"/api/v1/sites/{other}/rules", headers=bearer(tokens[Role.GUARD]))
    assert resp.status == 403


async def test_flagged_areas_round_trip_and_effect(
    client: Client, site_id: int, tokens: dict[Role, str]
) -> None:
    admin = bearer(tokens[Role.ADMIN])
    url = f"/api/v1/sites/{site_id}/flagged-areas"
    today = datetime.now(UTC).date()
    body = {"name": "Đông Triều", "code": "QN-DT", "flagged_from": str(today - timedelta(days=3))}
    resp = await client.post(url, json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    area = await resp.json()
    assert area["name"] == "Đông Triều" and area["flagged_until"] is None

    resp = await client.get(url, headers=bearer(tokens[Role.GUARD]))
    assert [a["id"] for a in (await resp.json())["flagged_areas"]] == [area["id"]]

    decl = declaration(site_id, travel_areas=["dong trieu"])
    result = await (await client.post("/api/v1/declarations", json=decl)).json()
    assert result["status"] == "review"
    assert result["reasons"][0]["code"] == "travel_flagged_area"

    resp = await client.delete(f"{url}/{area['id']}", headers=admin)
    assert resp.status == 204
    resp = await client.delete(f"{url}/{area['id']}", headers=admin)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "flagged_area_not_found"
    # Declared again from the first result's link: the same person, no longer in review.
    again = decl | {"redeclare_key": result["redeclare_key"]}
    result = await (await client.post("/api/v1/declarations", json=again)).json()
    assert result["status"] == "cleared"


async def test_bad_flagged_areas_are_422(
    client: Client, site_id: int, tokens: dict[Role, str]
) -> None:
    admin = bearer(tokens[Role.ADMIN])
    url = f"/api/v1/sites/{site_id}/flagged-areas"
    for body, field in [
        ({"name": "", "flagged_from": "2021-10-01"}, "name"),
        ({"name": "Q1", "code": "x" * 41, "flagged_from": "2021-10-01"}, "code"),
        ({"name": "Q1", "flagged_from": "2021-10-01", "flagged_until": "2021-09-01"}, "body"),
        ({"name": "Q1", "flagged_from": "tomorrow"}, "flagged_from"),
        ({"name": "Q1"}, "flagged_from"),
    ]:
        resp = await client.post(url, json=body, headers=admin)
        assert resp.status == 422, body
        fields = [f["field"] for f in (await resp.json())["error"]["fields"]]
        assert field in fields, fields
    resp = await client.post(
        "/api/v1/sites/999999/flagged-areas",
        json={"name": "Q1", "flagged_from": "2021-10-01"},
        headers=admin,
    )
    assert resp.status == 404
