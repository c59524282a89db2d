"""The rate limiter's buckets, the 429 shape, and whose address a request has."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from service.platform.errors import error_middleware
from service.platform.ratelimit import RateLimiter, TooManyRequests, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_until_tokens_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=6, clock=clock)
    assert [limiter.take("a") for _ in range(6)] == [0.0] * 6
    assert limiter.take("a") == 10.0  # one token every 10 s
    assert limiter.take("b") == 0.0  # other keys are not affected
    clock.now = 10.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_a_refused_take_costs_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    assert limiter.take("a") == 0.0
    for _ in range(100):
        assert limiter.take("a") > 0
    clock.now = 1.0
    assert limiter.take("a") == 0.0


def test_memory_is_bounded_by_forgetting_the_least_recent_key() -> None:
    limiter = RateLimiter(per_minute=1, max_keys=3, clock=Clock())
    for key in "abcd":
        limiter.take(key)
    assert limiter.take("a") == 0.0  # forgotten, so full again
    assert limiter.take("d") > 0


async def test_a_refusal_is_429_with_retry_after_in_the_error_shape() -> None:
    async def handler(request: web.Request) -> web.Response:
        raise TooManyRequests(2.2, code="login_rate_limited")

    response = await error_middleware(make_mocked_request("POST", "/x"), handler)
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    assert isinstance(response, web.Response) and response.text is not None
    assert '"code": "login_rate_limited"' in response.text
    assert "message_vi" in response.text


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    spoofed = {"X-Forwarded-For": "6.6.6.6"}
    direct = make_mocked_request("GET", "/", headers=spoofed).clone(remote="198.51.100.7")
    assert client_address(direct, frozenset({"10.0.0.1"})) == "198.51.100.7"

    def via_proxy(forwarded: str) -> web.Request:
        request = make_mocked_request("GET", "/", headers={"X-Forwarded-For": forwarded})
        return request.clone(remote="10.0.0.1")

    trusted = frozenset({"10.0.0.1", "10.0.0.2"})
    # The client may prepend anything; the hop the trusted proxy added is the last.
    assert client_address(via_proxy("6.6.6.6, 203.0.113.9"), trusted) == "203.0.113.9"
    assert client_address(via_proxy("203.0.113.9, 10.0.0.2"), trusted) == "203.0.113.9"
    assert client_address(via_proxy("not-an-ip"), trusted) == "10.0.0.1"
