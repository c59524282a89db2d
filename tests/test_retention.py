"""The retention purge: personal data goes, counts and the verifiable chain stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp.test_utils import TestClient

from service.events.log import NewEvent, append_events, verify_chain
from service.retention.purge import purge
from tests.checkin_helpers import make_door, scan
from tests.cli_helpers import env_for, run_cli
from tests.factory import Factory

VN = ZoneInfo("Asia/Ho_Chi_Minh")


async def old_day(
    conn: asyncpg.Connection, factory: Factory, site_id: int, gates: tuple[int, int]
) -> dict[str, Any]:
    """A day 40 days ago: visitor A in 09:00-11:00, staff B in 09:30-17:00, one denial."""
    entrance, exit_ = gates
    day = (datetime.now(VN) - timedelta(days=40)).date()

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=VN)

    visitor = await factory.person(kind="visitor", full_name="Khách Cũ")
    staff = await factory.person(kind="staff", full_name="Cán Bộ Cũ")
    key = await factory.signing_key()
    decl = await factory.declaration(visitor, site_id, submitted_at=at(8), valid_until=at(20))
    await factory.issued_pass(
        key, site_id, person_id=visitor, declaration_id=decl, not_before=at(8), not_after=at(20)
    )

    def scan_event(
        person: int | None, gate: int, when: datetime, direction: str, decision: str, reason: str
    ) -> NewEvent:
        import uuid

        return NewEvent(
            kind="scan",
            actor="kiosk:1",
            occurred_at=when,
            site_id=site_id,
            gate_id=gate,
            person_id=person,
            event_id=uuid.uuid4(),
            direction=direction,
            decision=decision,
            reason=reason,
            detail={"name": "K. Cũ", "payload_sha256": "x"},
        )

    async with conn.transaction():
        a_in, b_in, _denied, a_out, b_out = await append_events(
            conn,
            [
                scan_event(visitor, entrance, at(9), "in", "allow", "welcome"),
                scan_event(staff, entrance, at(9, 30), "in", "allow", "welcome"),
                scan_event(None, entrance, at(10), "in", "deny", "declaration_expired"),
                scan_event(visitor, exit_, at(11), "out", "allow", "goodbye"),
                scan_event(staff, exit_, at(17), "out", "allow", "goodbye"),
            ],
        )
        for person, entry, exit_event, start, end in (
            (visitor, a_in, a_out, at(9), at(11)),
            (staff, b_in, b_out, at(9, 30), at(17)),
        ):
            await conn.execute(
                "INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event,"
                " exited_at, exit_gate_id, exit_event, exit_kind)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scan')",
                site_id,
                person,
                start,
                entrance,
                entry.id,
                end,
                exit_,
                exit_event.id,
            )
    return {"day": day, "visitor": visitor, "staff": staff}


async def test_purge_keeps_counts_and_chain_and_drops_personal_data(
    client: TestClient[Any, Any], factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    old = await old_day(conn, factory, door.site_id, (door.entrance, door.exit))
    _, recent_pass = await factory.issued_pass(door.key, door.site_id)
    assert (await scan(client, door.kiosk[door.entrance], recent_pass))["reason"] == "welcome"

    report = await purge(conn, older_than=datetime.now(UTC) - timedelta(days=30), actor="test")
    assert report is not None
    assert (report.days_counted, report.events_blanked, report.stays_deleted) == (1, 5, 2)
    assert (report.passes_deleted, report.declarations_deleted, report.visitors_deleted) == (
        1,
        1,
        1,
    )

    counts = await conn.fetchrow("SELECT * FROM daily_counts WHERE site_id = $1", door.site_id)
    assert counts["day"] == old["day"]
    assert (counts["entries"], counts["exits"], counts["peak_inside"]) == (2, 2, 2)
    assert counts["denials"] == {"declaration_expired": 1}

    old_events = await conn.fetch(
        "SELECT person_id, detail FROM events WHERE occurred_at < now() - interval '30 days'"
    )
    assert all(e["person_id"] is None and e["detail"] == {"purged": True} for e in old_events)
    assert await conn.fetchval("SELECT count(*) FROM people WHERE id = $1", old["visitor"]) == 0
    assert await conn.fetchval("SELECT count(*) FROM people WHERE id = $1", old["staff"]) == 1
    assert await conn.fetchval("SELECT count(*) FROM presence") == 1  # today's stay stays
    assert (await verify_chain(conn, door.site_id)).broken is None
    assert (await verify_chain(conn, 0)).broken is None  # the purge's own record
    purge_event = await conn.fetchval("SELECT detail FROM events WHERE kind = 'purge'")
    assert purge_event["events_blanked"] == 5

    again = await purge(conn, older_than=datetime.now(UTC) - timedelta(days=30), actor="test")
    assert again is not None and (again.days_counted, again.events_blanked) == (0, 0)


async def test_a_purged_row_edited_afterwards_still_breaks_the_chain(
    factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    await old_day(conn, factory, door.site_id, (door.entrance, door.exit))
    await purge(conn, older_than=datetime.now(UTC) - timedelta(days=30), actor="test")
    await conn.execute(
        "UPDATE events SET digest = sha256('forged'::bytea) WHERE chain_id = $1 AND seq = 2",
        door.site_id,
    )
    report = await verify_chain(conn, door.site_id)
    assert report.broken is not None and report.broken.seq == 2


def test_purge_command(db_url: str, tmp_path: Path) -> None:
    done = run_cli("purge", "--older-than-days", "30", env=env_for(db_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert '"events_blanked": 0' in done.stdout
