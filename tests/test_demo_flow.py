"""The journey of the `make run` demo: declare, get a pass, scan it at the door."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service.demo import seed_demo
from service.events import verify_chain
from tests.checkin_helpers import scan
from tests.conftest import bearer
from tests.declaring import declaration


async def test_declare_then_scan_twice_and_the_guard_sees_both(
    client: TestClient[Any, Any], conn: asyncpg.Connection
) -> None:
    demo = await seed_demo(conn)
    resp = await client.post("/api/v1/declarations", json=declaration(demo.site_id))
    assert resp.status in (200, 201), await resp.text()
    declared = await resp.json()
    assert declared["status"] == "cleared"
    payload = declared["pass"]["payload"]

    url = f"/api/v1/events/stream?site_id={demo.site_id}"
    async with client.ws_connect(url, headers=bearer(demo.tokens["guard"])) as console:
        assert (await console.receive_json())["type"] == "hello"
        first = await scan(client, demo.tokens["kiosk-entrance"], payload)
        second = await scan(client, demo.tokens["kiosk-entrance"], payload)
        seen = []
        while len(seen) < 2:
            event = await asyncio.wait_for(console.receive_json(), 5)
            if event.get("kind") == "scan":
                seen.append(event)
    assert (first["decision"], first["reason"]) == ("allow", "welcome")
    assert (second["decision"], second["reason"]) == ("deny", "already_inside")
    assert [e["event_id"] for e in seen] == [first["event_id"], second["event_id"]]
    out = await scan(client, demo.tokens["kiosk-exit"], payload)
    assert (out["decision"], out["reason"]) == ("allow", "goodbye")
    assert (await verify_chain(conn, demo.site_id)).broken is None
