"""This kiosk's clock against the service's: the skew, measured at hello and heartbeats.

A rotating code (checkin_core.rotating) is good for about 30 s of the service's time, so
a kiosk judging one offline must know how far its own clock is off. The hello carries
the service's time; every heartbeat over the socket carries the kiosk's send time and
the service answers a ``time`` message with both, which gives the skew to within half a
round trip (the midpoint, as NTP does). The last measure is kept on disk, for a kiosk
that starts with the network down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Past this the kiosk says so on screen and in its heartbeats (the console alerts):
# a rotating code's window is 15 s wide on either side.
SKEW_LIMIT = timedelta(seconds=10)


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


class KioskClock:
    def __init__(self, path: Path | None = None, limit: timedelta = SKEW_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.skew: timedelta | None = None  # the service's clock minus this kiosk's
        if path is not None and path.exists():
            try:
                self.skew = timedelta(milliseconds=float(json.loads(path.read_text())["skew_ms"]))
            except (OSError, ValueError, KeyError, TypeError):
                self.skew = None

    @property
    def correction(self) -> timedelta:
        return self.skew or timedelta(0)

    @property
    def too_large(self) -> bool:
        return self.skew is not None and abs(self.skew) > self.limit

    @property
    def warning_s(self) -> float | None:
        """The skew in seconds when it is too large to say nothing, for the screen."""
        return self.skew.total_seconds() if self.skew is not None and self.too_large else None

    @property
    def skew_ms(self) -> int | None:
        return None if self.skew is None else round(self.skew / timedelta(milliseconds=1))

    def observe(self, message: Mapping[str, Any], received: datetime) -> None:
        """A hello or time message: its ``server_time``, and ``sent_at`` if echoed."""
        server = _parse(message.get("server_time"))
        if server is None:
            return
        sent = _parse(message.get("sent_at"))
        local = sent + (received - sent) / 2 if sent is not None and sent <= received else received
        was_large = self.too_large
        self.skew = server - local
        if self.too_large and not was_large:
            logger.warning("clock skew %s ms against the service", self.skew_ms)
        if self.path is not None:
            try:
                self.path.write_text(json.dumps({"skew_ms": self.skew_ms}))
            except OSError:
                pass
