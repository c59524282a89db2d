"""The auditor's event-log exports (`GET /api/v1/audit/events`), and the routes of the
audit package (chain verification, movements and the site report are modules of their
own).

Exports are records too: each one appends an `export` event (who, which filters, which
format) before the first byte goes out. CSV and JSON Lines stream from a server-side
cursor inside one read-only snapshot, so memory stays flat however long the log is;
JSON is paged by event id.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from service.audit.chain import verify
from service.audit.documents import CONTENT_TYPES, attachment, json_value, record_export
from service.audit.movements import movements
from service.audit.site_report import site_report
from service.events.log import KINDS
from service.people.scope import visible_to_sql
from service.platform.db import DB_KEY
from service.platform.door_activity import DOOR_ACTIVITY_KEY, Write, paced
from service.platform.settings import SETTINGS_KEY
from service.web.auth import Role, principal, requires
from service.web.openapi import Q_BOOL, documented, q_choice, q_id, q_int, q_text, q_time
from service.web.params import (
    bad_parameter,
    bool_param,
    choice_param,
    format_param,
    int_param,
    raw_param,
    scoped_site,
    time_range,
)

logger = logging.getLogger(__name__)

FORMATS = ("json", "csv", "jsonl")
DEFAULT_PAGE = 500
MAX_PAGE = 5000
CHUNK_ROWS = 500  # rows per write (and per cursor fetch) when streaming
MAX_REASON_FILTER = 100
# A spreadsheet runs a cell that starts with one of these as a formula.

EXPORT_COLUMNS = (
    "id",
    "site_id",
    "seq",
    "kind",
    "occurred_at",
    "occurred_at_local",
    "timezone",
    "recorded_at",
    "gate_id",
    "gate_name",
    "person_id",
    "full_name",
    "event_id",
    "pass_id",
    "direction",
    "decision",
    "reason",
    "actor",
    "detail",
)
HASH_COLUMNS = ("digest", "prev_hash", "hash")


# A cell a spreadsheet would run as a formula gets a leading quote (SQL for COPY).
def _defused(column: str, name: str) -> str:
    return rf"CASE WHEN {column} ~ '^[=+\-@\t\r]' THEN '''' || {column} ELSE {column} END AS {name}"


# The site's wall-clock time of an event, as the console shows it, with the zone in a
# column of its own (spreadsheets read this form as a date and time).
_LOCAL_TIME_EXPR = "to_char(e.occurred_at AT TIME ZONE s.timezone, 'YYYY-MM-DD HH24:MI:SS')"
_LOCAL_TIME = _LOCAL_TIME_EXPR + " AS occurred_at_local"

# The filters, $1..$10, shared by every export of the log. An export's own records
# (kind export) are left out unless asked for ($9, or kind=export). $10 is the caller's
# site (NULL: every site): a caller limited to a site reads only people known there, so
# their name is left out of events that name someone else (its kiosk shown another
# site's pass), and a person filter on anyone else finds nothing, as for an unknown id.
_FILTERED_EVENTS = (
    """
FROM events e LEFT JOIN people p ON p.id = e.person_id AND """
    + visible_to_sql("e.person_id", "$10")
    + """
LEFT JOIN sites s ON s.id = e.site_id LEFT JOIN gates g ON g.id = e.gate_id
WHERE ($1::bigint IS NULL OR e.site_id = $1)
  AND ($2::bigint IS NULL OR e.gate_id = $2)
  AND ($3::bigint IS NULL OR (e.person_id = $3 AND """
    + visible_to_sql("$3", "$10")
    + """))
  AND ($4::text IS NULL OR e.decision = $4)
  AND ($5::text IS NULL OR e.reason = $5)
  AND ($6::text IS NULL OR e.kind = $6)
  AND ($7::timestamptz IS NULL OR e.occurred_at >= $7)
  AND ($8::timestamptz IS NULL OR e.occurred_at < $8)
  AND ($9::boolean OR e.kind <> 'export' OR e.kind = $6)
"""
)

# $11: rows after this id; $12: up to this id (NULL: no bound); $13: LIMIT (NULL: all).
EXPORT_SQL = f"""
SELECT e.id, e.site_id, e.seq, e.kind, e.occurred_at, {_LOCAL_TIME}, s.timezone,
       e.recorded_at, e.gate_id, g.name AS gate_name, e.person_id, p.full_name, e.event_id,
       e.pass_id, e.direction, e.decision, e.reason, e.actor, e.detail,
       e.digest, e.prev_hash, e.hash{_FILTERED_EVENTS}  AND e.id > $11
  AND ($12::bigint IS NULL OR e.id <= $12)
ORDER BY e.id
LIMIT $13
"""

# CSV made by PostgreSQL itself (COPY ... TO STDOUT): as fast as the database can read,
# nothing held in the service. Same cells as the Python writer: ISO times in UTC (and
# the site's local time), hex hashes, formulas defused.
_CSV_COLUMNS = f"""
SELECT e.id, e.site_id, e.seq, e.kind,
       to_json(e.occurred_at) #>> '{{}}' AS occurred_at, {_LOCAL_TIME}, s.timezone,
       to_json(e.recorded_at) #>> '{{}}' AS recorded_at,
       e.gate_id, {_defused("g.name", "gate_name")}, e.person_id,
       {_defused("p.full_name", "full_name")},
       e.event_id, e.pass_id, e.direction, e.decision,
       {_defused("e.reason", "reason")},
       {_defused("e.actor", "actor")},
       e.detail::text AS detail"""
_CSV_HASHES = """,
       encode(e.digest, 'hex') AS digest, encode(e.prev_hash, 'hex') AS prev_hash,
       encode(e.hash, 'hex') AS hash"""
_CSV_ROWS = _FILTERED_EVENTS + "ORDER BY e.id\n"
EXPORT_CSV_SQL = _CSV_COLUMNS + _CSV_ROWS
EXPORT_CSV_HASHES_SQL = _CSV_COLUMNS + _CSV_HASHES + _CSV_ROWS

# JSON Lines made by PostgreSQL too: encoding rows in Python held the event loop some
# 40 ms per 500 rows (loop-lag probe), for the whole length of an export. One JSON
# object per row, with the columns (and names) of the paged JSON; times in UTC.
_JSON_EXPRESSIONS = {
    "occurred_at_local": _LOCAL_TIME_EXPR,
    "timezone": "s.timezone",
    "gate_name": "g.name",
    "full_name": "p.full_name",
} | {name: f"encode(e.{name}, 'hex')" for name in HASH_COLUMNS}


def _jsonl_sql(columns: Sequence[str]) -> str:
    fields = ", ".join(f"'{c}', {_JSON_EXPRESSIONS.get(c, 'e.' + c)}" for c in columns)
    return f"SELECT json_build_object({fields})::text{_CSV_ROWS}"


EXPORT_JSONL_SQL = _jsonl_sql(EXPORT_COLUMNS)
EXPORT_JSONL_HASHES_SQL = _jsonl_sql(EXPORT_COLUMNS + HASH_COLUMNS)
# COPY's CSV form writes a JSON text as it is: JSON has no raw control characters, so
# neither these quote and delimiter characters nor a line break ever occur in one.
JSONL_COPY_OPTIONS = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}

SETTLED_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8"


def encode_cursor(after: int, until: int) -> str:
    raw = f"{after}:{until}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        after, until = (int(part) for part in text.split(":"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_parameter("after", "after must be a next token from a previous page.") from None
    if not 0 <= after <= until:
        raise bad_parameter("after", "after must be a next token from a previous page.")
    return after, until


@dataclass(frozen=True)
class EventFilters:
    site_id: int | None
    gate_id: int | None
    person_id: int | None
    decision: str | None
    reason: str | None
    kind: str | None
    start: datetime | None
    end: datetime | None
    include_exports: bool = False
    scope: int | None = None  # the caller's site: whose people it may read (None: all)

    @classmethod
    def from_request(cls, request: web.Request) -> EventFilters:
        reason = raw_param(request, "reason")
        if reason is not None and len(reason) > MAX_REASON_FILTER:
            raise bad_parameter("reason", f"reason is at most {MAX_REASON_FILTER} characters.")
        start, end = time_range(request)
        return cls(
            site_id=scoped_site(request, int_param(request, "site_id")),
            gate_id=int_param(request, "gate_id"),
            person_id=int_param(request, "person_id"),
            decision=choice_param(request, "decision", ("allow", "deny")),
            reason=reason,
            kind=choice_param(request, "kind", KINDS),
            start=start,
            end=end,
            # A chain is checked link by link: with the hashes, every record is in.
            include_exports=bool_param(request, "include_exports")
            or bool_param(request, "include_hashes"),
            scope=principal(request).site_id,
        )

    def sql_args(self) -> tuple[Any, ...]:
        return (
            self.site_id,
            self.gate_id,
            self.person_id,
            self.decision,
            self.reason,
            self.kind,
            self.start,
            self.end,
            self.include_exports,
            self.scope,
        )

    def as_json(self) -> dict[str, Any]:
        out = {
            k: v
            for k, v in asdict(self).items()
            if v is not None and v is not False and k != "scope"
        }
        for name, key in (("start", "from"), ("end", "to")):
            if name in out:
                out[key] = out.pop(name).isoformat()
        return out


def event_json(row: asyncpg.Record, *, hashes: bool) -> dict[str, Any]:
    columns = EXPORT_COLUMNS + HASH_COLUMNS if hashes else EXPORT_COLUMNS
    return {name: json_value(row[name]) for name in columns}


# --- handlers ---------------------------------------------------------------------------


@requires(Role.AUDITOR, Role.ADMIN)
@documented(
    query={
        "site_id": q_id(),
        "gate_id": q_id(),
        "person_id": q_id(),
        "decision": q_choice("allow", "deny"),
        "reason": q_text(MAX_REASON_FILTER),
        "kind": q_choice(*sorted(KINDS)),
        "from": q_time(),
        "to": q_time(),
        "format": q_choice(*FORMATS),
        "include_hashes": Q_BOOL,
        "include_exports": Q_BOOL,
        "limit": q_int(1, MAX_PAGE),
        "after": q_text(100),
    }
)
async def export_events(request: web.Request) -> web.StreamResponse:
    """The event log, filtered: streamed as csv/jsonl, or paged as json."""
    filters = EventFilters.from_request(request)
    fmt = format_param(request, FORMATS)
    hashes = bool_param(request, "include_hashes")
    detail: dict[str, Any] = {
        "what": "events",
        "filters": filters.as_json(),
        "format": fmt,
        "include_hashes": hashes,
    }
    if fmt == "json":
        return await _events_page(request, filters, detail, hashes)
    async with request.app[DB_KEY].connection() as conn:
        await record_export(conn, principal(request).actor, site_id=filters.site_id, detail=detail)
        response = web.StreamResponse(
            headers={
                "Content-Type": CONTENT_TYPES[fmt],
                "Content-Disposition": attachment("events", fmt),
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        write = paced(
            response.write,
            request.app[DOOR_ACTIVITY_KEY],
            request.app[SETTINGS_KEY].export_bytes_per_s_door_busy,
        )
        try:
            if fmt == "csv":  # one statement: one snapshot for the whole file
                await copy_csv(conn, write, filters, hashes)
            else:
                await copy_jsonl(conn, write, filters, hashes)
        except ConnectionResetError:
            logger.info("export abandoned by the client", extra={"path": request.path})
            return response
    await response.write_eof()
    return response


# A streamed export outlasts the pool's command timeout (CHECKIN_DB_COMMAND_TIMEOUT):
# it goes at the client's pace, and at the paced rate while the door is busy.
EXPORT_TIMEOUT_S = 3600.0


async def copy_jsonl(
    conn: asyncpg.Connection, write: Write, filters: EventFilters, hashes: bool
) -> None:
    """The rows as JSON Lines, written by PostgreSQL's COPY straight through (one
    statement: one snapshot for the whole file)."""
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL timezone = 'UTC'")
        await conn.copy_from_query(
            EXPORT_JSONL_HASHES_SQL if hashes else EXPORT_JSONL_SQL,
            *filters.sql_args(),
            output=write,
            timeout=EXPORT_TIMEOUT_S,
            **JSONL_COPY_OPTIONS,
        )


async def copy_csv(
    conn: asyncpg.Connection, write: Write, filters: EventFilters, hashes: bool
) -> None:
    """The rows as CSV (with a BOM), written by PostgreSQL's COPY straight through."""
    await write("\ufeff".encode())
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL timezone = 'UTC'")
        await conn.copy_from_query(
            EXPORT_CSV_HASHES_SQL if hashes else EXPORT_CSV_SQL,
            *filters.sql_args(),
            output=write,
            timeout=EXPORT_TIMEOUT_S,
            format="csv",
            header=True,
        )


async def _events_page(
    request: web.Request, filters: EventFilters, detail: dict[str, Any], hashes: bool
) -> web.Response:
    """One page. A walk covers the events up to its own first export record, so it ends
    even when new events keep coming, and sees each row once."""
    limit = int_param(request, "limit", maximum=MAX_PAGE) or DEFAULT_PAGE
    token = raw_param(request, "after")
    after, until = decode_cursor(token) if token is not None else (0, None)
    async with request.app[DB_KEY].connection() as conn:
        async with conn.transaction():
            export_id = await record_export(
                conn,
                principal(request).actor,
                site_id=filters.site_id,
                detail=detail | {"after": after},
            )
            xid = int(await conn.fetchval("SELECT pg_current_xact_id()::text"))
        if until is None:
            until = export_id
            await _settle(conn, xid)
        rows = await conn.fetch(EXPORT_SQL, *filters.sql_args(), after, until, limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return web.json_response(
        {
            "events": [event_json(r, hashes=hashes) for r in page],
            "next": encode_cursor(page[-1]["id"], until) if more else None,
        },
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
    )


async def _settle(conn: asyncpg.Connection, xid: int, *, patience_s: float = 2.0) -> None:
    """Wait until every writer that began before the walk's export record has ended.

    Event ids are handed out at insert, not at commit: a batch of another site may
    still hold ids below ours. Writers get their transaction ids in the order they
    first write, so once none older than ours is running, no id below ours can
    appear any more, and the walk's pages miss nothing. Batches last milliseconds."""
    deadline = asyncio.get_running_loop().time() + patience_s
    while asyncio.get_running_loop().time() < deadline:
        if await conn.fetchval(SETTLED_SQL, xid):
            return
        await asyncio.sleep(0.01)
    logger.warning("export walk started while an old writer was still running")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/audit/events", export_events, name="audit_events"),
        web.get("/api/v1/audit/verify", verify, name="audit_verify"),
        web.get(
            r"/api/v1/people/{person_id:\d{1,18}}/movements", movements, name="person_movements"
        ),
        web.get(r"/api/v1/sites/{site_id:\d{1,18}}/report", site_report, name="site_report"),
    ]
