"""A visitor's expected departure on the /declare form (issue 22): a time today or a date
and time, in the site's zone; what the form cannot read, or a time already past, is a
422 naming the field in vi and en, with the text kept."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from service.declarations.form_input import departure
from tests.test_declare_form import Client, form, post

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NOON_UTC = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 12:00 in Ho Chi Minh City


def test_a_time_of_day_is_today_in_the_site_s_zone() -> None:
    assert departure(" 17:30 ", HCM, NOON_UTC) == datetime(2026, 3, 2, 17, 30, tzinfo=HCM)
    assert departure("7:05", ZoneInfo("UTC"), NOON_UTC) == datetime(2026, 3, 2, 7, 5, tzinfo=UTC)


def test_a_date_and_time_is_local_unless_it_has_an_offset() -> None:
    assert departure("2026-03-03 08:00", HCM, NOON_UTC) == datetime(2026, 3, 3, 8, tzinfo=HCM)
    assert departure("2026-03-03T08:00", HCM, NOON_UTC) == datetime(2026, 3, 3, 8, tzinfo=HCM)
    aware = departure("2026-03-03T08:00+00:00", HCM, NOON_UTC)
    assert aware == datetime(2026, 3, 3, 8, tzinfo=UTC)


def test_what_the_form_cannot_read_or_what_is_past_has_a_code() -> None:
    for text in ("tomorrow", "25:00", "17h30", "2026-03-03", "2026-03-03 8am", "1" * 30, "\ud800"):
        assert departure(text, HCM, NOON_UTC) == "departure_format", text
    assert departure("11:00", HCM, NOON_UTC) == "departure_past"
    assert departure("2026-03-01 18:00", HCM, NOON_UTC) == "departure_past"
    # Within the clock skew a time just gone is still taken.
    assert departure("11:58", HCM, NOON_UTC) == datetime(2026, 3, 2, 11, 58, tzinfo=HCM)


async def test_bad_departures_are_named_in_vietnamese_and_english(
    client: Client, site_id: int
) -> None:
    status, page = await post(client, form(site_id, expected_departure="chiều nay"))
    assert status == 422
    assert re.search(r'id="expected_departure-error">Giờ dự kiến về cần là giờ \(17:30\)', page)
    assert 'value="chiều nay"' in page and 'aria-describedby="expected_departure-error"' in page
    status, page = await post(
        client, form(site_id, lang="en", expected_departure="2001-01-01 9:00")
    )
    assert status == 422 and "The expected departure is a time (17:30)" in page
    status, page = await post(
        client, form(site_id, lang="en", expected_departure="2001-01-01 09:00")
    )
    assert status == 422
    assert re.search(
        r'id="expected_departure-error">The expected departure has already passed<', page
    )


async def test_staff_give_no_departure(client: Client, site_id: int) -> None:
    later = (datetime.now(HCM) + timedelta(days=1)).strftime("%Y-%m-%d 17:00")
    pairs = form(site_id, lang="en", kind="staff", host_name="", purpose="")
    status, page = await post(client, [*pairs, ("expected_departure", later)])
    assert status == 422
    assert re.search(r'id="expected_departure-error">Only visitors fill in this field<', page)


async def test_a_departure_is_kept_with_the_declaration(
    client: Client, site_id: int, conn: asyncpg.Connection
) -> None:
    zone = ZoneInfo(await conn.fetchval("SELECT timezone FROM sites WHERE id = $1", site_id))
    tomorrow = (datetime.now(zone) + timedelta(days=1)).date()
    status, page = await post(client, form(site_id, expected_departure=f"{tomorrow} 17:30"))
    assert status == 200, page
    stored = await conn.fetchval(
        "SELECT answers->>'expected_departure' FROM declarations WHERE site_id = $1", site_id
    )
    assert datetime.fromisoformat(stored) == datetime(
        tomorrow.year, tomorrow.month, tomorrow.day, 17, 30, tzinfo=zone
    )
