"""Per-key rate limits (client address, username, token): token buckets kept in memory.

Each instance limits on its own; with N replicas a client gets at most N times the rate,
which is still a bound, and needs no shared state on the door's database. Memory is
bounded: past `max_keys` the least recently seen key is forgotten.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from service.platform.errors import ApiError


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """At most `per_minute` takes a minute per key, in bursts of up to `per_minute`."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: float | None = None,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate_per_s = per_minute / 60.0
        self.burst = float(burst if burst is not None else per_minute)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost` for `key`: 0.0 if allowed, else the seconds until it would be."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
            bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate_per_s

    def check(self, key: str, *, code: str = "too_many_requests", cost: float = 1.0) -> None:
        """Raise `TooManyRequests` unless `key` may go on now."""
        wait = self.take(key, cost)
        if wait > 0:
            raise TooManyRequests(wait, code=code)


class TooManyRequests(ApiError):
    """429 with Retry-After (whole seconds, at least 1), in the one error shape."""

    def __init__(self, retry_after_s: float, *, code: str = "too_many_requests") -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(
            429,
            code,
            "Too many requests; try again later.",
            message_vi="Quá nhiều yêu cầu, vui lòng thử lại sau.",
            retry_after_s=seconds,
        )
        self.headers = {"Retry-After": str(seconds)}


def client_address(request: web.Request, trusted_proxies: frozenset[str] = frozenset()) -> str:
    """The caller's address: the peer, or, behind a proxy we trust, the address it saw.

    X-Forwarded-For is read right to left and only past proxies we trust, so a client
    cannot pick its own address by sending the header.
    """
    peer = request.remote or "unknown"
    if peer not in trusted_proxies:
        return peer
    forwarded = request.headers.get("X-Forwarded-For", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if hop not in trusted_proxies:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer
