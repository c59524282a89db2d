"""Turn a stream of per-frame sightings into scans. Pure: time is passed in.

A code held in front of the camera is decoded in many frames, with misses in between
(motion blur, glare): that is one scan. It becomes a new scan only after it has left
the view (not seen for ``gap`` seconds) *and* ``cooldown`` seconds have passed since
its last scan. A code that never leaves the view is one scan however long it stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_COOLDOWN_S = 3.0
DEFAULT_GAP_S = 1.0


@dataclass
class _Seen:
    last_seen: float
    last_scan: float
    rearmed: bool  # the code left the view since its last scan


class Debouncer:
    def __init__(self, cooldown: float = DEFAULT_COOLDOWN_S, gap: float = DEFAULT_GAP_S) -> None:
        if cooldown < 0 or gap <= 0:
            raise ValueError("cooldown must be >= 0 and gap > 0")
        self.cooldown = cooldown
        self.gap = min(gap, cooldown) if cooldown > 0 else gap
        self._codes: dict[str, _Seen] = {}

    def feed(self, texts: Iterable[str], now: float) -> list[str]:
        """The codes of one frame seen at ``now`` (monotonic seconds) -> the new scans."""
        scans: list[str] = []
        for text in dict.fromkeys(texts):
            seen = self._codes.get(text)
            if seen is None:
                self._codes[text] = _Seen(last_seen=now, last_scan=now, rearmed=False)
                scans.append(text)
                continue
            if now - seen.last_seen > self.gap:
                seen.rearmed = True
            seen.last_seen = now
            if seen.rearmed and now - seen.last_scan >= self.cooldown:
                seen.last_scan = now
                seen.rearmed = False
                scans.append(text)
        self._forget(now)
        return scans

    def _forget(self, now: float) -> None:
        # A code gone for longer than both windows behaves like one never seen.
        horizon = max(self.cooldown, self.gap)
        stale = [
            t
            for t, s in self._codes.items()
            if now - s.last_seen > horizon and now - s.last_scan > horizon
        ]
        for text in stale:
            del self._codes[text]

    def __len__(self) -> int:
        return len(self._codes)
