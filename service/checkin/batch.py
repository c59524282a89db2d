"""Scans in, decisions out: one database transaction for a whole batch of scans.

A batch locks the event chains of its sites first; from then on nobody else can
change those sites' presence, so the state read next stays true until commit. The
scans are then decided one by one, in arrival order, each seeing the effects of the
ones before it (presence, capacity, recent use of a pass), exactly as if they had
been processed one per transaction; and everything is written back in a few
statements.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from checkin_core.passes import PassClaims, PassError
from checkin_core.reasons import REASONS, headline, message, short_name
from checkin_core.rotating import check_presented
from service.checkin.decision import (
    GateInfo,
    PassState,
    RecentUse,
    SiteView,
    Verdict,
    apply,
    decide,
    resolve_direction,
)
from service.checkin.offline_breach import PASS_ERRORS, against_policy, offline_policies
from service.events.log import Heads, NewEvent, chain
from service.passes.trust import PassAuthenticator
from service.sites.door_rules import SHARED_PASS_WINDOW_MAX_S, CheckinRules
from service.web.text import Text

logger = logging.getLogger(__name__)

MAX_PAYLOAD_CHARS = 65536  # longer is refused as a bad message; shorter is always recorded
PAYLOAD_KEPT_CHARS = 256  # what the event keeps of a payload, for the guard to see


class OfflineVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Literal["allow", "deny"]
    reason: Annotated[str, Text(40)]


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID
    payload: Annotated[str, Field(max_length=MAX_PAYLOAD_CHARS)]
    seen_at: AwareDatetime
    direction: Literal["in", "out"] | None = None
    offline: OfflineVerdict | None = None


@dataclass(frozen=True)
class ScanItem:
    scan: ScanIn
    gate_id: int
    actor: str


@dataclass(frozen=True)
class Decision:
    event_id: UUID
    decision: str
    reason: str
    direction: str | None
    name: str | None
    duplicate: bool = False
    conflict: str | None = None
    site_id: int | None = None
    seq: int | None = None

    def as_json(self) -> dict[str, Any]:
        vi, en = (
            message(self.reason, self.direction)
            if self.reason in REASONS
            else (self.reason, self.reason)
        )
        head_vi, head_en = headline(self.decision, self.direction)
        out: dict[str, Any] = {
            "type": "decision",
            "event_id": str(self.event_id),
            "decision": self.decision,
            "reason": self.reason,
            "headline_vi": head_vi,
            "headline_en": head_en,
            "message_vi": vi,
            "message_en": en,
            "name": self.name,
            "direction": self.direction,
            "duplicate": self.duplicate,
        }
        if self.conflict:
            out["conflict"] = self.conflict
        return out


@dataclass
class BatchResult:
    decisions: list[Decision]
    heads: dict[int, int] = field(default_factory=dict)  # site id -> last seq written


# Reads all the batch is decided on; then writes it back, and the write commits unless
# a chain moved in between. Both are functions in schema.sql: two round trips a batch.
STATE_SQL = (
    "SELECT checkin_batch_state($1::bigint[], $2::uuid[], $3::uuid[], $4::interval, $5::boolean)"
)
WRITE_SQL = (
    "SELECT checkin_batch_write($1::text::jsonb, " + ", ".join(f"${n}" for n in range(2, 21)) + ")"
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


def storable(text: str) -> str:
    """Text as jsonb can hold it: PostgreSQL refuses NUL, which a QR code may carry. The
    event's payload digest and length are still those of the text as scanned."""
    return text.replace("\x00", "\N{REPLACEMENT CHARACTER}")


def payload_digest(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def occurred_at(scan: ScanIn, rules: CheckinRules, now: datetime) -> tuple[datetime, bool]:
    """When the scan happened: the kiosk's clock if plausible, else ours (flagged)."""
    skew = timedelta(seconds=rules.clock_skew_s)
    earliest = now - (timedelta(hours=rules.max_replay_age_h) if scan.offline else skew)
    if earliest <= scan.seen_at <= now + skew:
        return min(scan.seen_at, now), False
    return now, True


@dataclass
class _Stay:
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
class _Plan:
    events: list[NewEvent] = field(default_factory=list)
    new_stays: list[_Stay] = field(default_factory=list)
    closed: list[tuple[int, datetime, int, int]] = field(
        default_factory=list
    )  # id, at, gate, index
    open_ids: dict[tuple[int, int], int | _Stay] = field(default_factory=dict)
    undone_entries: list[int] = field(default_factory=list)  # entry event ids
    opened_by: dict[int, int] = field(default_factory=dict)  # entry event id -> stay id
    closed_by: dict[int, int] = field(default_factory=dict)  # exit event id -> stay id
    reopened: list[int] = field(default_factory=list)  # stays whose exit the door refused
    policies: dict[int, str] = field(default_factory=dict)  # gate id -> offline policy
    breaches: list[dict[str, str]] = field(default_factory=list)  # logged once committed


def _flag_breach(plan: _Plan, detail: dict[str, Any], breach: str | None, event_id: UUID) -> None:
    if breach is not None:
        detail["offline_against_policy"] = breach
        plan.breaches.append({"event_id": str(event_id), "why": breach})


async def decide_batch(
    conn: asyncpg.Connection,
    items: Sequence[ScanItem],
    authenticator: PassAuthenticator,
    now: datetime | None = None,
    *,
    locked: bool = False,
) -> BatchResult:
    """Decide and record a batch of scans, atomically.

    Optimistic by default: the state is read without a lock, and the write raises
    asyncpg.SerializationError if another batch appended to one of the sites since;
    deciding again then sees it. `locked` holds the sites' chains from the read to the
    commit instead (one transaction, two more round trips), which cannot be refused.
    `now` is read after the state, so batches of a site see time move forward in the
    order they commit (tests may pass a fixed one)."""
    await authenticator.refresh(conn)
    checked = [authenticator.authenticate(item.scan.payload) for item in items]
    # Only a replay with an offline verdict can need a correction: look for those too.
    event_ids = [i.scan.event_id for i in items]
    corrections = [correction_id(i.scan.event_id) for i in items if i.scan.offline is not None]
    pass_ids = list({c.pass_id for c, _ in checked if c is not None})
    # An event id committed meanwhile at another site makes the insert fail, and the
    # batcher's retry then answers it as a duplicate.
    async with conn.transaction() if locked else contextlib.nullcontext():
        state = await conn.fetchval(
            STATE_SQL,
            list({i.gate_id for i in items}),
            event_ids + corrections,
            pass_ids,
            timedelta(seconds=SHARED_PASS_WINDOW_MAX_S),
            locked,
        )
        now = now or datetime.now(UTC)
        gates = {g.id: g for g in map(_gate, state["gates"])}
        site_ids = sorted({g.site_id for g in gates.values()})
        heads: Heads = {c: (seq, bytes.fromhex(h)) for c, seq, h in state["heads"]}
        if missing := set(site_ids) - heads.keys():
            raise LookupError(f"no event chain for site(s) {sorted(missing)}")
        existing = {r["event_id"]: r for r in map(_existing, state["existing"])}
        states: dict[UUID, PassState] = {}
        pass_sites: dict[UUID, int] = {}
        for row in state["passes"]:
            pass_state, pass_site = _pass_state(row)
            states[pass_state.pass_id] = pass_state
            pass_sites[pass_state.pass_id] = pass_site
        views = {site_id: SiteView() for site_id in site_ids}
        plan = _Plan()
        for stay_id, site, person in state["stays"]:
            views[site].inside.add(person)
            plan.open_ids[(site, person)] = stay_id
        for site, inside in state["occupancy"].items():
            views[int(site)].count = inside
        for pass_text, gate_id, direction, at_text in state["recent"]:
            pass_id = UUID(pass_text)
            site = pass_sites.get(pass_id)
            if site in views:
                views[site].last_allowed[pass_id] = RecentUse(gate_id, direction, _time(at_text))
        replayed = [
            existing[i.scan.event_id]
            for i in items
            if i.scan.offline is not None and i.scan.event_id in existing
        ]
        if replayed:  # a door correction may have to undo or reopen the stays they made
            for r in await conn.fetch(
                REPLAYED_STAYS_SQL,
                [p["id"] for p in replayed],
                list({p["person_id"] for p in replayed if p["person_id"] is not None}),
            ):
                plan.opened_by[r["entry_event"]] = r["id"]
                if r["reopenable"] and r["exit_event"] is not None:
                    plan.closed_by[r["exit_event"]] = r["id"]
        plan.policies = await offline_policies(conn, items)

        decisions: list[Decision | None] = []
        first_of: dict[UUID, int] = {}
        # A scan sent live and replayed with the door's offline verdict may meet itself
        # in one batch: the verdict is what happened, so that one is decided (and the
        # other answered as its duplicate), else no correction would ever be recorded.
        door_said = {i.scan.event_id: k for k, i in enumerate(items) if i.scan.offline is not None}
        for index, (item, (claims, error)) in enumerate(zip(items, checked, strict=True)):
            scan = item.scan
            prior = existing.get(scan.event_id)
            if prior is not None:
                if (
                    prior["gate_id"] == item.gate_id
                    and _door_disagrees(scan, prior)
                    and correction_id(scan.event_id) not in existing
                ):
                    _plan_correction(item, prior, gates, views, plan, now)
                decisions.append(_from_record(scan, prior))
                continue
            if scan.event_id in first_of:  # the same event twice in this batch
                decisions.append(None)
                continue
            first_of[scan.event_id] = index
            if scan.offline is None and scan.event_id in door_said:
                k = door_said[scan.event_id]
                item, (claims, error) = items[k], checked[k]
            gate = gates.get(item.gate_id)
            if gate is None:
                raise LookupError(f"gate {item.gate_id} is gone")
            decisions.append(
                _decide_one(item, gate, claims, error, states, views[gate.site_id], plan, now)
            )

        await _write(conn, plan, heads)
    for breach in plan.breaches:
        logger.warning("the door opened offline against its policy", extra=breach)

    by_event = {d.event_id: d for d in decisions if d is not None and not d.duplicate}
    final: list[Decision] = []
    for item, decision in zip(items, decisions, strict=True):
        if decision is None:
            first = by_event[item.scan.event_id]
            reused = item.scan.payload != items[first_of[item.scan.event_id]].scan.payload
            decision = Decision(
                first.event_id,
                first.decision,
                first.reason,
                first.direction,
                first.name,
                duplicate=True,
                conflict="event_id_reused" if reused else None,
                site_id=first.site_id,
            )
        final.append(decision)
    return BatchResult(final, {site: heads[site][0] for site in site_ids})


def _decide_one(
    item: ScanItem,
    gate: GateInfo,
    claims: PassClaims | None,
    auth_error: str | None,
    states: dict[UUID, PassState],
    view: SiteView,
    plan: _Plan,
    now: datetime,
) -> Decision:
    scan = item.scan
    at, skewed = occurred_at(scan, gate.rules, now)
    check_at = at if scan.offline else now
    error = auth_error
    if claims is not None and error is None:
        try:
            check_presented(claims, now=check_at, site_id=gate.site_id)
        except PassError as e:
            error = e.reason.value
    # claims are set exactly when the signature is genuine (auth_error is None).
    state = states.get(claims.pass_id) if claims is not None else None
    if claims is not None and claims.site_id != gate.site_id:
        state = None
    person_id = state.person_id if state else None
    inside = person_id is not None and person_id in view.inside
    direction = resolve_direction(gate, scan.direction, inside)
    if direction == "wrong":
        verdict = Verdict("deny", "wrong_direction", scan.direction or "in")
    else:
        verdict = decide(
            gate=gate,
            direction=direction,
            pass_error=error,
            claims=claims,
            state=state,
            view=view,
            at=check_at,
        )
    detail: dict[str, Any] = {
        "name": short_name(state.full_name) if state else None,
        "payload_sha256": payload_digest(scan.payload),
        "payload_len": len(scan.payload),
        "seen_at": scan.seen_at.isoformat(),
    }
    if auth_error is not None:  # not one of our passes: keep what it was, for the guard
        detail["payload_head"] = storable(scan.payload[:PAYLOAD_KEPT_CHARS])
    if skewed:
        detail["clock_skew"] = True
    if verdict.warnings:
        detail["warnings"] = list(verdict.warnings)
    if scan.offline is not None:
        # The door already acted on the kiosk's verdict: that is what happened.
        detail["server_verdict"] = {"decision": verdict.decision, "reason": verdict.reason}
        detail["offline"] = {
            "verdict": scan.offline.verdict,
            "reason": storable(scan.offline.reason),
        }
        if scan.offline.verdict == "allow":
            breach = against_policy(plan.policies.get(gate.id), error)
            _flag_breach(plan, detail, breach, scan.event_id)
        reason = scan.offline.reason
        if REASONS.get(reason, ("",))[0] != scan.offline.verdict:
            reason = "offline_allowed" if scan.offline.verdict == "allow" else "offline_denied"
        verdict = Verdict(scan.offline.verdict, reason, verdict.direction, verdict.warnings)
    index = len(plan.events)
    plan.events.append(
        NewEvent(
            kind="scan",
            actor=item.actor,
            occurred_at=at,
            site_id=gate.site_id,
            gate_id=gate.id,
            person_id=person_id,
            pass_id=claims.pass_id if claims is not None else None,
            event_id=scan.event_id,
            direction=verdict.direction,
            decision=verdict.decision,
            reason=verdict.reason,
            detail=detail,
        )
    )
    if person_id is not None:
        _plan_presence(plan, verdict, gate, person_id, at, index)
    apply(verdict, view, gate, person_id, state.pass_id if state else None, at)
    return Decision(
        scan.event_id,
        verdict.decision,
        verdict.reason,
        verdict.direction,
        detail["name"],
        site_id=gate.site_id,
    )


def _plan_presence(
    plan: _Plan, verdict: Verdict, gate: GateInfo, person_id: int, at: datetime, index: int
) -> None:
    key = (gate.site_id, person_id)
    current = plan.open_ids.get(key)
    if verdict.opens_stay and current is None:
        stay = _Stay(gate.site_id, person_id, at, gate.id, index)
        plan.new_stays.append(stay)
        plan.open_ids[key] = stay
    elif verdict.closes_stay and current is not None:
        if isinstance(current, _Stay):
            # Kiosk clocks differ: a stay never ends before it began.
            current.exited_at = max(at, current.entered_at)
            current.exit_gate_id, current.exit_index = gate.id, index
        else:
            plan.closed.append((current, at, gate.id, index))
        del plan.open_ids[key]


def correction_id(event_id: UUID) -> UUID:
    """The id of the correction of a scan: derived, so a scan is corrected once."""
    return uuid5(event_id, "door_correction")


def _door_disagrees(scan: ScanIn, prior: dict[str, Any]) -> bool:
    """A replay says the door did something else than what was recorded: the live
    answer came after the kiosk had given up waiting and applied its offline policy."""
    return (
        scan.offline is not None
        and "offline" not in prior["detail"]
        and scan.offline.verdict != prior["decision"]
    )


def _plan_correction(
    item: ScanItem,
    prior: dict[str, Any],
    gates: dict[int, GateInfo],
    views: dict[int, SiteView],
    plan: _Plan,
    now: datetime,
) -> None:
    """Record what the door really did, and make presence follow it."""
    offline = item.scan.offline
    assert offline is not None
    gate = gates[prior["gate_id"]]
    person_id = prior["person_id"]
    index = len(plan.events)
    detail = {
        "corrects": str(item.scan.event_id),
        "recorded": {"decision": prior["decision"], "reason": prior["reason"]},
        "name": prior["detail"].get("name"),
    }
    if offline.verdict == "allow":
        # The live answer's reason says whether the code was a valid pass here.
        error = prior["reason"] if prior["reason"] in PASS_ERRORS else None
        breach = against_policy(plan.policies.get(gate.id), error)
        _flag_breach(plan, detail, breach, item.scan.event_id)
    plan.events.append(
        NewEvent(
            kind="door_correction",
            event_id=correction_id(item.scan.event_id),
            actor=item.actor,
            occurred_at=now,
            site_id=prior["site_id"],
            gate_id=prior["gate_id"],
            person_id=person_id,
            pass_id=prior["pass_id"],
            direction=prior["direction"],
            decision=offline.verdict,
            reason=offline.reason if offline.reason in REASONS else None,
            detail=detail,
        )
    )
    if person_id is None:
        return
    view = views[gate.site_id]
    key = (gate.site_id, person_id)
    if prior["direction"] == "out":
        # The exit door stayed shut (a kiosk's offline policy may deny exits too): the
        # person is still inside, unless they have come in or been let out again since.
        stay_id = plan.closed_by.get(prior["id"])
        if offline.verdict == "deny" and stay_id is not None and key not in plan.open_ids:
            plan.reopened.append(stay_id)
            plan.open_ids[key] = stay_id
            view.inside.add(person_id)
            view.count += 1
        return
    stay_id = plan.opened_by.get(prior["id"])
    if offline.verdict == "deny" and stay_id is not None:
        plan.undone_entries.append(prior["id"])  # the door stayed shut: no stay at all
        if plan.open_ids.get(key) == stay_id:  # not one opened since
            del plan.open_ids[key]
            view.inside.discard(person_id)
            view.count -= 1
    elif offline.verdict == "allow" and key not in plan.open_ids:
        verdict = Verdict("allow", "offline_allowed", "in")
        _plan_presence(plan, verdict, gate, person_id, now, index)
        apply(verdict, view, gate, person_id, None, now)


async def _write(conn: asyncpg.Connection, plan: _Plan, heads: Heads) -> None:
    """The batch's events, chained, and what they do to presence: one round trip."""
    if not plan.events:
        return
    chained = chain(plan.events, heads)
    seqs = chained.seqs
    closed, new = plan.closed, plan.new_stays
    await conn.execute(
        WRITE_SQL,
        *chained.params(),
        plan.undone_entries,
        plan.reopened,
        [c[0] for c in closed],
        [c[1] for c in closed],
        [c[2] for c in closed],
        [seqs[c[3]] for c in closed],
        [x.site_id for x in new],
        [x.person_id for x in new],
        [x.entered_at for x in new],
        [x.entry_gate_id for x in new],
        [seqs[x.entry_index] for x in new],
        [x.exited_at for x in new],
        [x.exit_gate_id for x in new],
        [None if x.exit_index is None else seqs[x.exit_index] for x in new],
    )


def _from_record(scan: ScanIn, row: dict[str, Any]) -> Decision:
    conflict = None
    if row["detail"].get("payload_sha256") != payload_digest(scan.payload):
        conflict = "event_id_reused"
    return Decision(
        scan.event_id,
        row["decision"],
        row["reason"],
        row["direction"],
        row["detail"].get("name"),
        duplicate=True,
        conflict=conflict,
    )
