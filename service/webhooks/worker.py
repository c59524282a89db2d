"""Queue and send webhook deliveries, in the background, on one instance at a time.

Queuing reads each site's chain past the last event queued (set-based, by the chain's
key), so nothing the door does waits for it; sending POSTs signed JSON with a short
timeout, and a failure is tried again after a doubling delay, up to MAX_ATTEMPTS.

The signature: `X-Checkin-Signature: t=<unix seconds>,v1=<hex>`, where v1 is the
HMAC-SHA256 of `<t>.<body>` with the site's secret (a receiver checks both, and refuses
an old t).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime

import aiohttp
import asyncpg
from aiohttp import web

from checkin_core.aio import cancel_and_wait, raise_if_cancelled
from service.platform.db import DB_KEY, Database
from service.platform.errors import UNAVAILABLE_ERRORS
from service.platform.settings import SETTINGS_KEY, Settings

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x63677768  # one sender at a time across instances
MAX_ATTEMPTS = 8
SEND_BATCH = 20
QUEUE_BATCH = 500
TIMEOUT_S = 5.0

# The events a webhook hears of, as (type, condition on e).
QUEUE_SQL = """
WITH picked AS (
    SELECT e.* FROM webhooks w
    CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.chain_id = w.site_id AND e.seq > w.queued_seq
                        ORDER BY e.seq LIMIT $1) AS e
), queued AS (
    INSERT INTO webhook_deliveries (site_id, event_row, type, body, next_attempt_at)
    SELECT p.site_id, p.id, t.type,
           jsonb_build_object('type', t.type, 'site_id', p.site_id, 'seq', p.seq,
                              'occurred_at', p.occurred_at, 'person_id', p.person_id,
                              'gate_id', p.gate_id, 'reason', p.reason, 'kind', p.kind,
                              'detail', p.detail - 'payload_head'),
           now()
    FROM picked p
    CROSS JOIN LATERAL (SELECT CASE
        WHEN p.kind = 'scan' AND p.decision = 'deny' THEN 'deny_alert'
        WHEN p.kind = 'auto_exit' THEN 'auto_checkout'
        WHEN p.kind = 'overstay' THEN 'overstay'
        WHEN p.kind = 'suspension' THEN 'suspension' END AS type) AS t
    WHERE t.type IS NOT NULL
    ON CONFLICT ON CONSTRAINT webhook_deliveries_event_key DO NOTHING
)
UPDATE webhooks w SET queued_seq = m.seq
FROM (SELECT site_id, max(seq) AS seq FROM picked GROUP BY site_id) AS m
WHERE w.site_id = m.site_id
"""
DUE_SQL = """
SELECT d.id, d.body::text AS body, w.url, w.secret, d.attempts
FROM webhook_deliveries d JOIN webhooks w ON w.site_id = d.site_id
WHERE d.next_attempt_at <= now() ORDER BY d.next_attempt_at LIMIT $1
"""
# Delivered: done. Failed: again after base * 2^attempts seconds, or given up.
RESULT_SQL = """
UPDATE webhook_deliveries SET
    attempts = attempts + 1, last_status = $2, last_error = $3,
    delivered_at = CASE WHEN $4 THEN now() END,
    next_attempt_at = CASE WHEN $4 OR attempts + 1 >= $6 THEN NULL
                           ELSE now() + make_interval(secs => $5 * 2 ^ attempts) END
WHERE id = $1
"""

PURGE_SQL = "DELETE FROM webhook_deliveries WHERE created_at < $1"


async def purge_deliveries(conn: asyncpg.Connection, older_than: datetime) -> int:
    """The retention purge's part: deliveries name people, so they go with the rest."""
    return int((await conn.execute(PURGE_SQL, older_than)).split()[-1])


def signature(secret: str, body: bytes, at: int) -> str:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


async def _post(
    session: aiohttp.ClientSession, url: str, secret: str, delivery: int, body: bytes
) -> tuple[int | None, str | None]:
    headers = {
        "Content-Type": "application/json",
        "X-Checkin-Delivery": str(delivery),
        "X-Checkin-Signature": signature(secret, body, int(time.time())),
    }
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
            return resp.status, None if resp.status < 300 else f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError) as e:
        return None, f"{type(e).__name__}: {e}"[:500]


async def send_due(conn: asyncpg.Connection, session: aiohttp.ClientSession, base_s: float) -> int:
    rows = await conn.fetch(DUE_SQL, SEND_BATCH)
    results = await asyncio.gather(
        *(_post(session, r["url"], r["secret"], r["id"], r["body"].encode()) for r in rows)
    )
    for row, (status, error) in zip(rows, results, strict=True):
        ok = status is not None and 200 <= status < 300
        await conn.execute(RESULT_SQL, row["id"], status, error, ok, base_s, MAX_ATTEMPTS)
    return len(rows)


async def round_once(db: Database, session: aiohttp.ClientSession, settings: Settings) -> None:
    async with db.connection() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
            return
        try:
            await conn.execute(QUEUE_SQL, QUEUE_BATCH)
            await send_due(conn, session, settings.webhook_retry_base_s)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def webhook_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))

    async def loop() -> None:
        while True:
            try:
                await round_once(app[DB_KEY], session, settings)
            except UNAVAILABLE_ERRORS as e:  # the database is out of reach: not a bug
                raise_if_cancelled()
                logger.warning("webhook round could not reach the database: %s", e)
            except Exception:  # the next round tries again
                raise_if_cancelled()
                logger.exception("webhook round failed")
            await asyncio.sleep(settings.webhook_interval_s)

    task = asyncio.create_task(loop())
    yield
    await cancel_and_wait([task])
    await session.close()
