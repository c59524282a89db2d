"""Automatic check-out: each rule, at the time it fired, in the hash chain; one sweeper
at a time; catching up after a restart; the door's daily anti-passback reset."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web

from service.app import create_app
from service.door.auto_checkout import (
    BATCH,
    auto_exit_event,
    closure,
    first_after,
    last_until,
    sweep_lock,
    sweep_now,
)
from service.door.auto_checkout import sweep as sweep_once
from service.events.fanout import FANOUT_KEY
from service.events.log import digest_of, verify_chain
from service.platform.db import DB_KEY
from service.sites.door_rules import AutoCheckout
from service.web.auth import Role
from tests.checkin_helpers import make_door, scan, scan_body
from tests.factory import Factory, bearer
from tests.presence_helpers import (
    Client,
    FakeClock,
    auto_exits,
    clock,
    enter,
    let_in_hours_ago,
    one_inside,
    person_with_pass,
    presence_settings,
    set_door_rules,
    settings,
    stay_of,
    sweep,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
__all__ = ["clock", "settings"]  # fixtures: the app on a clock the tests move


async def test_impossible_rules_are_refused_naming_the_field(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    url = f"/api/v1/sites/{door.site_id}/door-rules"
    bad = [
        ({"at": "24:00"}, "auto_checkout.at"),
        ({"at": "23:60"}, "auto_checkout.at"),
        ({"at": "7:30"}, "auto_checkout.at"),
        ({"after_minutes": 0}, "auto_checkout.after_minutes"),
        ({"after_minutes": 7 * 24 * 60 + 1}, "auto_checkout.after_minutes"),
        ({"after_minutes": "ten"}, "auto_checkout.after_minutes"),
    ]
    for rule, field in bad:
        resp = await client.put(url, json={"auto_checkout": rule}, headers=bearer(door.admin))
        assert resp.status == 422, (rule, await resp.text())
        error = (await resp.json())["error"]
        assert [f["field"] for f in error["fields"]] == [field], rule
        assert error["fields"][0]["reason_vi"]
    resp = await client.put(url, json={"silent_after_minutes": 0}, headers=bearer(door.admin))
    assert resp.status == 422
    rules = await set_door_rules(client, door, auto_checkout={"at": "23:00", "after_minutes": 1})
    assert rules["auto_checkout"] == {
        "at": "23:00",
        "after_minutes": 1,
        "expected_departure": False,
    }
    got = await client.get(url, headers=bearer(door.guard))
    assert (await got.json())["rules"]["auto_checkout"]["at"] == "23:00"


async def test_after_minutes_closes_at_the_time_the_rule_fired(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    clock: FakeClock,
) -> None:
    door, person, entered = await one_inside(client, factory, conn)
    await set_door_rules(client, door, auto_checkout={"after_minutes": 90})

    clock.advance(minutes=89)
    assert (await sweep(app)).closed == 0
    assert (await stay_of(conn, person))["exited_at"] is None

    clock.advance(hours=30)  # the service was down: the sweep catches up
    report = await sweep(app)
    assert report.closed == 1 and report.by_rule == {"after_minutes": 1}
    stay = await stay_of(conn, person)
    assert stay["exit_kind"] == "auto"
    assert stay["exited_at"] == entered + timedelta(minutes=90)
    assert stay["last_evidence_at"] == entered  # the entry scan was the last sign
    (event,) = await auto_exits(conn, door.site_id)
    assert event["occurred_at"] == stay["exited_at"] and event["person_id"] == person
    assert event["detail"]["rule"] == "after_minutes" and event["detail"]["rule_value"] == 90
    assert event["actor"] == "service:auto_checkout" and event["direction"] == "out"
    assert stay["exit_event"] == event["id"]
    assert (await verify_chain(conn, door.site_id)).broken is None
    assert (await sweep(app)).closed == 0  # closed once


async def test_the_local_time_rule_closes_at_that_time_in_the_sites_zone(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    clock: FakeClock,
) -> None:
    door, person, entered = await one_inside(client, factory, conn)
    at = (entered + timedelta(minutes=5)).astimezone(HCM).strftime("%H:%M")
    await set_door_rules(client, door, auto_checkout={"at": at})
    expected = first_after(entered, datetime.strptime(at, "%H:%M").time(), HCM)
    assert timedelta(minutes=4) <= expected - entered <= timedelta(minutes=5)

    clock.now = expected - timedelta(seconds=1)
    assert (await sweep(app)).closed == 0
    clock.now = expected + timedelta(days=2)
    assert (await sweep(app)).by_rule == {"at": 1}
    stay = await stay_of(conn, person)
    assert stay["exited_at"] == expected
    assert expected.astimezone(HCM).strftime("%H:%M") == at
    (event,) = await auto_exits(conn, door.site_id)
    assert event["detail"]["rule"] == "at" and event["detail"]["rule_value"] == at


async def test_a_visitor_is_checked_out_at_the_departure_they_declared(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    clock: FakeClock,
) -> None:
    door = await make_door(factory)
    await set_door_rules(
        client, door, auto_checkout={"after_minutes": 600, "expected_departure": True}
    )
    visitor, payload = await person_with_pass(factory, door, kind="visitor")
    staff, staff_payload = await person_with_pass(factory, door)
    departure = clock.now + timedelta(minutes=45)
    for person in (visitor, staff):  # staff declare no departure: only the visitor has one
        await conn.execute(
            "UPDATE declarations SET answers = jsonb_build_object('expected_departure', $2::text)"
            " WHERE person_id = $1",
            person,
            departure.isoformat() if person == visitor else None,
        )
    await enter(client, door, payload)
    await enter(client, door, staff_payload)
    clock.advance(minutes=60)
    assert (await sweep(app)).by_rule == {"expected_departure": 1}
    assert (await stay_of(conn, visitor))["exited_at"] == departure
    assert (await stay_of(conn, staff))["exited_at"] is None
    clock.advance(minutes=600)
    assert (await sweep(app)).by_rule == {"after_minutes": 1}


async def test_the_earliest_rule_fires(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    clock: FakeClock,
) -> None:
    door, person, entered = await one_inside(client, factory, conn)
    at = (entered + timedelta(hours=3)).astimezone(HCM).strftime("%H:%M")
    await set_door_rules(client, door, auto_checkout={"at": at, "after_minutes": 60})
    clock.advance(days=1)
    assert (await sweep(app)).by_rule == {"after_minutes": 1}
    assert (await stay_of(conn, person))["exited_at"] == entered + timedelta(minutes=60)


async def test_only_one_instance_sweeps_at_a_time(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    clock: FakeClock,
    db_url: str,
) -> None:
    door = await make_door(factory)
    await set_door_rules(client, door, auto_checkout={"after_minutes": 1})
    person, payload = await person_with_pass(factory, door)
    await enter(client, door, payload)
    other = await asyncpg.connect(db_url)
    try:
        await sweep(app)  # the background round is done before this one holds the lock
        async with sweep_lock(other) as mine:
            assert mine
            clock.advance(minutes=5)
            # Another instance is at it: this one does nothing, the stay stays open.
            assert await sweep_now(app[DB_KEY], clock, app[FANOUT_KEY]) is None
            assert (await stay_of(conn, person))["exited_at"] is None
        await sweep(app)
        assert (await stay_of(conn, person))["exit_kind"] == "auto"
    finally:
        await other.close()


async def test_the_service_catches_up_when_it_starts(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    factory: Factory,
    conn: asyncpg.Connection,
    db_url: str,
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    """Stays left open while the service was down are closed by its first round, each
    at the time its rule fired; then the worker keeps sweeping by itself."""
    door = await make_door(factory)
    first = await aiohttp_client(create_app(settings=presence_settings(db_url, tmp_path, clock)))
    await set_door_rules(first, door, auto_checkout={"after_minutes": 30})
    people = [await person_with_pass(factory, door) for _ in range(3)]
    for _, payload in people:
        await enter(first, door, payload)
    await first.close()

    clock.advance(days=2)
    restarted = presence_settings(db_url, tmp_path, clock, auto_checkout_interval_s=0.1)
    client = await aiohttp_client(create_app(settings=restarted))
    for _ in range(200):
        if len(await auto_exits(conn, door.site_id)) == 3:
            break
        await asyncio.sleep(0.05)
    for person, _ in people:
        stay = await stay_of(conn, person)
        assert stay["exited_at"] == stay["entered_at"] + timedelta(minutes=30)
    # A stay opened now is closed by the running worker once its time has come.
    late, payload = await person_with_pass(factory, door)
    await enter(client, door, payload)
    clock.now = datetime.now(clock.now.tzinfo) + timedelta(minutes=31)
    for _ in range(200):
        if (await stay_of(conn, late))["exited_at"] is not None:
            break
        await asyncio.sleep(0.05)
    assert (await stay_of(conn, late))["exit_kind"] == "auto"


# --- the door's daily reset --------------------------------------------------------------


async def let_in_yesterday(client: Client, door: Any, payload: str, hours_ago: float) -> None:
    await let_in_hours_ago(client, door, payload, hours_ago)


@pytest.mark.parametrize("at", [None, "23:00"])
async def test_the_morning_after_a_forgotten_exit_the_entry_is_not_denied(
    client: Client, factory: Factory, conn: asyncpg.Connection, at: str | None
) -> None:
    door = await make_door(factory)  # strict anti-passback, the default
    if at is not None:
        await set_door_rules(client, door, auto_checkout={"at": at})
    person, payload = await person_with_pass(factory, door)
    await let_in_yesterday(client, door, payload, hours_ago=26)
    entered = (await stay_of(conn, person))["entered_at"]

    answer = await scan(client, door.kiosk[door.entrance], payload)
    assert (answer["decision"], answer["reason"]) == ("allow", "welcome")
    (event,) = await auto_exits(conn, door.site_id)
    reset = datetime.strptime(at or "00:00", "%H:%M").time()
    if at is None:  # no check-out time: the reset is at midnight
        assert event["detail"]["rule"] == "daily_reset"
        assert event["occurred_at"] == last_until(datetime.now(HCM), reset, HCM)
    else:
        assert event["detail"]["rule"] == "at"
        assert event["occurred_at"] == first_after(entered, reset, HCM)
    stays = await conn.fetch("SELECT * FROM presence WHERE person_id = $1 ORDER BY id", person)
    assert [s["exit_kind"] for s in stays] == ["auto", None]
    assert stays[0]["exit_event"] == event["id"] and stays[0]["exited_at"] == event["occurred_at"]
    assert (await verify_chain(conn, door.site_id)).broken is None
    # Inside since this morning: anti-passback holds again.
    again = await scan(client, door.kiosk[door.entrance], payload)
    assert (again["decision"], again["reason"]) == ("deny", "already_inside")


async def test_a_stay_from_today_still_counts_for_anti_passback(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    _, payload = await person_with_pass(factory, door)
    await enter(client, door, payload)
    answer = await scan(client, door.kiosk[door.entrance], payload)
    assert answer["reason"] == "already_inside"
    assert await auto_exits(conn, door.site_id) == []


async def test_soft_anti_passback_lets_in_with_a_warning(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    door = await make_door(factory)
    await set_door_rules(client, door, anti_passback="warn")
    _, payload = await person_with_pass(factory, door)
    await enter(client, door, payload)
    answer = await scan(client, door.kiosk[door.entrance], payload)
    assert answer["decision"] == "allow"
    warned = await conn.fetchval(
        "SELECT detail->'warnings' FROM events WHERE site_id = $1 AND kind = 'scan'"
        " ORDER BY seq DESC LIMIT 1",
        door.site_id,
    )
    assert warned == ["already_inside"]


async def test_the_occupancy_chart_shows_automatic_check_outs(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    clock: FakeClock,
) -> None:
    door, _, entered = await one_inside(client, factory, conn)
    await set_door_rules(client, door, auto_checkout={"after_minutes": 1})
    clock.advance(minutes=5)
    assert (await sweep(app)).closed == 1
    closed_at = entered + timedelta(minutes=1)
    resp = await client.get(
        f"/api/v1/sites/{door.site_id}/occupancy",
        params={"date": closed_at.astimezone(HCM).date().isoformat()},
        headers=bearer(door.guard),
    )
    buckets = (await resp.json())["buckets"]
    marked = [(b["start"], b["exits"], b["auto_exits"]) for b in buckets if b["exits"]]
    start = closed_at.astimezone(HCM).replace(minute=closed_at.astimezone(HCM).minute // 15 * 15)
    assert marked == [(start.replace(second=0, microsecond=0).isoformat(), 1, 1)]


async def test_out_and_in_again_in_one_batch_after_a_forgotten_exit(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    """At a gate used both ways, yesterday's stay is ended by the exit scan itself, and
    the entry in the same batch is a plain welcome."""
    door = await make_door(factory)
    both = await factory.gate(door.site_id, name="Cổng chính", direction="both")
    door.kiosk[door.entrance] = await factory.token(Role.KIOSK, gate_id=both)
    person, payload = await person_with_pass(factory, door)
    await let_in_yesterday(client, door, payload, hours_ago=26)
    scans = [scan_body(payload, direction="out"), scan_body(payload, direction="in")]
    resp = await client.post(
        "/api/v1/scans/batch", json={"scans": scans}, headers=bearer(door.kiosk[door.entrance])
    )
    assert resp.status == 200, await resp.text()
    decisions = (await resp.json())["decisions"]
    assert [(d["decision"], d["reason"]) for d in decisions] == [
        ("allow", "goodbye"),
        ("allow", "welcome"),
    ]
    stays = await conn.fetch(
        "SELECT exit_kind FROM presence WHERE person_id = $1 ORDER BY id", person
    )
    assert [s["exit_kind"] for s in stays] == ["scan", None]
    assert (await verify_chain(conn, door.site_id)).broken is None


async def test_a_large_sweep_closes_every_stay_in_small_batches(
    conn: asyncpg.Connection, factory: Factory
) -> None:
    """More stays than a batch, with entry times that tie: each is closed once."""
    site = await factory.site()
    await conn.execute(
        "UPDATE sites SET checkin_rules = checkin_rules"
        ' || \'{"auto_checkout": {"after_minutes": 60}}\''
        " WHERE id = $1",
        site,
    )
    now = datetime.now(HCM)
    people = [await factory.person() for _ in range(2 * BATCH + 50)]
    await conn.executemany(
        "INSERT INTO presence (site_id, person_id, entered_at, entry_event) VALUES ($1, $2, $3, 1)",
        [(site, p, now - timedelta(hours=2, minutes=i % 7)) for i, p in enumerate(people)],
    )
    report = await sweep_once(conn, now)
    assert report is not None and report.closed == len(people)
    assert report.batches == 3
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM presence WHERE site_id = $1 AND exited_at IS NULL", site
        )
        == 0
    )
    assert len(await auto_exits(conn, site)) == len(people)
    assert (await verify_chain(conn, site)).broken is None


async def test_the_sweep_writes_the_very_event_the_door_would(
    conn: asyncpg.Connection, factory: Factory
) -> None:
    """The sweep builds its events in SQL; each is the record auto_exit_event() makes
    (same fields, same digest), for a name that needs escaping too."""
    site = await factory.site()
    await conn.execute(
        "UPDATE sites SET checkin_rules = $2 WHERE id = $1",
        site,
        {"auto_checkout": {"at": "23:00", "after_minutes": 600}},
    )
    now = datetime.now(HCM)
    names = ['  Ông  "Tư"\tBa \\ Lê ', "Đỗ Ánh-Dương", "An"]
    people = [await factory.person(full_name=name) for name in names]
    # At 14:00 two days ago: that evening's 23:00 comes before the 600 minutes, whatever
    # the time of day the test runs at.
    afternoon = (now - timedelta(days=2)).replace(hour=14, minute=0, second=0, microsecond=0)
    entered = [afternoon - timedelta(minutes=i) for i in range(len(people))]
    await conn.executemany(
        "INSERT INTO presence (site_id, person_id, entered_at, entry_event) VALUES ($1, $2, $3, 1)",
        [(site, p, at) for p, at in zip(people, entered, strict=True)],
    )
    report = await sweep_once(conn, now)
    assert report is not None and report.by_rule == {"at": 3}
    rules = AutoCheckout(at="23:00", after_minutes=600)
    for person, name, at in zip(people, names, entered, strict=True):
        row = await conn.fetchrow(
            "SELECT * FROM events WHERE site_id = $1 AND person_id = $2", site, person
        )
        ended = closure(at, rules, HCM)
        assert ended is not None and row["occurred_at"] == ended.at
        expected = auto_exit_event(site, person, name, at, ended)
        assert row["detail"] == expected.detail
        assert bytes(row["digest"]) == digest_of(asdict(expected))
    assert (await verify_chain(conn, site)).broken is None


async def test_a_stay_a_door_closes_while_the_batch_waits_is_left_to_the_door(
    conn: asyncpg.Connection, factory: Factory, db_url: str
) -> None:
    """The batch reads its stays, then waits for the site's chain, which a door holds
    while it ends one of them: the batch closes and chains only the others."""
    site = await factory.site()
    await conn.execute(
        "UPDATE sites SET checkin_rules = $2 WHERE id = $1",
        site,
        {"auto_checkout": {"after_minutes": 60}},
    )
    now = datetime.now(HCM)
    people = [await factory.person() for _ in range(3)]
    await conn.executemany(
        "INSERT INTO presence (site_id, person_id, entered_at, entry_event) VALUES ($1, $2, $3, 1)",
        [(site, p, now - timedelta(hours=2, minutes=i)) for i, p in enumerate(people)],
    )
    door = await asyncpg.connect(db_url)
    try:
        async with door.transaction():
            await door.execute("SELECT 1 FROM event_chains WHERE chain_id = $1 FOR UPDATE", site)
            sweeping = asyncio.create_task(sweep_once(conn, now))
            # The batch has read its stays once it waits for the chain's row lock.
            for _ in range(200):
                waiting = await door.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted"
                )
                if waiting:
                    break
                await asyncio.sleep(0.02)
            assert waiting, "the sweep never waited for the chain"
            await door.execute(
                "UPDATE presence SET exited_at = $3, exit_kind = 'scan'"
                " WHERE site_id = $1 AND person_id = $2",
                site,
                people[1],
                now - timedelta(minutes=5),
            )
        report = await asyncio.wait_for(sweeping, 30)
    finally:
        await door.close()
    assert report.closed == 2
    exits = await auto_exits(conn, site)
    assert sorted(e["person_id"] for e in exits) == sorted([people[0], people[2]])
    door_closed = await conn.fetchrow(
        "SELECT exit_kind, exit_event FROM presence WHERE site_id = $1 AND person_id = $2",
        site,
        people[1],
    )
    assert door_closed["exit_kind"] == "scan" and door_closed["exit_event"] is None
    assert (await verify_chain(conn, site)).broken is None
