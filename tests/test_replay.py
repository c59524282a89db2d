"""An old event id replayed with another payload: the first one stands.

Over every road (socket, single scan, batch) and in the same micro-batch as the
original: the answer is the first decision with ``duplicate: true`` and
``conflict: "event_id_reused"``, the stored scan is unchanged and nothing is appended.
(test_checkin.py has the single-route case and twenty identical copies at once.)
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.checkin.batch import decide_batch, payload_digest
from service.checkin.batcher import AUTHENTICATOR_KEY
from service.checkin.wire import ScanIn, ScanItem
from service.events.log import verify_chain
from tests.checkin_helpers import Door, make_door, scan_body
from tests.factory import Factory, bearer

ROADS = ("ws", "http", "batch")


@pytest.fixture
async def door(factory: Factory) -> Door:
    return await make_door(factory)


async def send(
    client: TestClient[Any, Any], token: str, road: str, *bodies: dict[str, Any]
) -> list[dict[str, Any]]:
    """Scans over one road, in order; their answers."""
    if road == "ws":
        async with client.ws_connect("/api/v1/kiosk/stream", headers=bearer(token)) as ws:
            await ws.receive_json()
            answers = []
            for body in bodies:
                await ws.send_json({"type": "scan", **body})
                answers.append(await ws.receive_json(timeout=30))
            return answers
    if road == "batch":
        resp = await client.post(
            "/api/v1/scans/batch", json={"scans": list(bodies)}, headers=bearer(token)
        )
        assert resp.status == 200, await resp.text()
        decisions: list[dict[str, Any]] = (await resp.json())["decisions"]
        return decisions
    answers = []
    for body in bodies:
        resp = await client.post("/api/v1/scans", json=body, headers=bearer(token))
        assert resp.status == 200, await resp.text()
        answers.append(await resp.json())
    return answers


async def log_state(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], ...]:
    """Everything a replay could touch: the log with its hashes, chain heads, presence."""
    return (
        await conn.fetch("SELECT * FROM events ORDER BY id"),
        await conn.fetch("SELECT * FROM event_chains ORDER BY chain_id"),
        await conn.fetch("SELECT * FROM presence ORDER BY id"),
    )


def first_decision(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("duplicate", "conflict", "type")}


@pytest.mark.parametrize(("first_road", "replay_road"), [(a, b) for a in ROADS for b in ROADS])
async def test_a_replay_with_another_payload_changes_nothing(
    client: TestClient[Any, Any],
    factory: Factory,
    conn: asyncpg.Connection,
    door: Door,
    first_road: str,
    replay_road: str,
) -> None:
    _, mine = await factory.issued_pass(door.key, door.site_id)
    _, someone_elses = await factory.issued_pass(door.key, door.site_id)
    token = door.kiosk[door.entrance]
    original = scan_body(mine)
    (first,) = await send(client, token, first_road, original)
    assert (first["reason"], first["duplicate"]) == ("welcome", False)
    before = await log_state(conn)

    # The other person's genuine pass under the old id, and junk under it: neither is
    # decided, and the answer is the first one's.
    replays = [original | {"payload": someone_elses}, original | {"payload": "junk"}]
    for replay in replays:
        (again,) = await send(client, token, replay_road, replay)
        assert again["duplicate"] is True and again["conflict"] == "event_id_reused"
        assert first_decision(again) == first_decision(first)
    (same,) = await send(client, token, replay_road, original)
    assert same["duplicate"] is True and "conflict" not in same
    assert await log_state(conn) == before


async def test_a_replay_in_the_same_batch_as_the_original(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection, door: Door
) -> None:
    _, mine = await factory.issued_pass(door.key, door.site_id)
    _, someone_elses = await factory.issued_pass(door.key, door.site_id)
    original = scan_body(mine)
    answers = await send(
        client,
        door.kiosk[door.entrance],
        "batch",
        original,
        original | {"payload": someone_elses},
        original,
    )
    assert [(a["reason"], a["duplicate"], a.get("conflict")) for a in answers] == [
        ("welcome", False, None),
        ("welcome", True, "event_id_reused"),
        ("welcome", True, None),
    ]
    assert first_decision(answers[1]) == first_decision(answers[0])
    (row,) = await conn.fetch("SELECT detail FROM events WHERE kind = 'scan'")
    assert row["detail"]["payload_len"] == len(mine)
    assert await conn.fetchval("SELECT count(*) FROM presence") == 1


async def test_a_replay_from_another_kiosk_in_the_same_micro_batch(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection, door: Door
) -> None:
    """Two kiosks' scans grouped into one transaction by the batcher (called here
    directly, so that they are certainly together): the first in the batch stands,
    whichever gate sent the copy."""
    _, mine = await factory.issued_pass(door.key, door.site_id)
    _, someone_elses = await factory.issued_pass(door.key, door.site_id)
    event_id = uuid.uuid4()
    items = [
        ScanItem(ScanIn.model_validate(scan_body(p, event_id=str(event_id))), gate, "kiosk:t")
        for p, gate in ((mine, door.entrance), (someone_elses, door.entrance_b))
    ]
    result = await decide_batch(conn, items, client.app[AUTHENTICATOR_KEY])
    first, copy = (d.as_json() for d in result.decisions)
    assert (first["reason"], first["duplicate"]) == ("welcome", False)
    assert copy["duplicate"] is True and copy["conflict"] == "event_id_reused"
    assert first_decision(copy) == first_decision(first)
    rows = await conn.fetch("SELECT gate_id, detail FROM events WHERE event_id = $1", event_id)
    assert [(r["gate_id"], r["detail"]["payload_len"]) for r in rows] == [
        (door.entrance, len(mine))
    ]
    assert await conn.fetchval("SELECT count(*) FROM presence") == 1


@pytest.mark.limits(kiosk_sockets_per_token=3)  # three sockets of one token race here
async def test_racing_copies_over_every_road_record_one_scan(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection, door: Door
) -> None:
    """Copies with different payloads sent at once over the three roads: whichever is
    decided first is the only record, and every other answer is that decision, flagged
    as a conflict exactly when its payload differs from the recorded one."""
    passes = [(await factory.issued_pass(door.key, door.site_id))[1] for _ in range(3)]
    event_id = str(uuid.uuid4())
    bodies = [scan_body(p, event_id=event_id) for p in passes * 3]
    token = door.kiosk[door.entrance]
    answers = [
        answer
        for group in await asyncio.gather(
            *(send(client, token, ROADS[i % 3], body) for i, body in enumerate(bodies))
        )
        for answer in group
    ]
    assert sum(not a["duplicate"] for a in answers) == 1
    assert {(a["decision"], a["reason"], a["name"]) for a in answers} == {
        (answers[0]["decision"], "welcome", answers[0]["name"])
    }
    (row,) = await conn.fetch("SELECT detail FROM events WHERE event_id = $1", uuid.UUID(event_id))
    recorded = next(p for p in passes if payload_digest(p) == row["detail"]["payload_sha256"])
    for body, answer in zip(bodies, answers, strict=True):
        if answer["duplicate"]:
            assert ("conflict" in answer) == (body["payload"] != recorded), (body, answer)
    assert await conn.fetchval("SELECT count(*) FROM presence") == 1
    assert (await verify_chain(conn, door.site_id)).broken is None
