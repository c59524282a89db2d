"""What a kiosk must know to decide well offline, and the changes to it since a cursor.

The copy is keyed by pass: every unexpired pass of the site that the door would refuse
for a reason the pass itself does not show (revoked or superseded, its person on the
deny list, its person suspended by the health desk), with that reason. A kiosk never
learns who a person is: the deny list and the suspensions reach it as the ids of the
person's passes (random UUIDs it already reads in the QR code), never names nor person
ids. Plus the site's door rules the kiosk applies offline.

The cursor is the event log itself: ``"<site seq>.<global seq>"``, the heads of the
site's chain and of chain 0 (the deny list of every site) when the answer was read.
Seqs are gap-free and in commit order, so "events after the cursor" misses nothing; the
changes are the current state of the passes and people those events touch (set-based:
one query whatever their number). Read-only, on the pool, never on a chain lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from checkin_core.reasons import SUSPENSION_REASONS
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.sites.door_rules import CheckinRules
from service.web.auth import Principal, Role, principal, requires

# The events that change what a kiosk knows.
KNOWLEDGE_KINDS = (
    "pass_revoked",
    "deny_list_add",
    "deny_list_remove",
    "suspension",
    "suspension_cleared",
    "declaration_reviewed",  # a new pass for a person already refused
    "admin",  # the door rules
)
# Changes are told from events this recent; an older cursor gets the whole copy.
KEEP = timedelta(days=7)
# Passes issued this long before the cursor's event are looked at again: an insert may
# commit after events logged later than it.
ISSUE_MARGIN = timedelta(minutes=5)
CURSOR_RE = re.compile(r"^(\d{1,18})\.(\d{1,18})$")

HEADS_SQL = """
SELECT s.id AS site_id, s.checkin_rules,
       (SELECT last_seq FROM event_chains WHERE chain_id = s.id) AS site_seq,
       (SELECT last_seq FROM event_chains WHERE chain_id = 0) AS global_seq,
       (SELECT recorded_at FROM events WHERE chain_id = s.id AND seq = $2) AS cursor_at
FROM sites s WHERE s.id = $1
"""
GATE_SITE_SQL = "SELECT site_id FROM gates WHERE id = $1"

# $1 site, ($2, $3] of the site's chain, ($4, $5] of chain 0, $6 kinds, $7 whole copy,
# $8 suspension causes gravest first, $9 passes issued since then (a first pass of a
# person already refused logs no event of its own; NULL with the whole copy). A pass
# touched but no longer refused comes back with reason NULL (the kiosk forgets it).
CHANGES_SQL = """
WITH touched AS (
    SELECT e.person_id, e.pass_id FROM events e
    WHERE e.kind = ANY($6::text[])
      AND ((e.chain_id = $1 AND e.seq > $2 AND e.seq <= $3)
           OR (e.chain_id = 0 AND e.seq > $4 AND e.seq <= $5))
), chosen AS (
    SELECT p.id, p.person_id, p.site_id, p.revoked_at, p.revoked_reason, p.not_after,
           (p.revoked_at IS NULL AND p.issued_at > $9::timestamptz) AS issued_recently,
           (p.id IN (SELECT pass_id FROM touched WHERE pass_id IS NOT NULL)
            OR p.person_id IN (SELECT person_id FROM touched WHERE person_id IS NOT NULL))
               AS touched
    FROM passes p
    WHERE p.site_id = $1 AND p.not_after > now() - interval '1 minute'
), judged AS (
    SELECT c.id, c.not_after, c.touched, c.issued_recently,
           CASE
               WHEN c.revoked_at IS NOT NULL THEN
                   CASE WHEN c.revoked_reason = 'superseded' THEN 'pass_superseded'
                        ELSE 'pass_revoked' END
               WHEN EXISTS (SELECT 1 FROM deny_list d
                            WHERE d.person_id = c.person_id AND d.removed_at IS NULL
                              AND (d.site_id IS NULL OR d.site_id = c.site_id))
                   THEN 'deny_listed'
               ELSE (SELECT s.cause FROM suspensions s
                     WHERE s.person_id = c.person_id AND s.site_id = c.site_id
                       AND s.cleared_at IS NULL
                     ORDER BY array_position($8::text[], s.cause) LIMIT 1)
           END AS reason
    FROM chosen c
    WHERE $7 OR c.touched OR c.issued_recently
)
SELECT id, not_after, reason FROM judged WHERE reason IS NOT NULL OR (NOT $7 AND touched)
ORDER BY id
"""


@dataclass(frozen=True)
class Cursor:
    site_seq: int
    global_seq: int

    def __str__(self) -> str:
        return f"{self.site_seq}.{self.global_seq}"

    def covers(self, other: Cursor) -> bool:
        return self.site_seq >= other.site_seq and self.global_seq >= other.global_seq


def parse_cursor(raw: str | None) -> Cursor | None:
    """None for no cursor (the whole copy); 400 with the one error shape when bad."""
    if raw is None or raw == "":
        return None
    match = CURSOR_RE.match(raw)
    if match is None:
        raise ApiError(
            400,
            "bad_cursor",
            "after must be a cursor from an earlier answer: two whole numbers, e.g. 42.7.",
            parameter="after",
            message_vi="after phải là con trỏ từ lần trả lời trước, ví dụ 42.7.",
            message_en="after must be a cursor from an earlier answer, e.g. 42.7.",
        )
    return Cursor(int(match[1]), int(match[2]))


def offline_rules(stored: Any) -> dict[str, Any]:
    """The door rules a kiosk applies on its own."""
    rules = CheckinRules.model_validate(stored or {})
    return {
        "max_offline_age_s": rules.max_offline_age_s,
        "anti_passback": rules.anti_passback,
        "repeat_window_s": rules.shared_pass_window_s,
        "static_pass": rules.static_pass,  # a change reaches the kiosk without a reconnect
    }


async def knowledge_since(
    conn: asyncpg.Connection, site_id: int, after: Cursor | None
) -> dict[str, Any] | None:
    """The answer of ``GET /api/v1/kiosk/sync`` for a kiosk of this site (None: no
    such site): the changes after ``after``, or the whole copy (``snapshot``) when
    there is no cursor, it is older than KEEP, or it is ahead of the log (a restored
    database)."""
    heads = await conn.fetchrow(HEADS_SQL, site_id, after.site_seq if after else 0)
    if heads is None:
        return None
    now = datetime.now(UTC)
    head = Cursor(int(heads["site_seq"]), int(heads["global_seq"]))
    whole = (
        after is None
        or not head.covers(after)
        or (after.site_seq > 0 and (heads["cursor_at"] is None or heads["cursor_at"] < now - KEEP))
    )
    start = Cursor(0, 0) if whole or after is None else after
    rows = await conn.fetch(
        CHANGES_SQL,
        heads["site_id"],
        start.site_seq,
        head.site_seq,
        start.global_seq,
        head.global_seq,
        list(KNOWLEDGE_KINDS),
        whole,
        list(SUSPENSION_REASONS),
        None if whole else (heads["cursor_at"] or now - KEEP) - ISSUE_MARGIN,
    )
    return {
        "type": "knowledge",
        "site_id": heads["site_id"],
        "from": None if whole else str(start),
        "cursor": str(head),
        "snapshot": whole,
        "changes": [_change(r) for r in rows],
        "rules": offline_rules(heads["checkin_rules"]),
        "server_time": now.isoformat(),
    }


def _change(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "pass_id": str(row["id"]),
        "reason": row["reason"],  # None: the door no longer refuses it for its own
        "not_after": row["not_after"].isoformat(),
    }


def gate_of(kiosk: Principal) -> int:
    """The gate a kiosk token is bound to."""
    if kiosk.gate_id is None:  # the schema forbids it; refuse rather than guess
        raise ApiError(403, "forbidden", "This kiosk token is not bound to a gate.")
    return kiosk.gate_id


@requires(Role.KIOSK)
async def get_sync(request: web.Request) -> web.Response:
    after = parse_cursor(request.query.get("after"))
    async with request.app[DB_KEY].connection() as conn:
        site_id = await conn.fetchval(GATE_SITE_SQL, gate_of(principal(request)))
        answer = None if site_id is None else await knowledge_since(conn, site_id, after)
    if answer is None:
        raise ApiError(404, "gate_not_found", "The gate of this token no longer exists.")
    return web.json_response(answer)


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/kiosk/sync", get_sync, name="kiosk_sync")]
