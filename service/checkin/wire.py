"""The kiosk protocol's messages about scans (docs/protocol.md): a scan as a kiosk sends
it, and the decision as the kiosk gets it back, with the reason's words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from checkin_core.reasons import REASONS, headline, message
from service.web.text import Text

MAX_PAYLOAD_CHARS = 65536  # longer is refused as a bad message; shorter is always recorded


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
