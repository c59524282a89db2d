"""Scans in, decisions out: one database transaction for a whole batch of scans.

The batch's state is read in one round trip (service.checkin.state); the scans are then
decided one by one, in arrival order, each seeing the effects of the ones before it
(presence, capacity, recent use of a pass), exactly as if they had been processed one
per transaction; and everything is written back in one statement
(service.checkin.plan), which commits unless another batch moved a site's chain since.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from checkin_core.passes import PassClaims, PassError
from checkin_core.reasons import REASONS, short_name
from checkin_core.rotating import check_presented
from service.checkin.decision import GateInfo, PassState, Verdict, apply, decide, resolve_direction
from service.checkin.offline_breach import PASS_ERRORS, against_policy
from service.checkin.plan import (
    Plan,
    close_stale,
    correction_id,
    flag_breach,
    plan_presence,
    write_plan,
)
from service.checkin.state import BatchState, Checked, read_state
from service.checkin.wire import BatchResult, Decision, ScanIn, ScanItem
from service.events.log import NewEvent
from service.passes.trust import PassAuthenticator
from service.sites.door_rules import CheckinRules

logger = logging.getLogger(__name__)

PAYLOAD_KEPT_CHARS = 256  # what the event keeps of a payload, for the guard to see


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
    An event id committed meanwhile at another site makes the insert fail, and the
    batcher's retry then answers it as a duplicate."""
    await authenticator.refresh(conn)
    checked = [authenticator.authenticate(item.scan.payload) for item in items]
    async with conn.transaction() if locked else contextlib.nullcontext():
        state = await read_state(conn, items, checked, now, locked=locked)
        decisions, first_of = _decide_all(items, checked, state)
        await write_plan(conn, state.plan, state.heads)
    for breach in state.plan.breaches:
        logger.warning("the door opened offline against its policy", extra=breach)
    heads = {site: state.heads[site][0] for site in state.site_ids}
    return BatchResult(_with_duplicates(items, decisions, first_of), heads)


def _decide_all(
    items: Sequence[ScanItem], checked: Sequence[Checked], state: BatchState
) -> tuple[list[Decision | None], dict[UUID, int]]:
    """Each scan in order: a recorded one answered from the record (and corrected if the
    door did otherwise), a repeat in the batch left for its first, the rest decided."""
    decisions: list[Decision | None] = []
    first_of: dict[UUID, int] = {}
    # A scan sent live and replayed with the door's offline verdict may meet itself
    # in one batch: the verdict is what happened, so that one is decided (and the
    # other answered as its duplicate), else no correction would ever be recorded.
    door_said = {i.scan.event_id: k for k, i in enumerate(items) if i.scan.offline is not None}
    for index, (item, (claims, error)) in enumerate(zip(items, checked, strict=True)):
        scan = item.scan
        prior = state.existing.get(scan.event_id)
        if prior is not None:
            if (
                prior["gate_id"] == item.gate_id
                and _door_disagrees(scan, prior)
                and correction_id(scan.event_id) not in state.existing
            ):
                _plan_correction(item, prior, state)
            decisions.append(_from_record(scan, prior))
            continue
        if scan.event_id in first_of:  # the same event twice in this batch
            decisions.append(None)
            continue
        first_of[scan.event_id] = index
        if scan.offline is None and scan.event_id in door_said:
            k = door_said[scan.event_id]
            item, (claims, error) = items[k], checked[k]
        gate = state.gates.get(item.gate_id)
        if gate is None:
            raise LookupError(f"gate {item.gate_id} is gone")
        decisions.append(_decide_one(item, gate, claims, error, state))
    return decisions, first_of


def _with_duplicates(
    items: Sequence[ScanItem], decisions: list[Decision | None], first_of: dict[UUID, int]
) -> list[Decision]:
    """A repeat in the batch gets its first's decision, marked a duplicate."""
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
    return final


def _decide_one(
    item: ScanItem,
    gate: GateInfo,
    claims: PassClaims | None,
    auth_error: str | None,
    state: BatchState,
) -> Decision:
    """One scan: when it happened, what its pass says here, the verdict (or the door's
    own, for a replay), its event, and what it does to presence."""
    scan, plan = item.scan, state.plan
    view = state.views[gate.site_id]
    at, skewed = occurred_at(scan, gate.rules, state.now)
    check_at = at if scan.offline else state.now
    error = _pass_error(claims, auth_error, check_at, gate)
    pass_state = _pass_here(claims, state.passes, gate)
    person_id = pass_state.person_id if pass_state else None
    if person_id in view.stale and not (gate.direction == "exit" or scan.direction == "out"):
        close_stale(
            plan, view, gate.site_id, person_id, pass_state.full_name if pass_state else None
        )
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
            state=pass_state,
            view=view,
            at=check_at,
        )
    detail = _scan_detail(scan, pass_state, auth_error, skewed, verdict)
    if scan.offline is not None:
        verdict = _as_the_door_did(scan, verdict, detail, plan, gate, error)
    index = len(plan.events)
    plan.events.append(_scan_event(item, gate, at, person_id, claims, verdict, detail))
    if person_id is not None:
        plan_presence(plan, verdict, gate, person_id, at, index)
    apply(verdict, view, gate, person_id, pass_state.pass_id if pass_state else None, at)
    return Decision(
        scan.event_id,
        verdict.decision,
        verdict.reason,
        verdict.direction,
        detail["name"],
        site_id=gate.site_id,
    )


def _pass_error(
    claims: PassClaims | None, auth_error: str | None, at: datetime, gate: GateInfo
) -> str | None:
    """Why the pass may not open this gate at `at`, as far as the pass itself says."""
    if claims is None or auth_error is not None:
        return auth_error
    try:
        check_presented(claims, now=at, site_id=gate.site_id)
    except PassError as e:
        return e.reason.value
    return None


def _pass_here(
    claims: PassClaims | None, passes: dict[UUID, PassState], gate: GateInfo
) -> PassState | None:
    """The pass's state, if it is a genuine pass of this gate's site (claims are set
    exactly when the signature is genuine)."""
    if claims is None or claims.site_id != gate.site_id:
        return None
    return passes.get(claims.pass_id)


def _scan_detail(
    scan: ScanIn,
    pass_state: PassState | None,
    auth_error: str | None,
    skewed: bool,
    verdict: Verdict,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "name": short_name(pass_state.full_name) if pass_state else None,
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
    return detail


def _as_the_door_did(
    scan: ScanIn,
    verdict: Verdict,
    detail: dict[str, Any],
    plan: Plan,
    gate: GateInfo,
    error: str | None,
) -> Verdict:
    """A replay: the door already acted on the kiosk's verdict, so that is what
    happened; ours is kept beside it, and an allow against the gate's policy flagged."""
    offline = scan.offline
    assert offline is not None
    detail["server_verdict"] = {"decision": verdict.decision, "reason": verdict.reason}
    detail["offline"] = {"verdict": offline.verdict, "reason": storable(offline.reason)}
    if offline.verdict == "allow":
        breach = against_policy(plan.policies.get(gate.id), error)
        flag_breach(plan, detail, breach, scan.event_id)
    reason = offline.reason
    if REASONS.get(reason, ("",))[0] != offline.verdict:
        reason = "offline_allowed" if offline.verdict == "allow" else "offline_denied"
    return Verdict(offline.verdict, reason, verdict.direction, verdict.warnings)


def _scan_event(
    item: ScanItem,
    gate: GateInfo,
    at: datetime,
    person_id: int | None,
    claims: PassClaims | None,
    verdict: Verdict,
    detail: dict[str, Any],
) -> NewEvent:
    return NewEvent(
        kind="scan",
        actor=item.actor,
        occurred_at=at,
        site_id=gate.site_id,
        gate_id=gate.id,
        person_id=person_id,
        pass_id=claims.pass_id if claims is not None else None,
        event_id=item.scan.event_id,
        direction=verdict.direction,
        decision=verdict.decision,
        reason=verdict.reason,
        detail=detail,
    )


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


def _door_disagrees(scan: ScanIn, prior: dict[str, Any]) -> bool:
    """A replay says the door did something else than what was recorded: the live
    answer came after the kiosk had given up waiting and applied its offline policy."""
    return (
        scan.offline is not None
        and "offline" not in prior["detail"]
        and scan.offline.verdict != prior["decision"]
    )


def _plan_correction(item: ScanItem, prior: dict[str, Any], state: BatchState) -> None:
    """Record what the door really did, and make presence follow it."""
    offline = item.scan.offline
    assert offline is not None
    plan, views, now = state.plan, state.views, state.now
    gate = state.gates[prior["gate_id"]]
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
        flag_breach(plan, detail, breach, item.scan.event_id)
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
        plan_presence(plan, verdict, gate, person_id, now, index)
        apply(verdict, view, gate, person_id, None, now)


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
