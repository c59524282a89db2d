"""What one kiosk token may use: HTTP scans at a rate, and a few sockets at once.

A kiosk scans over its socket, one scan in flight; HTTP is its road for the replay of an
outage's backlog (batches of up to 500, one request at a time). A stolen or broken token
must not flood the batcher over HTTP, nor hold thousands of sockets.

- HTTP scans cost one token of a bucket per scan (a batch costs its size), refilled at
  `kiosk_http_scans_per_second`; the bucket holds `REPLAY_BURST_S` seconds of that rate
  (and never less than one full batch), so the replay of an outage of an hour or more
  at a busy door goes through at once. A larger backlog gets 429 with Retry-After, and
  the kiosk waits that long and sends the rest: it loses nothing.
- Sockets beyond `kiosk_sockets_per_token` close the token's OLDEST socket (1008): a
  kiosk that reconnects after a network drop often still has its old socket open here
  (until pings time out), and must not be locked out of its door by its own ghost.
  See docs/protocol.md for why this beats refusing the newest.

Both are per instance: with N replicas a token gets at most N times as much.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from service.platform.errors import ApiError
from service.platform.ratelimit import RateLimiter
from service.platform.settings import Settings
from service.web.auth import Principal, principal
from service.web.validation import read_json, validate

logger = logging.getLogger(__name__)

REPLAY_BURST_S = 300  # the bucket holds 5 minutes of the rate
MAX_BATCH = 500
POLICY_VIOLATION = 1008  # WebSocket close code
REPLACED_MESSAGE = b"replaced: a newer socket of this kiosk token opened"
CLOSE_TIMEOUT_S = 1.0  # a socket that does not answer the close is cut

Model = TypeVar("Model", bound=BaseModel)


class KioskLimits:
    def __init__(self, settings: Settings) -> None:
        rate = settings.kiosk_http_scans_per_second
        self.scans = RateLimiter(
            per_minute=rate * 60, burst=max(MAX_BATCH, rate * REPLAY_BURST_S), max_keys=100_000
        )
        self.sockets_per_token = settings.kiosk_sockets_per_token
        self._sockets: dict[int, list[web.WebSocketResponse]] = {}

    def charge(self, kiosk: Principal, scans: int) -> None:
        """Raise TooManyRequests (429, Retry-After) if the token may not send `scans` now."""
        self.scans.check(str(kiosk.token_id), code="scan_rate_limited", cost=scans)

    @contextlib.asynccontextmanager
    async def socket(self, kiosk: Principal, ws: web.WebSocketResponse) -> AsyncIterator[None]:
        """Count `ws` as one of the token's sockets while it lives; close the oldest ones
        beyond the limit."""
        open_ = self._sockets.setdefault(kiosk.token_id, [])
        open_.append(ws)
        evicted, open_[:] = open_[: -self.sockets_per_token], open_[-self.sockets_per_token :]
        for old in evicted:
            logger.warning(
                "kiosk token over its socket limit: closing its oldest socket",
                extra={"token_id": kiosk.token_id, "limit": self.sockets_per_token},
            )
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await old.close(code=POLICY_VIOLATION, message=REPLACED_MESSAGE)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):  # gone already if it was evicted
                open_.remove(ws)
            if not open_ and self._sockets.get(kiosk.token_id) is open_:
                del self._sockets[kiosk.token_id]

    def sockets(self, token_id: int) -> int:
        return len(self._sockets.get(token_id, ()))


def _one(_: BaseModel) -> int:
    return 1


async def read_scans(
    request: web.Request, model: type[Model], scans: Callable[[Model], int] = _one
) -> Model:
    """The body of a scan request, charged to the kiosk's token by its number of scans.
    A body that is refused costs one: refusals are no free flood."""
    limits = request.app[KIOSK_LIMITS_KEY]
    kiosk = principal(request)
    try:
        body = validate(model, await read_json(request))
    except ApiError:
        limits.charge(kiosk, 1)
        raise
    limits.charge(kiosk, scans(body))
    return body


KIOSK_LIMITS_KEY = web.AppKey("kiosk_limits", KioskLimits)
