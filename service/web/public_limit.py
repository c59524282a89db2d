"""The limits of the public pages and endpoints (declarations, the form, pass pictures
and pages), which anyone may call without a token: per client address (429), and for
everyone together on this instance (503), so that a flood from many addresses takes a
bounded share of the event loop the door's decisions run on."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from service.platform.errors import ApiError
from service.platform.ratelimit import RateLimiter, client_address
from service.platform.settings import SETTINGS_KEY, Settings

EVERYONE = "*"


@dataclass(frozen=True)
class PublicLimits:
    per_address: RateLimiter
    everyone: RateLimiter


PUBLIC_LIMITER_KEY = web.AppKey("public_limiter", PublicLimits)


def public_limiter(settings: Settings) -> PublicLimits:
    per_second = settings.public_per_second
    return PublicLimits(
        per_address=RateLimiter(per_minute=settings.public_per_minute_per_address),
        # A second's worth of burst: the budget is a rate, not a reserve to flood with.
        everyone=RateLimiter(per_minute=per_second * 60, burst=per_second, max_keys=1),
    )


class PublicBusy(ApiError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            503,
            "public_busy",
            "The service is busy; try again in a moment.",
            message_vi="Hệ thống đang bận, vui lòng thử lại sau giây lát.",
            retry_after_s=retry_after_s,
        )
        self.headers = {"Retry-After": str(retry_after_s)}


def limit_public(request: web.Request) -> None:
    """Raise 429 (with Retry-After) when this client has used up its public requests,
    or 503 when everyone together has used up this instance's."""
    settings = request.app[SETTINGS_KEY]
    limits = request.app[PUBLIC_LIMITER_KEY]
    limits.per_address.check(client_address(request, settings.trusted_proxies))
    if limits.everyone.take(EVERYONE) > 0:
        raise PublicBusy(1)
