"""The count at the end of a chaos run: what the kiosks made against what was recorded.

- every scan the kiosks made is a ``scan`` event exactly once (by event_id);
- the record says what the door did (a ``door_correction`` overrides the scan's own
  decision when the live answer came after the kiosk had judged offline);
- presence follows the log: every allowed entry opened a stay (unless corrected to a
  deny), every stay was opened by an allowed entry, override or correction, and every
  exit by an allowed exit or a manual one;
- each kiosk's scans were recorded in the order it made them;
- every hash chain verifies.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from service.events.log import verify_chain
from tests.chaos.fleet import Fleet

SCANS_SQL = """
SELECT id, seq, event_id::text, decision, direction, person_id, detail
FROM events WHERE kind = 'scan' AND site_id = $1 ORDER BY seq
"""
OTHER_EVENTS_SQL = """
SELECT id, kind, decision, direction, detail FROM events
WHERE kind <> 'scan' AND site_id = $1 ORDER BY seq
"""
PRESENCE_SQL = """
SELECT id, person_id, entry_event, exit_event FROM presence WHERE site_id = $1 ORDER BY id
"""


@dataclass
class Tally:
    generated: int = 0
    recorded: int = 0
    duplicates: int = 0
    lost: int = 0
    unexpected: int = 0  # recorded, but no kiosk made it
    presence_mismatches: int = 0
    door_mismatches: int = 0  # the record says otherwise than what the door did
    out_of_order: int = 0  # a kiosk's scan recorded before one it made earlier
    offline: int = 0  # judged by the offline policy at the door
    corrections: int = 0
    left_by_refused_exit: int = 0  # last stay closed by an exit the door refused
    chains: dict[int, bool] = field(default_factory=dict)  # chain id -> intact
    problems: list[str] = field(default_factory=list)  # the first few, for the message

    @property
    def intact(self) -> bool:
        return bool(self.chains) and all(self.chains.values())

    def line(self, name: str, **extra: Any) -> str:
        more = "".join(f", {k.replace('_', ' ')} {v}" for k, v in extra.items())
        return (
            f"chaos {name}: scans generated {self.generated}, recorded {self.recorded}, "
            f"duplicates {self.duplicates}, lost {self.lost}, unexpected {self.unexpected}, "
            f"presence mismatches {self.presence_mismatches}, "
            f"door mismatches {self.door_mismatches}, out of order {self.out_of_order}, "
            f"offline verdicts {self.offline}, corrections {self.corrections}, "
            f"left by a refused exit {self.left_by_refused_exit}, "
            f"chains {'intact' if self.intact else 'BROKEN'}{more}"
        )

    def assert_nothing_lost(self) -> None:
        assert (
            self.recorded == self.generated
            and self.duplicates == self.lost == self.unexpected == 0
            and self.presence_mismatches == self.door_mismatches == 0
            and self.intact
        ), f"{self.line('failed')}\n" + "\n".join(self.problems[:20])


async def count(conn: asyncpg.Connection, site_id: int, fleet: Fleet) -> Tally:
    tally = Tally()
    scans = await conn.fetch(SCANS_SQL, site_id)
    others = await conn.fetch(OTHER_EVENTS_SQL, site_id)
    stays = await conn.fetch(PRESENCE_SQL, site_id)

    made = {e for k in fleet.kiosks for e in k.generated} | set(fleet.extra)
    ids = [r["event_id"] for r in scans]
    tally.generated = sum(len(k.generated) for k in fleet.kiosks) + len(fleet.extra)
    tally.recorded = len(ids)
    tally.duplicates = len(ids) - len(set(ids))
    tally.lost = len(made - set(ids))
    tally.unexpected = len(set(ids) - made)
    tally.problems += [f"lost {e}" for e in sorted(made - set(ids))]

    corrected = {r["detail"]["corrects"]: r for r in others if r["kind"] == "door_correction"}
    tally.corrections = len(corrected)
    by_id = {r["event_id"]: r for r in scans}
    for kiosk in fleet.kiosks:
        tally.offline += len(kiosk.offline)
        for event_id, door in kiosk.door.items():
            row = corrected.get(event_id) or by_id.get(event_id)
            if row is not None and row["decision"] != door:
                tally.door_mismatches += 1
                tally.problems.append(
                    f"{kiosk.name} {event_id}: door {door}, record {row['decision']}"
                    f"{' (corrected)' if event_id in corrected else ''}"
                )
        seqs = [by_id[e]["seq"] for e in kiosk.generated if e in by_id]
        tally.out_of_order += sum(1 for a, b in itertools.pairwise(seqs) if b < a)

    tally.presence_mismatches = _presence_mismatches(scans, others, stays, corrected, tally)
    for chain_id in await conn.fetch("SELECT chain_id FROM event_chains ORDER BY chain_id"):
        report = await verify_chain(conn, chain_id["chain_id"])
        tally.chains[report.chain_id] = report.broken is None
        if report.broken is not None:
            tally.problems.append(f"chain {report.chain_id} broken: {report.as_json()}")
    return tally


def _presence_mismatches(
    scans: list[asyncpg.Record],
    others: list[asyncpg.Record],
    stays: list[asyncpg.Record],
    corrected: dict[str, asyncpg.Record],
    tally: Tally,
) -> int:
    def allowed(r: asyncpg.Record, direction: str) -> bool:
        return bool(r["decision"] == "allow" and r["direction"] == direction)

    # An allowed entry with a warning (e.g. already inside, under `warn`) opens nothing.
    entries = {
        r["id"]: r
        for r in scans
        if allowed(r, "in") and r["person_id"] is not None and not r["detail"].get("warnings")
    }
    # Allowed by the service, but the door had stayed shut (the answer came too late).
    refused = {
        r["id"]
        for r in scans
        if r["event_id"] in corrected and corrected[r["event_id"]]["decision"] == "deny"
    }
    undone = refused & set(entries)
    openers = set(entries) | {
        r["id"] for r in others if r["kind"] in ("override", "door_correction") and allowed(r, "in")
    }
    closers = {r["id"] for r in scans if allowed(r, "out")} | {
        r["id"]
        for r in others
        if r["kind"] == "manual_exit" or (r["kind"] == "override" and allowed(r, "out"))
    }
    by_entry = {s["entry_event"]: s for s in stays}

    def stays_of(person_id: int) -> str:
        return ", ".join(
            f"#{s['id']} {s['entry_event']}->{s['exit_event']}"
            for s in stays
            if s["person_id"] == person_id
        )

    last_stay = {s["person_id"]: s["id"] for s in stays}  # in id order: the last wins
    mismatches = 0
    for stay in stays:
        if stay["entry_event"] not in openers:
            mismatches += 1
            tally.problems.append(
                f"stay {stay['id']} opened by event {stay['entry_event']}, not an allowed "
                f"entry (stays of person {stay['person_id']}: {stays_of(stay['person_id'])})"
            )
        if stay["exit_event"] is not None and stay["exit_event"] not in closers:
            mismatches += 1
            tally.problems.append(
                f"stay {stay['id']} closed by event {stay['exit_event']}, not an allowed "
                f"exit (stays of person {stay['person_id']}: {stays_of(stay['person_id'])})"
            )
        # The exit door stayed shut, yet the person's last stay ends there: the service
        # reopens it on the exit's correction, unless the person was let in or out by a
        # later scan that the door may also have refused. Counted and reported only.
        if stay["exit_event"] in refused and stay["id"] == last_stay[stay["person_id"]]:
            tally.left_by_refused_exit += 1
    for event_row_id in entries:
        stay = by_entry.get(event_row_id)
        if event_row_id in undone:  # the door stayed shut: no stay, open or closed
            if stay is not None:
                mismatches += 1
                tally.problems.append(
                    f"entry {event_row_id} refused by the door has stay {stay['id']} "
                    f"(stays of person {stay['person_id']}: {stays_of(stay['person_id'])})"
                )
        elif stay is None:
            mismatches += 1
            tally.problems.append(f"allowed entry {event_row_id} has no stay")
    return mismatches
