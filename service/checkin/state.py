"""What a batch of scans is decided on, read in one round trip: its gates with their
rules, the sites' chain heads, the scans already recorded, the passes' states, who is
inside, how many are likely inside (for a capacity), and each pass's recent use."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from checkin_core.passes import PassClaims
from service.checkin.decision import GateInfo, PassState, RecentUse, SiteView
from service.checkin.offline_breach import offline_policies
from service.checkin.plan import Plan, correction_id
from service.checkin.wire import ScanItem
from service.door.auto_checkout import stale_closure
from service.events.log import Heads
from service.sites.door_rules import SHARED_PASS_WINDOW_MAX_S, CheckinRules

Checked = tuple[PassClaims | None, str | None]  # a payload's claims, or why it has none

# Reads all the batch is decided on (a function in schema.sql); the write that follows
# (service.checkin.plan) commits unless a chain moved in between: two round trips a batch.
STATE_SQL = (
    "SELECT checkin_batch_state($1::bigint[], $2::uuid[], $3::uuid[], $4::interval, $5::boolean)"
)
# The stays that replayed scans opened or closed. `reopenable`: the person has had
# no stay since, nor been let out by a later exit scan.
REPLAYED_STAYS_SQL = """
SELECT p.id, p.entry_event, p.exit_event,
       NOT EXISTS (SELECT 1 FROM presence q
                   WHERE q.site_id = p.site_id AND q.person_id = p.person_id AND q.id > p.id)
       AND NOT EXISTS (SELECT 1 FROM events e
                       WHERE e.person_id = p.person_id AND e.site_id = p.site_id
                         AND e.kind = 'scan' AND e.direction = 'out' AND e.decision = 'allow'
                         AND e.id > p.exit_event)
       AS reopenable
FROM presence p
WHERE p.person_id = ANY($2::bigint[])
  AND (p.entry_event = ANY($1::bigint[]) OR p.exit_event = ANY($1::bigint[]))
"""


@dataclass
class BatchState:
    now: datetime
    gates: dict[int, GateInfo]
    site_ids: list[int]
    heads: Heads
    existing: dict[UUID, dict[str, Any]]  # scans already recorded, by event id
    passes: dict[UUID, PassState]
    views: dict[int, SiteView]  # by site
    plan: Plan


async def read_state(
    conn: asyncpg.Connection,
    items: Sequence[ScanItem],
    checked: Sequence[Checked],
    now: datetime | None,
    *,
    locked: bool,
) -> BatchState:
    """`now` is read after the state, so batches of a site see time move forward in the
    order they commit (tests may pass a fixed one)."""
    # Only a replay with an offline verdict can need a correction: look for those too.
    event_ids = [i.scan.event_id for i in items]
    corrections = [correction_id(i.scan.event_id) for i in items if i.scan.offline is not None]
    row = await conn.fetchval(
        STATE_SQL,
        list({i.gate_id for i in items}),
        event_ids + corrections,
        list({c.pass_id for c, _ in checked if c is not None}),
        timedelta(seconds=SHARED_PASS_WINDOW_MAX_S),
        locked,
    )
    now = now or datetime.now(UTC)
    gates = {g.id: g for g in map(_gate, row["gates"])}
    site_ids = sorted({g.site_id for g in gates.values()})
    heads: Heads = {c: (seq, bytes.fromhex(h)) for c, seq, h in row["heads"]}
    if missing := set(site_ids) - heads.keys():
        raise LookupError(f"no event chain for site(s) {sorted(missing)}")
    passes: dict[UUID, PassState] = {}
    pass_sites: dict[UUID, int] = {}
    for pass_row in row["passes"]:
        pass_state, pass_site = _pass_state(pass_row)
        passes[pass_state.pass_id] = pass_state
        pass_sites[pass_state.pass_id] = pass_site
    state = BatchState(
        now=now,
        gates=gates,
        site_ids=site_ids,
        heads=heads,
        existing={r["event_id"]: r for r in map(_existing, row["existing"])},
        passes=passes,
        views={site_id: SiteView() for site_id in site_ids},
        plan=Plan(),
    )
    _read_presence(state, row, pass_sites)
    await _read_replayed_stays(conn, state, items)
    state.plan.policies = await offline_policies(conn, items)
    return state


def _read_presence(state: BatchState, row: dict[str, Any], pass_sites: dict[UUID, int]) -> None:
    """Who is inside each site (and whose stay a rule has ended), how many, and the
    recent use of each pass."""
    views, plan = state.views, state.plan
    site_gates = {g.site_id: g for g in state.gates.values()}
    for stay_id, site, person, entered_text in row["stays"]:
        views[site].inside.add(person)
        plan.open_ids[(site, person)] = stay_id
        gate = site_gates[site]
        entered_at = _time(entered_text)
        stale = stale_closure(entered_at, gate.rules, ZoneInfo(gate.timezone), state.now)
        if stale is not None:
            views[site].stale[person] = (entered_at, stale)
    for site, inside in row["occupancy"].items():
        views[int(site)].count = inside
    for pass_text, gate_id, direction, at_text in row["recent"]:
        pass_id = UUID(pass_text)
        site = pass_sites.get(pass_id)
        if site in views:
            views[site].last_allowed[pass_id] = RecentUse(gate_id, direction, _time(at_text))


async def _read_replayed_stays(
    conn: asyncpg.Connection, state: BatchState, items: Sequence[ScanItem]
) -> None:
    """A door correction may have to undo or reopen the stays replayed scans made."""
    replayed = [
        state.existing[i.scan.event_id]
        for i in items
        if i.scan.offline is not None and i.scan.event_id in state.existing
    ]
    if not replayed:
        return
    for r in await conn.fetch(
        REPLAYED_STAYS_SQL,
        [p["id"] for p in replayed],
        list({p["person_id"] for p in replayed if p["person_id"] is not None}),
    ):
        state.plan.opened_by[r["entry_event"]] = r["id"]
        if r["reopenable"] and r["exit_event"] is not None:
            state.plan.closed_by[r["exit_event"]] = r["id"]


@functools.lru_cache(maxsize=1024)
def _rules(text: str) -> CheckinRules:
    """A site's door rules, parsed once per distinct text (they change rarely)."""
    return CheckinRules.model_validate_json(text)


def _gate(row: list[Any]) -> GateInfo:
    gate_id, site_id, direction, opening_hours, timezone, capacity, rules = row
    return GateInfo(gate_id, site_id, direction, opening_hours, timezone, capacity, _rules(rules))


def _pass_state(row: list[Any]) -> tuple[PassState, int]:
    """A pass's state and its site."""
    pass_id, person_id, site_id, revoked, name, status, valid_until, current, denied, held = row
    state = PassState(
        pass_id=UUID(pass_id),
        person_id=person_id,
        full_name=name,
        revoked_reason=revoked,
        declaration_status=status,
        declaration_valid_until=None if valid_until is None else _time(valid_until),
        declaration_is_the_pass_one=current,
        deny_listed=denied,
        suspension=held,
    )
    return state, site_id


def _existing(row: dict[str, Any]) -> dict[str, Any]:
    row["event_id"] = UUID(row["event_id"])
    row["pass_id"] = None if row["pass_id"] is None else UUID(row["pass_id"])
    return row


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
