"""The door decision for one scan, given what is known of the pass, the person and the
site. Pure: the caller loads the state, and applies what this returns.

Rules run in a fixed order and the first that fails decides. Exits are judged leniently
on purpose: a person leaving is never trapped inside because their pass expired or was
revoked; only a pass we cannot attribute to anybody is refused at an exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from checkin_core.passes import PassClaims
from checkin_core.rotating import RotatingClaims
from service.sites.door_rules import CheckinRules

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class GateInfo:
    id: int
    site_id: int
    direction: str  # entrance | exit | both
    opening_hours: list[dict[str, Any]]
    timezone: str
    capacity: int | None
    rules: CheckinRules


@dataclass(frozen=True)
class PassState:
    """What the database says of an authenticated pass and its holder."""

    pass_id: UUID
    person_id: int
    full_name: str
    revoked_reason: str | None
    declaration_status: str | None  # of the person's current declaration at the site
    declaration_valid_until: datetime | None
    declaration_is_the_pass_one: bool
    deny_listed: bool
    suspension: str | None = None  # the gravest active health suspension's reason code


@dataclass(frozen=True)
class RecentUse:
    gate_id: int
    direction: str
    occurred_at: datetime


@dataclass
class SiteView:
    """What a batch knows of one site while deciding, kept current scan by scan."""

    inside: set[int] = field(default_factory=set)  # person ids with an open stay
    # People likely inside, against the capacity (counted only when the site has one):
    # open stays less silent than the site's silent_after_minutes (the roll call's).
    count: int = 0
    last_allowed: dict[UUID, RecentUse] = field(default_factory=dict)
    # Open stays the site's rules have ended (not swept yet): entry time and closure.
    stale: dict[int, tuple[datetime, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    decision: Literal["allow", "deny"]
    reason: str
    direction: Direction
    warnings: tuple[str, ...] = ()

    @property
    def opens_stay(self) -> bool:
        return self.decision == "allow" and self.direction == "in" and not self.warnings

    @property
    def closes_stay(self) -> bool:
        return self.decision == "allow" and self.direction == "out"


def resolve_direction(
    gate: GateInfo, asked: Direction | None, inside: bool
) -> Direction | Literal["wrong"]:
    natural: Direction | None = {"entrance": "in", "exit": "out"}.get(gate.direction)  # type: ignore[assignment]
    if natural is None:  # a gate used both ways
        return asked or ("out" if inside else "in")
    if asked is not None and asked != natural:
        return "wrong"
    return natural


def gate_is_open(gate: GateInfo, at: datetime) -> bool:
    if not gate.opening_hours:
        return True
    local = at.astimezone(ZoneInfo(gate.timezone))
    now_t = local.time().replace(tzinfo=None)
    for window in gate.opening_hours:
        if local.isoweekday() in window["days"]:
            if time.fromisoformat(window["opens"]) <= now_t < time.fromisoformat(window["closes"]):
                return True
    return False


def decide(
    *,
    gate: GateInfo,
    direction: Direction,
    pass_error: str | None,
    claims: PassClaims | None,
    state: PassState | None,
    view: SiteView,
    at: datetime,
) -> Verdict:
    """The verdict for one scan. `pass_error` is the pass check's reason code, if any;
    `claims` are set when the signature is genuine (even if expired)."""
    if direction == "out":
        return _exit_verdict(pass_error, claims, state, view)
    if pass_error is not None:
        return Verdict("deny", pass_error, direction)
    if claims is None or state is None:
        return Verdict("deny", "pass_unknown", direction)
    refusal = (
        _holder_refusal(state)
        or _declaration_refusal(state, at)
        or _gate_refusal(gate, claims, state, view, at)
    )
    if refusal is not None:
        return Verdict("deny", refusal, direction)
    return _entry_verdict(gate, state, view)


def _exit_verdict(
    pass_error: str | None, claims: PassClaims | None, state: PassState | None, view: SiteView
) -> Verdict:
    if claims is None:  # nobody to attribute the exit to
        return Verdict("deny", pass_error or "malformed", "out")
    if pass_error == "wrong_site":
        return Verdict("deny", "wrong_site", "out")
    if state is None:
        return Verdict("deny", "pass_unknown", "out")
    warnings = () if state.person_id in view.inside else ("not_inside",)
    return Verdict("allow", "goodbye", "out", warnings)


def _holder_refusal(state: PassState) -> str | None:
    """The pass and its holder: revoked, deny-listed, suspended by the health desk."""
    if state.revoked_reason is not None:
        return "pass_superseded" if state.revoked_reason == "superseded" else "pass_revoked"
    if state.deny_listed:
        return "deny_listed"
    return state.suspension


def _declaration_refusal(state: PassState, at: datetime) -> str | None:
    """The holder's current declaration at the site, and whether this pass is its pass."""
    if state.declaration_status is None:
        return "declaration_missing"
    if not state.declaration_is_the_pass_one:
        return "pass_superseded"
    if state.declaration_status in ("review", "rejected"):
        return f"declaration_{state.declaration_status}"
    if state.declaration_valid_until is None or at >= state.declaration_valid_until:
        return "declaration_expired"
    return None


def _gate_refusal(
    gate: GateInfo, claims: PassClaims, state: PassState, view: SiteView, at: datetime
) -> str | None:
    """The gate's hours, its rule on printed passes, and one pass used at two gates."""
    if not gate_is_open(gate, at):
        return "gate_closed"
    if not isinstance(claims, RotatingClaims) and gate.rules.static_pass != "allow":
        return "guard_check" if gate.rules.static_pass == "guard_check" else "static_pass_refused"
    recent = view.last_allowed.get(state.pass_id)
    window = timedelta(seconds=gate.rules.shared_pass_window_s)
    if (
        recent is not None
        and recent.gate_id != gate.id
        and recent.direction == "in"
        and abs(at - recent.occurred_at) <= window
    ):
        return "shared_pass"
    return None


def _entry_verdict(gate: GateInfo, state: PassState, view: SiteView) -> Verdict:
    """Presence: anti-passback, then the site's capacity."""
    if state.person_id in view.inside:
        if gate.rules.anti_passback == "strict":
            return Verdict("deny", "already_inside", "in")
        return Verdict("allow", "welcome", "in", ("already_inside",))
    if gate.capacity is not None and view.count >= gate.capacity:
        return Verdict("deny", "site_full", "in")
    return Verdict("allow", "welcome", "in")


def apply(
    verdict: Verdict,
    view: SiteView,
    gate: GateInfo,
    person_id: int | None,
    pass_id: UUID | None,
    at: datetime,
) -> None:
    """Update the batch's view of the site after a verdict, as the database will be."""
    if verdict.decision != "allow" or person_id is None:
        return
    if verdict.opens_stay:
        view.inside.add(person_id)
        view.count += 1
    elif verdict.closes_stay and person_id in view.inside:
        view.inside.discard(person_id)
        view.count -= 1
    if pass_id is not None:
        view.last_allowed[pass_id] = RecentUse(gate.id, verdict.direction, at)
