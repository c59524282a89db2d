"""The door rules of a site (sites.checkin_rules), configurable by an admin."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SHARED_PASS_WINDOW_MAX_S = 3600  # a batch reads the last use of its passes this far back


class CheckinRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # strict: a person already inside cannot enter again until they exit;
    # warn: they may, and the event carries a warning for the guard.
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
    # A printed or saved pass (not a phone's rotating code): allow it; guard_check:
    # the kiosk says "Check ID" and a guard confirms with one tap in the console;
    # deny: this site takes rotating codes only.
    static_pass: Literal["allow", "guard_check", "deny"] = "guard_check"
