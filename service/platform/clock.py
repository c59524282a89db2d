"""The service's "now": one seam, wired by the app factory from the settings, so tests
run the real app on a clock they move (the door's kiosks keep to real time)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


CLOCK_KEY: web.AppKey[Clock] = web.AppKey("clock")
