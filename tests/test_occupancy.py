"""A site's day in 15-minute buckets: from real scans, from stays with known times
(across midnight, still open, on bucket edges), in two time zones and on DST days."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class Stay:
    entered_at: datetime
    exited_at: datetime | None


def expected_buckets(stays: list[Stay], day: date, zone: ZoneInfo) -> list[dict[str, Any]]:
    """The oracle: 15-minute steps of elapsed time from local midnight to the next,
    each stay counted by brute force."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(UTC)
    out = []
    at = start
    while at < end:
        upto = at + STEP
        out.append(
            {
                "start": at.astimezone(zone).isoformat(),
                "entries": sum(at <= s.entered_at < upto for s in stays),
                "exits": sum(s.exited_at is not None and at <= s.exited_at < upto for s in stays),
                "inside": sum(
                    s.entered_at < upto and (s.exited_at is None or s.exited_at >= upto)
                    for s in stays
                ),
            }
        )
        at = upto
    return out


async def site_in(factory: Factory, conn: asyncpg.Connection, timezone: str, **site: Any) -> int:
    site_id = await factory.site(**site)
    await conn.execute("UPDATE sites SET timezone = $2 WHERE id = $1", site_id, timezone)
    return site_id


async def add_stays(conn: asyncpg.Connection, factory: Factory, site_id: int, *stays: Stay) -> None:
    for s in stays:
        await conn.execute(
            "INSERT INTO presence (site_id, person_id, entered_at, entry_event, exited_at,"
            " exit_kind) VALUES ($1, $2, $3, 1, $4, $5)",
            site_id,
            await factory.person(),
            s.entered_at,
            s.exited_at,
            None if s.exited_at is None else "scan",
        )


async def stays_of(conn: asyncpg.Connection, site_id: int) -> list[Stay]:
    rows = await conn.fetch(
        "SELECT entered_at, exited_at FROM presence WHERE site_id = $1", site_id
    )
    return [Stay(r["entered_at"], r["exited_at"]) for r in rows]


async def occupancy(
    client: Client, token: str, site_id: int, day: str | None = None
) -> dict[str, Any]:
    params = {"date": day} if day else {}
    resp = await client.get(
        f"/api/v1/sites/{site_id}/occupancy", params=params, headers=bearer(token)
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def hcm(day: int, hour: int, minute: int = 0, second: float = 0) -> datetime:
    whole = int(second)
    micro = round((second - whole) * 1_000_000)
    return datetime(2021, 10, day, hour, minute, whole, micro, tzinfo=HCM)


async def test_a_scripted_day_in_ho_chi_minh_city(
    client: Client, conn: asyncpg.Connection, factory: Factory
) -> None:
    site_id = await site_in(factory, conn, "Asia/Ho_Chi_Minh", capacity=50)
    other = await site_in(factory, conn, "Asia/Ho_Chi_Minh")
    stays = [
        Stay(hcm(4, 22), hcm(5, 2, 10)),  # came the evening before, left at 02:10
        Stay(hcm(4, 20), None),  # came the evening before, still inside
        Stay(hcm(5, 8), hcm(5, 8, 15)),  # exactly on bucket edges
        Stay(hcm(5, 8, 14, 59.999), hcm(5, 17, 30)),
        Stay(hcm(5, 12), hcm(5, 12)),  # in and out at once
        Stay(hcm(5, 23, 50), hcm(6, 0, 20)),  # across the next midnight
        Stay(hcm(4, 9), hcm(4, 17)),  # the day before only
    ]
    await add_stays(conn, factory, site_id, *stays)
    await add_stays(conn, factory, other, Stay(hcm(5, 8), None), Stay(hcm(4, 23), hcm(5, 9)))
    guard = await factory.token(Role.GUARD, site_id=site_id)

    body = await occupancy(client, guard, site_id, "2021-10-05")
    assert {k: v for k, v in body.items() if k != "buckets"} == {
        "site_id": site_id,
        "date": "2021-10-05",
        "timezone": "Asia/Ho_Chi_Minh",
        "capacity": 50,
        "bucket_minutes": 15,
        "inside_at_start": 2,
    }
    buckets = body["buckets"]
    assert buckets == expected_buckets(stays, date(2021, 10, 5), HCM)
    assert len(buckets) == 96
    assert buckets[0]["start"] == "2021-10-05T00:00:00+07:00"
    assert buckets[-1]["start"] == "2021-10-05T23:45:00+07:00"
    assert [b["inside"] for b in buckets[7:10]] == [2, 1, 1]  # the 02:10 exit
    assert buckets[8]["exits"] == 1
    assert [(b["entries"], b["exits"], b["inside"]) for b in buckets[31:35]] == [
        (0, 0, 1),
        (2, 0, 3),  # 08:00 and 08:14:59.999
        (0, 1, 2),  # the 08:15 exit
        (0, 0, 2),
    ]
    assert (buckets[48]["entries"], buckets[48]["exits"], buckets[48]["inside"]) == (1, 1, 2)
    assert (buckets[70]["exits"], buckets[70]["inside"]) == (1, 1)
    assert (buckets[95]["entries"], buckets[95]["inside"]) == (1, 2)

    body = await occupancy(client, guard, site_id, "2021-10-06")
    assert body["inside_at_start"] == 2
    assert body["buckets"] == expected_buckets(stays, date(2021, 10, 6), HCM)
    assert body["buckets"][1]["exits"] == 1  # 00:20
    assert {b["inside"] for b in body["buckets"][2:]} == {1}  # the one still inside

    body = await occupancy(client, guard, site_id, "2021-10-03")
    assert body["inside_at_start"] == 0
    assert all(b == {**b, "entries": 0, "exits": 0, "inside": 0} for b in body["buckets"])


async def test_buckets_follow_the_sites_own_time_zone(
    client: Client, conn: asyncpg.Connection, factory: Factory, tokens: dict[Role, str]
) -> None:
    instant = datetime(2021, 10, 5, 7, 0, tzinfo=UTC)
    stays = [Stay(instant, instant + timedelta(minutes=40))]
    berlin = await site_in(factory, conn, "Europe/Berlin")
    vietnam = await site_in(factory, conn, "Asia/Ho_Chi_Minh")
    for site_id in (berlin, vietnam):
        await add_stays(conn, factory, site_id, *stays)
    auditor = tokens[Role.AUDITOR]

    body = await occupancy(client, auditor, berlin, "2021-10-05")
    assert body["timezone"] == "Europe/Berlin"
    assert body["buckets"] == expected_buckets(stays, date(2021, 10, 5), BERLIN)
    assert body["buckets"][0]["start"] == "2021-10-05T00:00:00+02:00"
    assert body["buckets"][36]["entries"] == 1  # 09:00 in Berlin
    assert body["buckets"][38]["exits"] == 1  # 09:40

    body = await occupancy(client, auditor, vietnam, "2021-10-05")
    assert body["buckets"][56]["entries"] == 1  # the same instant is 14:00 in Hà Nội
    assert body["buckets"][58]["exits"] == 1


@pytest.mark.parametrize(
    ("day", "count", "last"),
    [
        ("2021-03-28", 92, "2021-03-28T23:45:00+02:00"),  # clocks go forward: 23 hours
        ("2021-10-31", 100, "2021-10-31T23:45:00+01:00"),  # clocks go back: 25 hours
    ],
)
async def test_a_day_with_a_dst_change_has_as_many_buckets_as_it_has_quarter_hours(
    client: Client,
    conn: asyncpg.Connection,
    factory: Factory,
    tokens: dict[Role, str],
    day: str,
    count: int,
    last: str,
) -> None:
    site_id = await site_in(factory, conn, "Europe/Berlin")
    the_day = date.fromisoformat(day)
    # In at 01:30 local time, out at 03:30: across the change.
    entered = datetime(2021, the_day.month, the_day.day, 1, 30, tzinfo=BERLIN)
    exited = datetime(2021, the_day.month, the_day.day, 3, 30, tzinfo=BERLIN)
    stays = [Stay(entered, exited), Stay(entered - timedelta(days=1), None)]
    await add_stays(conn, factory, site_id, *stays)
    body = await occupancy(client, tokens[Role.ADMIN], site_id, day)
    buckets = body["buckets"]
    assert len(buckets) == count and buckets[-1]["start"] == last
    assert buckets == expected_buckets(stays, the_day, BERLIN)
    starts = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert all(b - a == STEP for a, b in itertools.pairwise(starts))


async def test_buckets_from_real_scans_today(client: Client, factory: Factory) -> None:
    door = await make_door(factory, capacity=10)
    people = [await factory.person() for _ in range(3)]
    payloads = [(await factory.issued_pass(door.key, door.site_id, person_id=p))[1] for p in people]
    for payload in payloads:
        assert (await scan(client, door.kiosk[door.entrance], payload))["decision"] == "allow"
    assert (await scan(client, door.kiosk[door.exit], payloads[0]))["decision"] == "allow"
    stays = await stays_of(factory.conn, door.site_id)
    assert len(stays) == 3

    body = await occupancy(client, door.guard, door.site_id)
    today = date.fromisoformat(body["date"])  # the site's today, when the request came
    assert (body["timezone"], body["capacity"]) == ("Asia/Ho_Chi_Minh", 10)
    expected = expected_buckets(stays, today, HCM)
    buckets = body["buckets"]
    # Buckets that have begun have their count; those still to come have none.
    begun = [b for b in buckets if b["inside"] is not None]
    assert begun and buckets[: len(begun)] == begun
    assert all(b["inside"] is None for b in buckets[len(begun) :])
    assert begun == expected[: len(begun)]
    assert [(b["entries"], b["exits"]) for b in buckets] == [
        (b["entries"], b["exits"]) for b in expected
    ]
    if today == max(s.entered_at.astimezone(HCM).date() for s in stays):
        assert sum(b["entries"] for b in buckets) == 3
        assert begun[-1]["inside"] == 2


async def test_a_day_to_come_has_no_inside(
    client: Client, conn: asyncpg.Connection, factory: Factory, tokens: dict[Role, str]
) -> None:
    site_id = await site_in(factory, conn, "Asia/Ho_Chi_Minh")
    await add_stays(conn, factory, site_id, Stay(hcm(5, 8), None))
    body = await occupancy(client, tokens[Role.ADMIN], site_id, "2999-01-01")
    assert body["inside_at_start"] == 1
    assert {(b["entries"], b["exits"], b["inside"]) for b in body["buckets"]} == {(0, 0, None)}


@pytest.mark.parametrize("day", ["2021-13-01", "2021-02-30", "20211005", "2021-W40-2", "hôm nay"])
async def test_a_bad_date_is_400(
    client: Client, tokens: dict[Role, str], site_id: int, day: str
) -> None:
    resp = await client.get(
        f"/api/v1/sites/{site_id}/occupancy",
        params={"date": day},
        headers=bearer(tokens[Role.GUARD]),
    )
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert (error["code"], error["parameter"]) == ("bad_parameter", "date")


async def test_another_site_is_403_and_no_site_is_404(
    client: Client, factory: Factory, tokens: dict[Role, str]
) -> None:
    other = await factory.site()
    resp = await client.get(f"/api/v1/sites/{other}/occupancy", headers=bearer(tokens[Role.GUARD]))
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    resp = await client.get("/api/v1/sites/999999/occupancy", headers=bearer(tokens[Role.ADMIN]))
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "site_not_found"
