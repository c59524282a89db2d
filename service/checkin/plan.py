"""What a batch of scans will write, gathered while its scans are decided, and the one
statement that writes it: the events, chained, and what they do to presence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import asyncpg

from service.checkin.decision import GateInfo, SiteView, Verdict
from service.door.auto_checkout import auto_exit_event
from service.events.log import Heads, NewEvent, chain

# checkin_batch_write (schema.sql) with named arguments: a parameter reordered there
# cannot silently take another's values.
WRITE_ARGS = (
    "records",
    "chain_ids",
    "seqs",
    "digests",
    "prev_hashes",
    "hashes",
    "undone_entries",
    "reopened",
    "closed_ids",
    "closed_at",
    "closed_gates",
    "closed_seqs",
    "new_sites",
    "new_people",
    "new_entered",
    "new_entry_gates",
    "new_entry_seqs",
    "new_exited",
    "new_exit_gates",
    "new_exit_seqs",
)
WRITE_SQL = (
    "SELECT checkin_batch_write("
    + ", ".join(
        f"{name} => ${n}" + ("::text::jsonb" if name == "records" else "")
        for n, name in enumerate(WRITE_ARGS, 1)
    )
    + ")"
)


def correction_id(event_id: UUID) -> UUID:
    """The id of the correction of a scan: derived, so a scan is corrected once."""
    return uuid5(event_id, "door_correction")


@dataclass
class Stay:
    """A stay opened in this batch (not yet in the database)."""

    site_id: int
    person_id: int
    entered_at: datetime
    entry_gate_id: int
    entry_index: int  # index of the entry event in this batch
    exited_at: datetime | None = None
    exit_gate_id: int | None = None
    exit_index: int | None = None


@dataclass
class Plan:
    events: list[NewEvent] = field(default_factory=list)
    new_stays: list[Stay] = field(default_factory=list)
    closed: list[tuple[int, datetime, int | None, int]] = field(
        default_factory=list
    )  # id, at, gate, index
    open_ids: dict[tuple[int, int], int | Stay] = field(default_factory=dict)
    undone_entries: list[int] = field(default_factory=list)  # entry event ids
    opened_by: dict[int, int] = field(default_factory=dict)  # entry event id -> stay id
    closed_by: dict[int, int] = field(default_factory=dict)  # exit event id -> stay id
    reopened: list[int] = field(default_factory=list)  # stays whose exit the door refused
    policies: dict[int, str] = field(default_factory=dict)  # gate id -> offline policy
    breaches: list[dict[str, str]] = field(default_factory=list)  # logged once committed


def flag_breach(plan: Plan, detail: dict[str, Any], breach: str | None, event_id: UUID) -> None:
    if breach is not None:
        detail["offline_against_policy"] = breach
        plan.breaches.append({"event_id": str(event_id), "why": breach})


def plan_presence(
    plan: Plan, verdict: Verdict, gate: GateInfo, person_id: int, at: datetime, index: int
) -> None:
    key = (gate.site_id, person_id)
    current = plan.open_ids.get(key)
    if verdict.opens_stay and current is None:
        stay = Stay(gate.site_id, person_id, at, gate.id, index)
        plan.new_stays.append(stay)
        plan.open_ids[key] = stay
    elif verdict.closes_stay and current is not None:
        if isinstance(current, Stay):
            # Kiosk clocks differ: a stay never ends before it began.
            current.exited_at = max(at, current.entered_at)
            current.exit_gate_id, current.exit_index = gate.id, index
        else:
            plan.closed.append((current, at, gate.id, index))
        del plan.open_ids[key]


def close_stale(
    plan: Plan, view: SiteView, site_id: int, person_id: int, full_name: str | None
) -> None:
    """End a stay the site's rules (or the day's reset) have ended, before the person's
    entry is decided: an `auto_exit` at the time the rule fired, like the sweep's."""
    entered_at, ended = view.stale.pop(person_id)
    stay_id = plan.open_ids.get((site_id, person_id))
    if not isinstance(stay_id, int):  # left, or came in again, earlier in this batch
        return
    del plan.open_ids[(site_id, person_id)]
    plan.closed.append((stay_id, ended.at, None, len(plan.events)))
    plan.events.append(auto_exit_event(site_id, person_id, full_name, entered_at, ended))
    view.inside.discard(person_id)
    view.count -= 1


async def write_plan(conn: asyncpg.Connection, plan: Plan, heads: Heads) -> None:
    """The batch's events, chained, and what they do to presence: one round trip."""
    if not plan.events:
        return
    chained = chain(plan.events, heads)
    seqs = chained.seqs
    closed, new = plan.closed, plan.new_stays
    args: dict[str, Any] = {
        "records": chained.records,
        "chain_ids": chained.chain_ids,
        "seqs": chained.seqs,
        "digests": chained.digests,
        "prev_hashes": chained.prev_hashes,
        "hashes": chained.hashes,
        "undone_entries": plan.undone_entries,
        "reopened": plan.reopened,
        "closed_ids": [c[0] for c in closed],
        "closed_at": [c[1] for c in closed],
        "closed_gates": [c[2] for c in closed],
        "closed_seqs": [seqs[c[3]] for c in closed],
        "new_sites": [x.site_id for x in new],
        "new_people": [x.person_id for x in new],
        "new_entered": [x.entered_at for x in new],
        "new_entry_gates": [x.entry_gate_id for x in new],
        "new_entry_seqs": [seqs[x.entry_index] for x in new],
        "new_exited": [x.exited_at for x in new],
        "new_exit_gates": [x.exit_gate_id for x in new],
        "new_exit_seqs": [None if x.exit_index is None else seqs[x.exit_index] for x in new],
    }
    await conn.execute(WRITE_SQL, *(args[name] for name in WRITE_ARGS))
