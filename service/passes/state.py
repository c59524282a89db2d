"""What a pass is now: valid, revoked, expired or not yet valid."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def pass_state(row: Mapping[str, Any], now: datetime) -> str:
    """`row` has the pass's revoked_at, not_before and not_after."""
    if row["revoked_at"] is not None:
        return "revoked"
    if now >= row["not_after"]:
        return "expired"
    if now < row["not_before"]:
        return "not_yet_valid"
    return "valid"
