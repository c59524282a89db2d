"""Who is inside, as far as anyone can tell: the three groups of the Inside tab and the
printed roll call, and a guard's one-tap "seen" / "gone".

1. inside: with the last evidence of them (their last scan at the site, or a guard's
   "seen") and its gate;
2. probably gone: past the departure they declared, or silent longer than the site's
   `silent_after_minutes`;
3. checked out automatically today (or confirmed gone by a guard), and not back since.

Who is likely inside (for the capacity shown) is group 1 and those of group 2 who are
only past their declared departure, not silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from checkin_core.reasons import short_name
from service.door.actions import announce, lock_open_stay
from service.door.auto_checkout import last_until
from service.events.log import NewEvent, append_events
from service.people.records import person_name
from service.platform.clock import CLOCK_KEY
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.sites.door_rules import MIDNIGHT, CheckinRules
from service.web.auth import Role, require_site, requires
from service.web.openapi import documented
from service.web.validation import read_model

SITE_SQL = (
    "SELECT id, name, timezone, capacity, checkin_rules::text AS rules FROM sites WHERE id = $1"
)
# Evidence that someone is in: any scan of theirs at the site during the stay, or a
# guard's "seen" (events_person_idx, newest first).
OPEN_STAYS_SQL = """
SELECT pr.id AS stay_id, pr.person_id, pe.full_name, pe.kind, pe.organisation, pr.entered_at,
       pr.entry_gate_id, g.name AS entry_gate,
       coalesce(ev.occurred_at, pr.entered_at) AS last_seen_at,
       CASE WHEN ev.occurred_at IS NULL THEN pr.entry_gate_id ELSE ev.gate_id END AS last_gate_id,
       CASE WHEN ev.occurred_at IS NULL THEN g.name ELSE lg.name END AS last_gate,
       coalesce(ev.kind, 'scan') AS last_seen_by,
       CASE WHEN pe.kind = 'visitor' THEN
           (SELECT (d.answers->>'expected_departure')::timestamptz FROM declarations d
            WHERE d.person_id = pr.person_id AND d.site_id = pr.site_id
              AND d.superseded_at IS NULL) END AS expected_departure
FROM presence pr JOIN people pe ON pe.id = pr.person_id
LEFT JOIN gates g ON g.id = pr.entry_gate_id
LEFT JOIN LATERAL (
    SELECT e.occurred_at, e.gate_id, e.kind FROM events e
    WHERE e.person_id = pr.person_id AND e.site_id = pr.site_id AND e.occurred_at >= pr.entered_at
      AND (e.kind = 'scan' OR (e.kind = 'presence_confirmed' AND e.detail->>'status' = 'seen'))
    ORDER BY e.occurred_at DESC LIMIT 1
) AS ev ON true
LEFT JOIN gates lg ON lg.id = ev.gate_id
WHERE pr.site_id = $1 AND pr.exited_at IS NULL
ORDER BY pr.entered_at, pr.id
"""
# Estimated ends since $2 (the start of the site's day), of people not back inside.
CLOSED_TODAY_SQL = """
SELECT pr.id AS stay_id, pr.person_id, pe.full_name, pe.kind, pe.organisation, pr.entered_at,
       g.name AS entry_gate, pr.exited_at, pr.exit_kind, pr.last_evidence_at,
       CASE WHEN pr.exit_kind = 'gone' THEN 'guard_gone' ELSE e.detail->>'rule' END AS rule
FROM presence pr JOIN people pe ON pe.id = pr.person_id
LEFT JOIN gates g ON g.id = pr.entry_gate_id
LEFT JOIN events e ON e.id = pr.exit_event
WHERE pr.site_id = $1 AND pr.exit_kind IN ('auto', 'gone')
  AND pr.exited_at >= $2 AND pr.exited_at <= $3
  AND NOT EXISTS (SELECT 1 FROM presence o WHERE o.site_id = pr.site_id
                  AND o.person_id = pr.person_id AND o.exited_at IS NULL)
ORDER BY pr.exited_at DESC, pr.id
"""
CLOSE_GONE_SQL = """
UPDATE presence SET exited_at = $2, exit_gate_id = NULL, exit_event = $3, exit_kind = 'gone',
       last_evidence_at = stay_last_evidence(person_id, site_id, entered_at, $2)
WHERE id = $1
"""

Group = Literal["inside", "probably_gone"]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class RollCall:
    site: dict[str, Any]
    now: datetime
    rules: CheckinRules
    inside: list[dict[str, Any]]
    probably_gone: list[dict[str, Any]]
    checked_out_today: list[dict[str, Any]]

    @property
    def likely_inside(self) -> int:
        return len(self.inside) + sum(1 for p in self.probably_gone if not p["silent"])

    def as_json(self) -> dict[str, Any]:
        everyone = sorted(self.inside + self.probably_gone, key=lambda p: p["entered_at"])
        return {
            "site_id": self.site["id"],
            "site_name": self.site["name"],
            "at": self.now.isoformat(),
            "inside": len(everyone),  # every open stay, as before
            "likely_inside": self.likely_inside,
            "capacity": self.site["capacity"],
            "silent_after_minutes": self.rules.silent_after_minutes,
            "people": everyone,
            "groups": {
                "inside": self.inside,
                "probably_gone": self.probably_gone,
                "checked_out_today": self.checked_out_today,
            },
        }


def _person(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "person_id": row["person_id"],
        "full_name": row["full_name"],
        "kind": row["kind"],
        "organisation": row["organisation"],
        "entered_at": row["entered_at"].isoformat(),
        "entry_gate": row["entry_gate"],
    }


def _open_stay(row: asyncpg.Record, now: datetime, silent_after: timedelta) -> dict[str, Any]:
    departure = row["expected_departure"]
    silent = row["last_seen_at"] <= now - silent_after
    past_departure = departure is not None and departure <= now
    why = [w for w, yes in (("silent", silent), ("past_departure", past_departure)) if yes]
    return _person(row) | {
        "entry_gate_id": row["entry_gate_id"],
        "last_seen_at": row["last_seen_at"].isoformat(),
        "last_gate": row["last_gate"],
        "last_seen_by": "guard" if row["last_seen_by"] == "presence_confirmed" else "scan",
        "expected_departure": _iso(departure),
        "silent": silent,
        "group": "probably_gone" if why else "inside",
        "why": why,
    }


def _closed(row: asyncpg.Record) -> dict[str, Any]:
    return _person(row) | {
        "exited_at": row["exited_at"].isoformat(),
        "last_evidence_at": _iso(row["last_evidence_at"]),
        "rule": row["rule"],
    }


async def roll_call(conn: asyncpg.Connection, site_id: int, now: datetime) -> RollCall:
    site = await conn.fetchrow(SITE_SQL, site_id)
    if site is None:
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
    rules = CheckinRules.model_validate_json(site["rules"])
    day_start = last_until(now, MIDNIGHT, ZoneInfo(site["timezone"]))
    silent_after = timedelta(minutes=rules.silent_after_minutes)
    stays = [_open_stay(r, now, silent_after) for r in await conn.fetch(OPEN_STAYS_SQL, site_id)]
    closed = [_closed(r) for r in await conn.fetch(CLOSED_TODAY_SQL, site_id, day_start, now)]
    return RollCall(
        site=dict(site),
        now=now,
        rules=rules,
        inside=[s for s in stays if s["group"] == "inside"],
        probably_gone=[s for s in stays if s["group"] == "probably_gone"],
        checked_out_today=closed,
    )


@requires(Role.GUARD, Role.ADMIN, Role.AUDITOR, Role.HEALTH)
async def presence(request: web.Request) -> web.Response:
    """Who is inside now, in three groups, against the capacity."""
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    async with request.app[DB_KEY].connection() as conn:
        call = await roll_call(conn, site_id, request.app[CLOCK_KEY]())
    return web.json_response(call.as_json())


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["seen", "gone"]


@requires(Role.GUARD, Role.ADMIN)
@documented(body=ConfirmIn)
async def confirm(request: web.Request) -> web.Response:
    """A guard's one tap: the person is seen inside (new evidence), or gone (the stay
    ends now, an estimated end). A `presence_confirmed` event with the guard as actor."""
    site_id = int(request.match_info["site_id"])
    person_id = int(request.match_info["person_id"])
    caller = require_site(request, site_id)
    body = await read_model(request, ConfirmIn)
    now = request.app[CLOCK_KEY]()
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        heads, stay = await lock_open_stay(conn, site_id, person_id)
        name = await person_name(conn, person_id)
        event = NewEvent(
            kind="presence_confirmed",
            actor=caller.actor,
            occurred_at=max(now, stay["entered_at"]),
            site_id=site_id,
            person_id=person_id,
            direction="out" if body.status == "gone" else None,
            detail={"status": body.status, "name": short_name(name)},
        )
        (appended,) = await append_events(conn, [event], heads)
        if body.status == "gone":
            await conn.execute(CLOSE_GONE_SQL, stay["id"], event.occurred_at, appended.id)
    announce(request, heads)
    return web.json_response({"event_row_id": appended.id, "seq": appended.seq}, status=201)


def routes() -> list[web.RouteDef]:
    site = r"/api/v1/sites/{site_id:\d{1,18}}"
    return [
        web.get(site + "/presence", presence, name="presence"),
        web.post(
            site + r"/presence/{person_id:\d{1,18}}/confirm", confirm, name="confirm_presence"
        ),
    ]
