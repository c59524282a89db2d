"""The door rules of a site (sites.checkin_rules), configurable by an admin."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SHARED_PASS_WINDOW_MAX_S = 3600  # a batch reads the last use of its passes this far back
MAX_OFFLINE_AGE_MAX_S = 30 * 24 * 3600
MINUTES_MAX = 7 * 24 * 60  # a week: longer than any office stay
HH_MM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"  # 00:00 to 23:59
MIDNIGHT = time(0, 0)


Minutes = Annotated[int, Field(ge=1, le=MINUTES_MAX)]


class AutoCheckout(BaseModel):
    """When a stay nobody scanned out of is closed (an `auto_exit`, an estimated end).
    The earliest rule that applies fires; none set: stays stay open."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Everyone still inside at this local time (the site's zone) is checked out; it is
    # also when anti-passback resets each day.
    at: Annotated[str, Field(pattern=HH_MM_PATTERN)] | None = None
    # A stay older than this is closed.
    after_minutes: Minutes | None = None
    # A visitor is checked out at the expected departure they declared, if any.
    expected_departure: bool = False

    def reset_time(self) -> time:
        """The local time of the daily anti-passback reset (midnight without `at`)."""
        return MIDNIGHT if self.at is None else time.fromisoformat(self.at)


class CheckinRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # strict: a person already inside cannot enter again until they exit;
    # warn: they may, and the event carries a warning for the guard. Either way a stay
    # from before the day's reset (auto_checkout.at, else midnight) never denies entry.
    anti_passback: Literal["strict", "warn"] = "strict"
    # The same pass allowed at another gate, same direction, within this many seconds
    # is denied as a shared pass (a copied QR code).
    shared_pass_window_s: Annotated[int, Field(ge=0, le=SHARED_PASS_WINDOW_MAX_S)] = 120
    # A kiosk clock further off than this is not trusted for the time of a live scan.
    clock_skew_s: Annotated[int, Field(ge=1, le=3600)] = 300
    # Offline replays older than this are recorded at the time received, flagged.
    max_replay_age_h: Annotated[int, Field(ge=1, le=24 * 30)] = 72
    # A guard may let a denied person in once only this soon after the scan (the person
    # is still at the door); the console raises alerts only for denials this recent.
    override_window_s: Annotated[int, Field(ge=30, le=3600)] = 300
    auto_checkout: AutoCheckout = AutoCheckout()
    # Someone inside with no scan (or guard's "seen") for this long is "probably gone"
    # on the roll call, and no longer counted against the capacity shown.
    silent_after_minutes: Minutes = 240
    # Where the trace ends a stay whose end was estimated: at the automatic check-out
    # ("closure": nobody who may have been there is missed) or at the person's last
    # scan at the site ("last_evidence").
    trace_estimated_end: Literal["closure", "last_evidence"] = "closure"
    # A kiosk whose copy of what it must know (revoked and suspended passes, the deny
    # list, these rules) is older than this denies everyone offline, whatever its policy.
    max_offline_age_s: Annotated[int, Field(ge=60, le=MAX_OFFLINE_AGE_MAX_S)] = 24 * 3600
    # A printed or saved pass (not a phone's rotating code): allow it; guard_check:
    # the kiosk says "Check ID" and a guard confirms with one tap in the console;
    # deny: this site takes rotating codes only.
    static_pass: Literal["allow", "guard_check", "deny"] = "guard_check"
