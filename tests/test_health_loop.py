"""Issue 19's loop, end to end: the real service, real PostgreSQL, kiosks' scans.

Three people declare; two enter and overlap; an area the third travelled to is
flagged and their next scan is denied; a case is recorded for the first, who is then
denied; the second, listed as a contact, is suspended and denied; an official
negative taken after the exposure clears them and the door lets them in. Every step
is in the site's hash chain with its actor, and the console's feed shows it by name;
a second instance of the service on the same database denies the same from the next
scan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from service.app import create_app
from service.events.log import verify_chain
from service.platform.settings import Settings
from tests.factory import Factory, bearer
from tests.health_helpers import Client, call, declare, door, make_desk


async def feed_until(console: Any, kind: str, count: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while len(seen) < count:
        event = await asyncio.wait_for(console.receive_json(), 10)
        if event.get("kind") == kind:
            seen.append(event)
    return seen


async def test_the_loop(
    client: Client,
    factory: Factory,
    conn: asyncpg.Connection,
    settings: Settings,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    desk = await make_desk(factory)
    # A second instance of the service on the same database: the door is one.
    replica = await aiohttp_client(create_app(settings=settings))
    site = desk.site_id
    first = await declare(client, site, "Nguyễn Văn An", "0912 000 001")
    second = await declare(client, site, "Trần Thị Bình", "0912 000 002")
    third = await declare(
        client, site, "Lê Văn Cường", "0912 000 003", travel_areas=["Phường Thạch Bàn"]
    )
    # The third comes and goes before the others; the first two overlap for two minutes.
    assert await door(client, desk.entrance, third, 290) == ("allow", "welcome")
    assert await door(client, desk.exit, third, 280) == ("allow", "goodbye")
    assert await door(client, desk.entrance, first, 240) == ("allow", "welcome")
    assert await door(client, desk.entrance, second, 180) == ("allow", "welcome")
    assert await door(client, desk.exit, second, 60) == ("allow", "goodbye")
    assert await door(client, desk.exit, first, 30) == ("allow", "goodbye")

    url = f"/api/v1/events/stream?site_id={site}"
    async with client.ws_connect(url, headers=bearer(desk.health)) as console:
        assert (await console.receive_json())["type"] == "hello"

        # Flag the area (spelt without diacritics): the third is re-screened and held.
        today = datetime.now(UTC).date()
        flagged = await call(
            client,
            "POST",
            f"/api/v1/sites/{site}/flagged-areas",
            desk.health,
            201,
            name="phuong  thach ban",
            flagged_from=(today - timedelta(days=3)).isoformat(),
        )
        assert (flagged["rescreened"], flagged["suspended"]) == (1, 1)
        assert await door(client, desk.entrance, third) == ("deny", "area_flagged")
        (held,) = await feed_until(console, "suspension", 1)
        assert (held["person_id"], held["name"], held["reason"]) == (
            third.person_id,
            third.name,
            "area_flagged",
        )
        assert held["message_en"].startswith("Entry suspended")

        # A case for the first: denied at once; the second is their one contact.
        case = await call(
            client,
            "POST",
            "/api/v1/cases",
            desk.health,
            201,
            person_id=first.person_id,
            onset_on=today.isoformat(),
            note="PCR dương tính, CDC quận báo",
        )
        assert await door(client, desk.entrance, first) == ("deny", "case_confirmed")
        assert await door(replica, desk.entrance, first) == ("deny", "case_confirmed")
        (contact,) = case["contacts"]
        assert (contact["person_id"], contact["name"]) == (second.person_id, second.name)
        assert 1.9 <= contact["overlap_minutes"] <= 2.1
        assert [g["name"] for g in contact["gates"]] == ["Cổng A"]
        assert datetime.fromisoformat(contact["first_overlap_at"]) < datetime.fromisoformat(
            contact["last_overlap_at"]
        )

        # Suspend the contact: denied; the answer says until what test.
        suspended = await call(
            client,
            "POST",
            f"/api/v1/cases/{case['id']}/contacts/suspend",
            desk.health,
            200,
            all=True,
        )
        (hold,) = suspended["suspended"]
        assert hold["person_id"] == second.person_id
        assert hold["clear_after"] == contact["last_overlap_at"]  # quarantine 0 days
        assert await door(replica, desk.entrance, second) == ("deny", "contact_traced")

        # An official negative taken after the exposure clears them: the door opens.
        test = await call(
            client,
            "POST",
            "/api/v1/tests",
            desk.health,
            201,
            person_id=second.person_id,
            kind="pcr",
            taken_at=datetime.now(UTC).isoformat(),
            result="negative",
            source="CDC Hà Nội",
        )
        assert test["cleared"] == [{"site_id": site, "case_id": case["id"]}]
        assert test["suspensions"] == []
        assert await door(client, desk.entrance, second) == ("allow", "welcome")
        # ... and nobody else's hold moved.
        assert await door(client, desk.entrance, first) == ("deny", "case_confirmed")
        assert await door(client, desk.entrance, third) == ("deny", "area_flagged")
        cleared = await feed_until(console, "suspension_cleared", 1)
        assert cleared[0]["name"] == second.name

    steps = await conn.fetch(
        "SELECT kind, person_id, reason, actor FROM events WHERE site_id = $1"
        " AND kind IN ('suspension', 'suspension_cleared', 'health_case', 'official_test')"
        " ORDER BY seq",
        site,
    )
    assert [(s["kind"], s["person_id"], s["reason"]) for s in steps] == [
        ("suspension", third.person_id, "area_flagged"),
        ("health_case", first.person_id, None),
        ("suspension", first.person_id, "case_confirmed"),
        ("suspension", second.person_id, "contact_traced"),
        ("official_test", second.person_id, None),
        ("suspension_cleared", second.person_id, "contact_traced"),
    ]
    assert {s["actor"] for s in steps} == {steps[0]["actor"]}
    assert steps[0]["actor"].startswith("health:")
    assert (await verify_chain(conn, site)).broken is None
