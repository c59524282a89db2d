"""What the kiosk shows for a scan: the service's decision, or its own judgement.

Pure. The kiosk judges on its own in two cases: a payload that cannot be a genuine pass
(malformed, or signed by a known key with a bad signature) is denied at once, whatever
the service says later; and while the service cannot be reached, the gate's offline
policy decides: ``deny`` (fail secure) or ``verify-offline`` (a pass with a valid
signature, in its validity window, for this site).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from checkin_core.keys import TrustList
from checkin_core.passes import PassError, PassErrorReason
from checkin_core.reasons import REASONS, headline, message
from checkin_core.rotating import authenticate_any, check_presented, is_rotating

if TYPE_CHECKING:
    from scanner.knowledge import Knowledge

OfflinePolicy = Literal["deny", "verify-offline"]
OFFLINE_POLICIES: tuple[OfflinePolicy, ...] = ("deny", "verify-offline")
Source = Literal["service", "local", "offline"]

# Failures no service answer can overturn: the kiosk denies them without waiting.
_CERTAIN = {PassErrorReason.MALFORMED, PassErrorReason.BAD_SIGNATURE}


@dataclass(frozen=True)
class GateInfo:
    """The gate and site this kiosk's token is bound to, from the hello message."""

    gate_id: int
    gate_name: str
    direction: str
    offline_policy: OfflinePolicy
    site_id: int
    site_name: str
    # The site's rule for printed passes (door_rules); a service too old to say: as before.
    static_pass: str = "allow"

    @classmethod
    def from_hello(cls, msg: Mapping[str, Any]) -> GateInfo:
        """Raise ValueError on a hello that does not have the documented shape."""
        try:
            gate, site = msg["gate"], msg["site"]
            info = cls(
                gate_id=int(gate["id"]),
                gate_name=str(gate["name"]),
                direction=str(gate["direction"]),
                offline_policy=gate["offline_policy"],
                site_id=int(site["id"]),
                site_name=str(site.get("name", "")),
                static_pass=str(site.get("static_pass", "allow")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"bad hello message: {e!r}") from e
        if info.offline_policy not in OFFLINE_POLICIES:
            raise ValueError(f"unknown offline policy {info.offline_policy!r}")
        return info

    @property
    def way(self) -> str | None:
        """The way people go through this gate: "in", "out", or None for both ways."""
        return {"entrance": "in", "exit": "out"}.get(self.direction)

    def to_hello(self) -> dict[str, Any]:
        return {
            "gate": {
                "id": self.gate_id,
                "name": self.gate_name,
                "direction": self.direction,
                "offline_policy": self.offline_policy,
            },
            "site": {"id": self.site_id, "name": self.site_name, "static_pass": self.static_pass},
        }


@dataclass(frozen=True)
class Verdict:
    decision: Literal["allow", "deny"]
    reason: str
    message_vi: str
    message_en: str
    name: str | None = None
    source: Source = "service"
    duplicate: bool = False
    direction: str | None = None  # "in", "out", or None when the kiosk cannot tell
    headline_vi: str = ""  # the service's words; else checkin_core.reasons' for the verdict
    headline_en: str = ""

    @property
    def offline(self) -> bool:
        return self.source == "offline"

    @property
    def headline(self) -> str:
        """The screen's headline: MỜI VÀO / WELCOME in, TẠM BIỆT / GOODBYE out, ..."""
        vi, en = headline(self.decision, self.direction)
        return f"{self.headline_vi or vi} / {self.headline_en or en}"

    @classmethod
    def of_reason(cls, reason: str, source: Source, direction: str | None = None) -> Verdict:
        decision = REASONS[reason][0] if reason in REASONS else "deny"
        vi, en = message(reason, direction) if reason in REASONS else ("Từ chối", "Denied")
        return cls(
            decision=decision,
            reason=reason,
            message_vi=vi,
            message_en=en,
            source=source,
            direction=direction,
        )

    @classmethod
    def from_decision(cls, msg: Mapping[str, Any]) -> Verdict:
        """The service's decision message; anything but an explicit allow is a deny."""
        reason = str(msg.get("reason") or "")
        direction = msg.get("direction") if msg.get("direction") in ("in", "out") else None
        vi, en = message(reason, direction) if reason in REASONS else ("", "")
        name = msg.get("name")
        return cls(
            decision="allow" if msg.get("decision") == "allow" else "deny",
            reason=reason,
            message_vi=str(msg.get("message_vi") or vi),
            message_en=str(msg.get("message_en") or en),
            name=name if isinstance(name, str) else None,
            source="service",
            duplicate=bool(msg.get("duplicate", False)),
            direction=direction,
            headline_vi=str(msg.get("headline_vi") or ""),
            headline_en=str(msg.get("headline_en") or ""),
        )


def certain_rejection(payload: str, trust: TrustList) -> str | None:
    """The reason code when the payload can never be a genuine pass, else None.

    An unknown key is not certain: the service may have rotated keys since the trust
    list was fetched, so the kiosk waits for the service (or the offline policy).
    """
    try:
        authenticate_any(payload, trust)
    except PassError as e:
        if e.reason in _CERTAIN:
            return str(e.reason)
    return None


def judge_offline(
    payload: str,
    *,
    policy: OfflinePolicy,
    trust: TrustList,
    site_id: int | None,
    now: datetime,
    direction: str | None = None,
    knowledge: Knowledge | None = None,
    skew: timedelta = timedelta(0),
    printed: str = "allow",
) -> Verdict:
    """The kiosk's verdict while the service cannot be reached; ``direction`` is the
    gate's way (``GateInfo.way``), for the words; ``skew`` the service's clock minus
    this kiosk's (a rotating code's time step is judged on the service's time);
    ``printed`` the site's rule for a static pass (``GateInfo.static_pass``). With
    ``knowledge`` (the kiosk's copy, scanner.knowledge) a valid pass is also checked
    against what the kiosk knows: revoked, suspended, deny-listed, just used here, or
    the copy too old."""
    if policy != "verify-offline" or site_id is None or len(trust) == 0:
        return Verdict.of_reason("offline_denied", "offline", direction)
    try:
        claims = check_presented(
            authenticate_any(payload, trust), now=now, site_id=site_id, skew=skew
        )
    except PassError as e:
        return Verdict.of_reason(str(e.reason), "offline", direction)
    if knowledge is not None:
        refused = knowledge.refusal(str(claims.pass_id), now=now, direction=direction)
        if refused is not None:
            return Verdict.of_reason(refused, "offline", direction)
    if not is_rotating(payload) and printed != "allow":
        reason = "guard_check" if printed == "guard_check" else "static_pass_refused"
        return Verdict.of_reason(reason, "offline", direction)
    return Verdict.of_reason("offline_allowed", "offline", direction)
