"""Tests due: who must be tested on a day by the site's test cadence per risk level
(`test_cadence_days` in the site's rules, service.declarations.policy), against official
results only.

Staff known at the site (service.people.scope) whose risk level has a cadence of N
days are covered by an official negative through the end of the day it was taken plus
N (policy's "within N days"). Someone is due on day D when no official negative taken
before D covers them beyond D: their cover ends on D (they must be tested on D to
enter on D + 1) or has ended (`overdue`: the cadence keeps them out on D already).
`done` marks those with an official result taken on D. Set-based: one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.declarations.filing import SITE_SQL
from service.declarations.policy import RiskLevel, SiteRules
from service.people.scope import known_at_site_sql

RISK_ORDER: tuple[RiskLevel, ...] = ("very_high", "high", "medium", "low")

# $1 site, $2 risk levels with a cadence, $3 start of the day, $4 end of the day.
DUE_SQL = f"""
SELECT p.id, p.full_name, p.phone, p.organisation, p.position, p.risk_level,
       neg.taken_at AS last_negative_at, done.taken_at AS tested_at, done.result AS tested
FROM people p
LEFT JOIN LATERAL (
    SELECT taken_at FROM official_tests o  -- official_tests_person_idx
    WHERE o.person_id = p.id AND o.result = 'negative' AND o.taken_at < $3
    ORDER BY taken_at DESC LIMIT 1
) neg ON true
LEFT JOIN LATERAL (
    SELECT taken_at, result FROM official_tests o
    WHERE o.person_id = p.id AND o.taken_at >= $3 AND o.taken_at < $4
    ORDER BY taken_at DESC LIMIT 1
) done ON true
WHERE p.kind = 'staff' AND p.risk_level = ANY ($2::text[]) AND {known_at_site_sql("p.id", "$1")}
ORDER BY p.full_name, p.id
"""  # noqa: S608 (names written in the code)


@dataclass(frozen=True)
class Due:
    person_id: int
    name: str
    phone: str | None
    organisation: str | None
    position: str | None
    last_negative_at: datetime | None
    covered_until: date | None  # the last day the latest official negative covers
    overdue: bool
    tested_at: datetime | None
    tested: str | None  # the result taken that day

    def as_json(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "name": self.name,
            "phone": self.phone,
            "organisation": self.organisation,
            "position": self.position,
            "last_negative_at": _iso(self.last_negative_at),
            "covered_until": self.covered_until.isoformat() if self.covered_until else None,
            "overdue": self.overdue,
            "done": self.tested_at is not None,
            "tested_at": _iso(self.tested_at),
            "tested_result": self.tested,
        }


@dataclass(frozen=True)
class Group:
    risk_level: str
    cadence_days: int
    people: list[Due]

    @property
    def done(self) -> int:
        return sum(d.tested_at is not None for d in self.people)

    def as_json(self) -> dict[str, Any]:
        return {
            "risk_level": self.risk_level,
            "cadence_days": self.cadence_days,
            "due": len(self.people),
            "done": self.done,
            "people": [d.as_json() for d in self.people],
        }


@dataclass(frozen=True)
class TestsDue:
    site_id: int
    site_name: str
    timezone: str
    day: date
    groups: list[Group]

    def as_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "date": self.day.isoformat(),
            "timezone": self.timezone,
            "due": sum(len(g.people) for g in self.groups),
            "done": sum(g.done for g in self.groups),
            "groups": [g.as_json() for g in self.groups],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def site_day(zone: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """The day's bounds in UTC, as the site counts days."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


async def tests_due(conn: asyncpg.Connection, site: asyncpg.Record, day: date) -> TestsDue:
    """Who must be tested on `day` at the site (a row of SITE_SQL), per risk level."""
    zone = ZoneInfo(site["timezone"])
    cadence = SiteRules.model_validate(site["declaration_rules"]).test_cadence_days
    days = {r: getattr(cadence, r) for r in RISK_ORDER if getattr(cadence, r) is not None}
    start, end = site_day(zone, day)
    rows = await conn.fetch(DUE_SQL, site["id"], list(days), start, end)
    people: dict[str, list[Due]] = {r: [] for r in days}
    for row in rows:
        n = days[row["risk_level"]]
        last = row["last_negative_at"]
        until = last.astimezone(zone).date() + timedelta(days=n) if last else None
        if until is not None and until > day:
            continue  # covered beyond the day: not due
        people[row["risk_level"]].append(
            Due(
                person_id=row["id"],
                name=row["full_name"],
                phone=row["phone"],
                organisation=row["organisation"],
                position=row["position"],
                last_negative_at=last.astimezone(zone) if last else None,
                covered_until=until,
                overdue=until is None or until < day,
                tested_at=row["tested_at"].astimezone(zone) if row["tested_at"] else None,
                tested=row["tested"],
            )
        )
    groups = [Group(r, days[r], people[r]) for r in days]
    return TestsDue(site["id"], site["name"], site["timezone"], day, groups)


async def site_row(conn: asyncpg.Connection, site_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SITE_SQL, site_id)
    return row
