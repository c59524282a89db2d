"""What stands between a login form and the password hash: rate limits, the record of
failed logins, and the alert when they come in a burst.

Limits per client address and per username are checked before anything else, so a
refused attempt costs neither a hash nor a database round trip. A failed login (and a
lockout) is appended to the event log's site-less chain (chain 0) and logged as JSON,
naming the username only when it is an account's (else a short keyed hash of it: a
mistyped password in the username field must not end up in the logs). When failed or
refused attempts pass LOGIN_BURST_ATTEMPTS within LOGIN_BURST_WINDOW_S on an instance,
it records one `login_burst` event, which admins' consoles show as an alert.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from service.events.log import NewEvent, append_events
from service.identity.accounts import LoginOutcome
from service.platform.db import DB_KEY, CleanupContext, Database
from service.platform.ratelimit import RateLimiter, client_address
from service.platform.settings import Settings
from service.web.auth import Role, requires
from service.web.openapi import documented

logger = logging.getLogger(__name__)

LOGIN_BURST_ATTEMPTS = 30  # failed or refused logins on one instance ...
LOGIN_BURST_WINDOW_S = 60.0  # ... within this many seconds make a burst
LOGIN_BURST_QUIET_S = 300.0  # at most one burst event per instance this often
RECENT_CAP = 10_000
ALERT_WINDOW = timedelta(minutes=15)  # bursts this recent are shown to admins
ACTOR = "system:login"

RECENT_BURSTS_SQL = """
SELECT id, occurred_at, detail FROM events
WHERE chain_id = 0 AND kind = 'login_burst' AND occurred_at > now() - $1::interval
ORDER BY seq DESC LIMIT 10
"""


class LoginGuard:
    def __init__(self, settings: Settings, clock: Any = time.monotonic) -> None:
        self.per_address = RateLimiter(per_minute=settings.login_per_minute_per_address)
        self.per_username = RateLimiter(per_minute=settings.login_per_minute_per_username)
        self.trusted_proxies = settings.trusted_proxies
        self._clock = clock
        self._name_key = secrets.token_bytes(32)  # per process: hashes correlate within it
        # (when, address) of bad attempts; capped, so a flood cannot grow it without end.
        self._recent: deque[tuple[float, str]] = deque(maxlen=RECENT_CAP)
        self._last_burst = -LOGIN_BURST_QUIET_S

    def address(self, request: web.Request) -> str:
        return client_address(request, self.trusted_proxies)

    def admit(self, address: str, username: str) -> None:
        """Raise TooManyRequests (429) unless the address and the username may try now."""
        self.per_address.check(f"addr:{address}", code="too_many_logins")
        self.per_username.check(f"user:{username}", code="too_many_logins")

    def name_for_log(self, username: str, known: bool) -> str:
        if known:
            return username
        digest = hmac.new(self._name_key, username.encode("utf-8"), hashlib.sha256)
        return "unknown:" + digest.hexdigest()[:12]

    async def refused(self, db: Database, address: str) -> None:
        """A login refused before its password was checked (a limit, a full hash pool):
        counted towards a burst, which is recorded when this one makes it."""
        burst = self._count(address)
        if burst is not None:
            await _record(db, [("login_burst", burst)])

    async def failed(
        self, db: Database, username: str, address: str, outcome: LoginOutcome
    ) -> None:
        """Record a failed login (and the lockout or burst it made)."""
        who = self.name_for_log(username, outcome.known)
        detail: dict[str, Any] = {
            "username": who,
            "known": outcome.known,
            "address": address,
            "failure": outcome.failure,
        }
        if outcome.failure == "wrong_password":
            detail["failures_in_a_row"] = outcome.failures
        records = [("login_failed", detail)]
        if outcome.locked_now:
            locked = {"username": who, "address": address, "failures_in_a_row": outcome.failures}
            records.append(("login_locked", locked))
        burst = self._count(address)
        if burst is not None:
            records.append(("login_burst", burst))
        await _record(db, records)

    def _count(self, address: str) -> dict[str, Any] | None:
        """Note a bad attempt; the burst's description when this one makes a burst
        (and none was reported lately)."""
        now = self._clock()
        self._recent.append((now, address))
        while self._recent and self._recent[0][0] < now - LOGIN_BURST_WINDOW_S:
            self._recent.popleft()
        if len(self._recent) < LOGIN_BURST_ATTEMPTS:
            return None
        if now - self._last_burst < LOGIN_BURST_QUIET_S:
            return None
        self._last_burst = now
        by_address = Counter(a for _, a in self._recent)
        return {
            "attempts": len(self._recent),
            "window_s": LOGIN_BURST_WINDOW_S,
            "addresses": len(by_address),
            "top_addresses": [{"address": a, "attempts": n} for a, n in by_address.most_common(5)],
        }


async def _record(db: Database, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Into the JSON logs and the event log's site-less chain, in one transaction."""
    now = datetime.now(UTC)
    for kind, detail in records:
        logger.warning(kind.replace("_", " "), extra={"event": kind, **detail})
    events = [NewEvent(kind=k, actor=ACTOR, occurred_at=now, detail=d) for k, d in records]
    async with db.connection() as conn, conn.transaction():
        await append_events(conn, events)


LOGIN_GUARD_KEY = web.AppKey("login_guard", LoginGuard)


def login_guard_context(settings: Settings) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[LOGIN_GUARD_KEY] = LoginGuard(settings)
        yield

    return ctx


@requires(Role.ADMIN)
@documented()
async def security_alerts(request: web.Request) -> web.Response:
    """Login bursts of the last 15 minutes, newest first (the admin console's alerts)."""
    async with request.app[DB_KEY].connection() as conn:
        rows = await conn.fetch(RECENT_BURSTS_SQL, ALERT_WINDOW)
    alerts = [
        {"id": r["id"], "kind": "login_burst", "occurred_at": r["occurred_at"].isoformat()}
        | {"detail": r["detail"]}
        for r in rows
    ]
    return web.json_response({"alerts": alerts}, headers={"Cache-Control": "no-store"})


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/security/alerts", security_alerts, name="security_alerts")]
