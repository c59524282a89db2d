"""The auditor's API: event-log exports, chain verification, a person's movements and
the daily report of a site.

Exports are records too: each one appends an `export` event (who, which filters, which
format) before the first byte goes out. CSV and JSON Lines stream from a server-side
cursor inside one read-only snapshot, so memory stays flat however long the log is;
JSON is paged by event id.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import io
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from service.events.log import KINDS, NewEvent, append_event, verify_chain
from service.people.scope import person_not_found, require_visible, visible_to_sql
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, require_site, requires
from service.web.openapi import Q_BOOL, documented, q_choice, q_date, q_id, q_int, q_text, q_time
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
from service.web.spreadsheet import safe_cell

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
CHAIN_EXISTS_SQL = "SELECT 1 FROM event_chains WHERE chain_id = $1"
ALL_CHAINS_SQL = "SELECT chain_id FROM event_chains ORDER BY chain_id"
PERSON_SQL = "SELECT id, full_name FROM people WHERE id = $1"
SITE_SQL = "SELECT id, name, timezone FROM sites WHERE id = $1"

MOVEMENT_COLUMNS = (
    "stay_id",
    "site_id",
    "site_name",
    "entered_at",
    "entry_gate_id",
    "entry_gate",
    "exited_at",
    "exit_gate_id",
    "exit_gate",
    "exit_kind",
)
# Stays that overlap [from, to): entered before `to`, not left before `from`.
MOVEMENTS_SQL = """
SELECT pr.id AS stay_id, pr.site_id, s.name AS site_name, pr.entered_at, pr.entry_gate_id,
       ge.name AS entry_gate, pr.exited_at, pr.exit_gate_id, gx.name AS exit_gate, pr.exit_kind
FROM presence pr
JOIN sites s ON s.id = pr.site_id
LEFT JOIN gates ge ON ge.id = pr.entry_gate_id
LEFT JOIN gates gx ON gx.id = pr.exit_gate_id
WHERE pr.person_id = $1
  AND ($2::timestamptz IS NULL OR pr.exited_at IS NULL OR pr.exited_at >= $2)
  AND ($3::timestamptz IS NULL OR pr.entered_at < $3)
  AND ($4::bigint IS NULL OR pr.site_id = $4)
ORDER BY pr.entered_at, pr.id
"""

REPORT_COUNTS_SQL = """
SELECT
    count(*) FILTER (WHERE kind IN ('scan', 'override', 'id_check') AND decision = 'allow'
                     AND direction = 'in') AS entries,
    count(*) FILTER (WHERE kind IN ('scan', 'override', 'id_check') AND decision = 'allow'
                     AND direction = 'out') AS scanned_exits,
    count(*) FILTER (WHERE kind = 'manual_exit') AS manual_exits,
    count(*) FILTER (WHERE kind = 'scan' AND decision = 'deny') AS denials
FROM events
WHERE chain_id = $1 AND occurred_at >= $2 AND occurred_at < $3
"""
REPORT_DENIALS_SQL = """
SELECT reason, count(*) AS n FROM events
WHERE chain_id = $1 AND kind = 'scan' AND decision = 'deny'
  AND occurred_at >= $2 AND occurred_at < $3
GROUP BY reason ORDER BY n DESC, reason
"""
# The stays of the day as +1 at entry (or at the start of the day, for those already
# inside) and -1 at exit; the running sum is the occupancy. At the same instant exits
# count first, so a person leaving as another enters is not two people.
REPORT_PEAK_SQL = """
WITH stays AS (
    SELECT greatest(entered_at, $2) AS entered_at, exited_at FROM presence
    WHERE site_id = $1 AND entered_at < $3 AND (exited_at IS NULL OR exited_at > $2)
), changes AS (
    SELECT entered_at AS at, 1 AS delta FROM stays
    UNION ALL
    SELECT exited_at, -1 FROM stays WHERE exited_at < $3
), running AS (
    SELECT at, sum(delta) OVER (ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS inside
    FROM changes
)
SELECT inside, at FROM running ORDER BY inside DESC, at LIMIT 1
"""


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


# --- rendering --------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def event_json(row: asyncpg.Record, *, hashes: bool) -> dict[str, Any]:
    columns = EXPORT_COLUMNS + HASH_COLUMNS if hashes else EXPORT_COLUMNS
    return {name: json_value(row[name]) for name in columns}


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(json_value(value))
    return safe_cell(text)


class CsvChunks:
    """CSV text for spreadsheets: the csv module's quoting, formulas defused."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def row(self, values: Iterable[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in values])

    def take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode("utf-8")


def csv_document(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = CsvChunks()
    out.row(header)
    for row in rows:
        out.row(row)
    return "\ufeff".encode() + out.take()


def attachment(name: str, fmt: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f'attachment; filename="{name}-{stamp}.{fmt}"'


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "json": "application/json; charset=utf-8",
}


async def record_export(
    conn: asyncpg.Connection,
    actor: str,
    *,
    site_id: int | None,
    detail: dict[str, Any],
    person_id: int | None = None,
) -> int:
    try:
        appended = await append_event(
            conn,
            NewEvent(
                kind="export",
                actor=actor,
                occurred_at=datetime.now(UTC),
                site_id=site_id,
                person_id=person_id,
                detail=detail,
            ),
        )
    except LookupError:  # no chain: the site filter names no site
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.") from None
    return appended.id


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
        try:
            if fmt == "csv":  # one statement: one snapshot for the whole file
                await copy_csv(conn, response.write, filters, hashes)
            else:
                await copy_jsonl(conn, response.write, filters, hashes)
        except ConnectionResetError:
            logger.info("export abandoned by the client", extra={"path": request.path})
            return response
    await response.write_eof()
    return response


Write = Callable[[bytes], Awaitable[Any]]


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


@requires(Role.AUDITOR, Role.ADMIN)
@documented(query={"site_id": q_id(minimum=0), "from_seq": q_id(), "to_seq": q_id()})
async def verify(request: web.Request) -> web.Response:
    """Recompute hash chains: one site's (site_id=0 is the chain of no site), or all."""
    site_id = int_param(request, "site_id", minimum=0)
    from_seq = int_param(request, "from_seq") or 1
    to_seq = int_param(request, "to_seq")
    if to_seq is not None and to_seq < from_seq:
        raise bad_parameter("to_seq", "to_seq must not be before from_seq.")
    caller = principal(request)
    if caller.site_id is not None and site_id is None:
        site_id = caller.site_id
    async with request.app[DB_KEY].connection() as conn:
        if site_id is not None:
            if site_id:
                require_site(request, site_id)
            if await conn.fetchval(CHAIN_EXISTS_SQL, site_id) is None:
                raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
            report = await verify_chain(conn, site_id, from_seq=from_seq, to_seq=to_seq)
            return web.json_response(report.as_json())
        chains = [r["chain_id"] for r in await conn.fetch(ALL_CHAINS_SQL)]
        reports = [
            (await verify_chain(conn, c, from_seq=from_seq, to_seq=to_seq)).as_json()
            for c in chains
        ]
    return web.json_response({"ok": all(r["ok"] for r in reports), "chains": reports})


@requires(Role.AUDITOR, Role.ADMIN, Role.GUARD, Role.HEALTH)
@documented(query={"from": q_time(), "to": q_time(), "format": q_choice("json", "csv")})
async def movements(request: web.Request) -> web.Response:
    """Every stay of a person (entry and exit, gates by name), in time order; a token
    limited to a site sees the stays there, of people known there."""
    person_id = int(request.match_info["person_id"])
    start, end = time_range(request)
    fmt = format_param(request, ("json", "csv"))
    site_id = principal(request).site_id
    filters = {k: v.isoformat() for k, v in (("from", start), ("to", end)) if v is not None} | {
        "person_id": person_id
    }
    async with request.app[DB_KEY].connection() as conn:
        # Not even the name of someone who never came to the caller's site.
        await require_visible(conn, person_id, site_id)
        person = await conn.fetchrow(PERSON_SQL, person_id)
        if person is None:
            raise person_not_found(person_id)
        await record_export(
            conn,
            principal(request).actor,
            site_id=site_id,
            person_id=person_id,
            detail={"what": "movements", "filters": filters, "format": fmt},
        )
        rows = await conn.fetch(MOVEMENTS_SQL, person_id, start, end, site_id)
    if fmt == "csv":
        return web.Response(
            body=csv_document(MOVEMENT_COLUMNS, ([r[c] for c in MOVEMENT_COLUMNS] for r in rows)),
            headers={
                "Content-Type": CONTENT_TYPES["csv"],
                "Content-Disposition": attachment(f"movements-{person_id}", "csv"),
            },
        )
    return web.json_response(
        {
            "person_id": person_id,
            "full_name": person["full_name"],
            "movements": [{c: json_value(r[c]) for c in MOVEMENT_COLUMNS} for r in rows],
        },
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
    )


@dataclass(frozen=True)
class DailyReport:
    site_id: int
    day: date
    timezone: str
    entries: int
    exits: int
    manual_exits: int
    denials: int
    denials_by_reason: dict[str, int]
    peak_occupancy: int
    peak_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["date"] = out.pop("day").isoformat()
        out["peak_at"] = self.peak_at.isoformat() if self.peak_at else None
        return out

    def csv_rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("site_id", self.site_id),
            ("date", self.day.isoformat()),
            ("timezone", self.timezone),
            ("entries", self.entries),
            ("exits", self.exits),
            ("manual_exits", self.manual_exits),
            ("denials", self.denials),
        ]
        rows += [(f"denials:{r}", n) for r, n in self.denials_by_reason.items()]
        rows += [("peak_occupancy", self.peak_occupancy), ("peak_at", self.peak_at)]
        return rows


async def daily_report(conn: asyncpg.Connection, site_id: int, day: date) -> DailyReport:
    site = await conn.fetchrow(SITE_SQL, site_id)
    if site is None:
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
    zone = ZoneInfo(site["timezone"])
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        counts = await conn.fetchrow(REPORT_COUNTS_SQL, site_id, start, end)
        denials = await conn.fetch(REPORT_DENIALS_SQL, site_id, start, end)
        peak = await conn.fetchrow(REPORT_PEAK_SQL, site_id, start, end)
    return DailyReport(
        site_id=site_id,
        day=day,
        timezone=site["timezone"],
        entries=counts["entries"],
        exits=counts["scanned_exits"] + counts["manual_exits"],
        manual_exits=counts["manual_exits"],
        denials=counts["denials"],
        denials_by_reason={r["reason"]: r["n"] for r in denials},
        peak_occupancy=int(peak["inside"]) if peak else 0,
        peak_at=peak["at"].astimezone(zone) if peak else None,
    )


@requires(Role.AUDITOR, Role.ADMIN, Role.HEALTH)
@documented(query={"date": q_date(required=True), "format": q_choice("json", "csv")})
async def site_report(request: web.Request) -> web.Response:
    """Entries, exits, denials by reason and peak occupancy of one day, in site time."""
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    raw = raw_param(request, "date")
    if raw is None:
        raise ApiError(400, "missing_parameter", "The query parameter date is required.")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise bad_parameter("date", "date must be YYYY-MM-DD.") from None
    fmt = format_param(request, ("json", "csv"))
    async with request.app[DB_KEY].connection() as conn:
        report = await daily_report(conn, site_id, day)
    if fmt == "csv":
        return web.Response(
            body=csv_document(("metric", "value"), report.csv_rows()),
            headers={
                "Content-Type": CONTENT_TYPES["csv"],
                "Content-Disposition": attachment(f"site-{site_id}-{day.isoformat()}", "csv"),
            },
        )
    return web.json_response(report.as_json())


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/audit/events", export_events, name="audit_events"),
        web.get("/api/v1/audit/verify", verify, name="audit_verify"),
        web.get(
            r"/api/v1/people/{person_id:\d{1,18}}/movements", movements, name="person_movements"
        ),
        web.get(r"/api/v1/sites/{site_id:\d{1,18}}/report", site_report, name="site_report"),
    ]
