"""The per-client limit of the public pages and endpoints (declarations, the form, pass
pictures and pages): one limiter owned by the app, keyed by the client's address."""

from __future__ import annotations

from aiohttp import web

from service.platform.ratelimit import RateLimiter, client_address
from service.platform.settings import SETTINGS_KEY, Settings

PUBLIC_LIMITER_KEY = web.AppKey("public_limiter", RateLimiter)


def public_limiter(settings: Settings) -> RateLimiter:
    return RateLimiter(per_minute=settings.public_per_minute_per_address)


def limit_public(request: web.Request) -> None:
    """Raise 429 (with Retry-After) when this client has used up its public requests."""
    settings = request.app[SETTINGS_KEY]
    request.app[PUBLIC_LIMITER_KEY].check(client_address(request, settings.trusted_proxies))
