from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import asyncpg

from service.events.log import (
    HASHED_FIELDS,
    NewEvent,
    _canonical_new,
    append_event,
    append_events,
    digest_of,
    verify_chain,
)
from service.platform.db import init_connection

NOW = datetime(2021, 10, 9, 3, 0, tzinfo=UTC)


def admin_event(site_id: int | None, n: int = 0) -> NewEvent:
    return NewEvent(
        kind="admin",
        actor="admin:1",
        occurred_at=NOW,
        site_id=site_id,
        detail={"change": "test", "n": n, "tên": "Nguyễn Văn An"},
    )


async def test_appended_chain_verifies(conn: asyncpg.Connection, site_id: int) -> None:
    async with conn.transaction():
        appended = await append_events(conn, [admin_event(site_id, n) for n in range(5)])
    assert [a.seq for a in appended] == [1, 2, 3, 4, 5]
    await append_event(conn, admin_event(None))
    report = await verify_chain(conn, site_id)
    assert report.broken is None and report.checked == 5
    assert (await verify_chain(conn, 0)).checked == 1


async def test_an_edited_row_is_the_first_broken_link(
    conn: asyncpg.Connection, site_id: int
) -> None:
    async with conn.transaction():
        await append_events(conn, [admin_event(site_id, n) for n in range(5)])
    await conn.execute(
        "UPDATE events SET detail = detail || '{\"n\": 99}' WHERE chain_id = $1 AND seq = 3",
        site_id,
    )
    report = await verify_chain(conn, site_id)
    assert report.broken is not None
    assert report.broken.seq == 3 and "edited" in report.broken.problem
    assert report.checked == 2


async def test_a_deleted_row_breaks_the_chain(conn: asyncpg.Connection, site_id: int) -> None:
    async with conn.transaction():
        await append_events(conn, [admin_event(site_id, n) for n in range(4)])
    await conn.execute("DELETE FROM events WHERE chain_id = $1 AND seq = 2", site_id)
    report = await verify_chain(conn, site_id)
    assert report.broken is not None and report.broken.seq == 2
    await conn.execute("DELETE FROM events WHERE chain_id = $1 AND seq = 4", site_id)
    tail = await verify_chain(conn, site_id, from_seq=3)
    assert tail.broken is not None and "missing at the end" in tail.broken.problem


async def test_concurrent_appends_keep_one_gap_free_chain(db_url: str, site_id: int) -> None:
    async def writer(k: int) -> None:
        c = await asyncpg.connect(db_url)
        await init_connection(c)
        try:
            for n in range(10):
                async with c.transaction():
                    await append_events(c, [admin_event(site_id, k * 100 + n)] * 3)
        finally:
            await c.close()

    await asyncio.gather(*(writer(k) for k in range(4)))
    c = await asyncpg.connect(db_url)
    await init_connection(c)
    try:
        seqs = [r["seq"] for r in await c.fetch("SELECT seq FROM events ORDER BY seq")]
        assert seqs == list(range(1, 121))
        assert (await verify_chain(c, site_id)).broken is None
    finally:
        await c.close()


async def test_scan_events_need_their_decision(conn: asyncpg.Connection, site_id: int) -> None:
    bad = NewEvent(kind="scan", actor="kiosk:1", occurred_at=NOW, site_id=site_id, event_id=uuid4())
    try:
        await append_event(conn, bad)
    except asyncpg.CheckViolationError as e:
        assert e.constraint_name == "events_scan_complete"
    else:
        raise AssertionError("a scan without a decision was stored")


def test_the_append_path_hashes_exactly_as_verification_does() -> None:
    """The writer's fast digest and the verifier's generic one must never drift apart."""
    hanoi = timezone(timedelta(hours=7))
    events = [
        NewEvent(kind="admin", actor="admin:1", occurred_at=datetime(2021, 10, 5, tzinfo=UTC)),
        NewEvent(
            kind="scan",
            actor="kiosk:7:Cổng A",
            occurred_at=datetime(2021, 10, 5, 7, 30, 0, 123456, tzinfo=hanoi),
            site_id=3,
            gate_id=9,
            person_id=42,
            pass_id=uuid4(),
            event_id=uuid4(),
            direction="in",
            decision="deny",
            reason="pass_revoked",
            detail={
                "name": "N. V. An",
                "warnings": ["shared_pass"],
                "n": 1.5,
                "nested": {"a": [None]},
            },
        ),
    ]
    for event in events:
        assert hashlib.sha256(_canonical_new(event)).digest() == digest_of(
            {name: getattr(event, name) for name in HASHED_FIELDS}
        )
