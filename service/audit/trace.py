"""Contact tracing (truy vết): everyone who was inside the same site while a person was.

From presence stays: each stay of the person that overlaps the window is intersected
with the other people's stays at the same site; the overlaps are summed per contact.
An open stay (no exit yet) counts until the cut-off `open_until` (default: now). Every
trace is recorded in the event log (kind "trace"), whoever ran it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from service.events.log import NewEvent, append_event
from service.people.scope import is_visible, person_not_found
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, requires
from service.web.openapi import Q_BOOL, documented, q_choice, q_id, q_time
from service.web.spreadsheet import safe_cell

# $1 person, $2 from, $3 to, $4 cut-off for open stays, $5 same gate only,
# $6 minimum total overlap (minutes), $7 only this site (NULL: every site).
# The range test `&&` is what the GiST index on tstzrange(entered_at, exited_at)
# answers, once per stay of the person: `mine` is materialized and the lateral kept
# apart (OFFSET 0), and no other bound on `o` is written, or the planner joins the
# whole site by hash or ANDs in the (site, entry time) index (20x slower: the bench).
# The coalesce tests apply the cut-off to open stays.
# An estimated end (an automatic check-out, a guard's "gone": last_evidence_at is set)
# ends the stay where the site's rule says: at the closure, or at the person's last
# scan ("last_evidence"); the range test stays a superset, as that is never later.
CONTACTS_SQL = """
WITH mine AS MATERIALIZED (
    SELECT p.site_id, p.entry_gate_id, r.by_evidence, r.rule,
           p.last_evidence_at IS NOT NULL AS estimated,
           GREATEST(p.entered_at, $2::timestamptz) AS lo,
           LEAST(coalesce(CASE WHEN r.by_evidence THEN p.last_evidence_at END, p.exited_at,
                          $4::timestamptz), $3::timestamptz) AS hi
    FROM presence p JOIN sites s ON s.id = p.site_id
    CROSS JOIN LATERAL (
        SELECT coalesce(s.checkin_rules->>'trace_estimated_end', 'closure') AS rule) AS r0
    CROSS JOIN LATERAL (SELECT r0.rule, r0.rule = 'last_evidence' AS by_evidence) AS r
    WHERE p.person_id = $1 AND p.entered_at < $3::timestamptz
      AND coalesce(p.exited_at, $4::timestamptz) > $2::timestamptz
      AND ($7::bigint IS NULL OR p.site_id = $7::bigint)
), shared AS (
    SELECT o.person_id, m.site_id, o.entry_gate_id,
           m.estimated OR o.last_evidence_at IS NOT NULL AS estimated, m.rule,
           GREATEST(o.entered_at, m.lo) AS lo,
           LEAST(o.hi, m.hi) AS hi
    FROM mine m
    JOIN LATERAL (
        SELECT o.person_id, o.entry_gate_id, o.entered_at, o.last_evidence_at,
               coalesce(CASE WHEN m.by_evidence THEN o.last_evidence_at END, o.exited_at,
                        $4::timestamptz) AS hi
        FROM presence o
        WHERE o.site_id = m.site_id
          AND tstzrange(o.entered_at, o.exited_at) && tstzrange(m.lo, m.hi)
        OFFSET 0
    ) AS o ON o.hi > m.lo
    WHERE m.lo < m.hi
      AND o.hi > o.entered_at  -- entered after the cut-off
      AND o.person_id <> $1
      AND (NOT $5::boolean OR o.entry_gate_id = m.entry_gate_id)
), contacts AS (
    SELECT person_id,
           extract(epoch FROM sum(hi - lo)) AS overlap_seconds,
           count(*) AS shared_stays,
           min(lo) AS first_overlap,
           max(hi) AS last_overlap,
           array_agg(DISTINCT site_id ORDER BY site_id) AS site_ids,
           array_remove(array_agg(DISTINCT entry_gate_id ORDER BY entry_gate_id), NULL) AS gate_ids,
           max(rule) FILTER (WHERE estimated) AS estimated_end
    FROM shared GROUP BY person_id
)
SELECT c.person_id, p.full_name, p.phone, p.organisation, c.overlap_seconds::float8,
       c.shared_stays, c.first_overlap, c.last_overlap, c.site_ids, c.gate_ids, c.estimated_end
FROM contacts c JOIN people p ON p.id = c.person_id
WHERE c.overlap_seconds >= $6::float8 * 60
ORDER BY c.overlap_seconds DESC, c.person_id
"""

PERSON_SQL = "SELECT id, full_name, phone, organisation FROM people WHERE id = $1"

CSV_COLUMNS = (
    "person_id",
    "full_name",
    "phone",
    "organisation",
    "overlap_minutes",
    "shared_stays",
    "first_overlap",
    "last_overlap",
    "site_ids",
    "estimated_end",
)
# A spreadsheet runs a cell that starts with one of these as a formula.


class TraceError(ValueError):
    """A bad trace request: which parameter, and why."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


class PersonNotFound(LookupError):
    pass


@dataclass(frozen=True)
class TraceQuery:
    person_id: int
    start: datetime
    end: datetime
    open_until: datetime
    min_overlap_minutes: float = 0.0
    same_gate: bool = False
    site_id: int | None = None  # a site-scoped token traces within its site only

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise TraceError("to", "to must be later than from.")
        if self.min_overlap_minutes < 0:
            raise TraceError("min_overlap", "min_overlap must not be negative.")

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "open_until": self.open_until.isoformat(),
            "min_overlap_minutes": self.min_overlap_minutes,
            "same_gate": self.same_gate,
            "site_id": self.site_id,
        }


@dataclass(frozen=True)
class Contact:
    person_id: int
    full_name: str
    phone: str | None
    organisation: str | None
    overlap_minutes: float
    shared_stays: int
    first_overlap: datetime
    last_overlap: datetime
    site_ids: list[int]
    gate_ids: list[int] = field(default_factory=list)  # the contact's entry gates
    # Set when an overlap ends at an estimated end: the site's rule that placed it
    # ("closure" or "last_evidence"); None when every end was a seen exit.
    estimated_end: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "full_name": self.full_name,
            "phone": self.phone,
            "organisation": self.organisation,
            "overlap_minutes": self.overlap_minutes,
            "shared_stays": self.shared_stays,
            "first_overlap": self.first_overlap.isoformat(),
            "last_overlap": self.last_overlap.isoformat(),
            "site_ids": self.site_ids,
            "estimated_end": self.estimated_end,
        }


@dataclass(frozen=True)
class TraceResult:
    query: TraceQuery
    person: dict[str, Any]
    contacts: list[Contact]

    def as_json(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "window": self.query.as_json(),
            "contacts": [c.as_json() for c in self.contacts],
        }


def parse_time(raw: str, name: str) -> datetime:
    """An ISO 8601 time with its UTC offset (Z or +07:00), as an aware datetime."""
    # A '+' left unencoded in a query string arrives as a space: "...08:00 07:00".
    raw = re.sub(r" (\d{2}:?\d{2})$", r"+\1", raw.strip())
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise TraceError(name, f"{name} is not an ISO 8601 time.") from None
    if value.tzinfo is None:
        raise TraceError(name, f"{name} needs a UTC offset (Z or +07:00).")
    return value.astimezone(UTC)


def parse_minutes(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise TraceError(name, f"{name} must be a number of minutes.") from None
    if not value >= 0 or value == float("inf"):  # also refuses NaN
        raise TraceError(name, f"{name} must be a non-negative number of minutes.")
    return value


async def fetch_contacts(conn: asyncpg.Connection, query: TraceQuery) -> list[Contact]:
    rows = await conn.fetch(
        CONTACTS_SQL,
        query.person_id,
        query.start,
        query.end,
        query.open_until,
        query.same_gate,
        query.min_overlap_minutes,
        query.site_id,
    )
    return [
        Contact(
            person_id=r["person_id"],
            full_name=r["full_name"],
            phone=r["phone"],
            organisation=r["organisation"],
            overlap_minutes=round(r["overlap_seconds"] / 60, 2),
            shared_stays=r["shared_stays"],
            first_overlap=r["first_overlap"],
            last_overlap=r["last_overlap"],
            site_ids=list(r["site_ids"]),
            gate_ids=list(r["gate_ids"]),
            estimated_end=r["estimated_end"],
        )
        for r in rows
    ]


async def trace(
    conn: asyncpg.Connection, query: TraceQuery, *, actor: str, now: datetime, output: str
) -> TraceResult:
    """The contacts, with the trace recorded in the event log in the same transaction
    (no trace is handed out unrecorded). Raises PersonNotFound, also for a person the
    query's site may not read. The contacts are all of that site too: only its stays
    are intersected."""
    async with conn.transaction():
        person = await conn.fetchrow(PERSON_SQL, query.person_id)
        if person is None or not await is_visible(conn, query.person_id, query.site_id):
            raise PersonNotFound(query.person_id)
        contacts = await fetch_contacts(conn, query)
        await append_event(
            conn,
            NewEvent(
                kind="trace",
                actor=actor,
                occurred_at=now,
                person_id=query.person_id,
                detail={**query.as_json(), "format": output, "contacts": len(contacts)},
            ),
        )
    return TraceResult(query=query, person=dict(person), contacts=contacts)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return safe_cell(text)


def to_csv(result: TraceResult) -> bytes:
    """UTF-8 with a BOM (Excel reads Vietnamese names right), every cell quoted, and
    cells a spreadsheet would run as a formula neutralised with a leading quote."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for contact in result.contacts:
        row = contact.as_json()
        row["site_ids"] = " ".join(str(s) for s in contact.site_ids)
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def _query_from_request(request: web.Request, now: datetime) -> tuple[TraceQuery, str]:
    params = request.query

    def required(name: str) -> str:
        raw = params.get(name, "").strip()
        if not raw:
            raise TraceError(name, f"The query parameter {name} is required.")
        return raw

    person = required("person")
    if not person.isdigit() or len(person) > 18 or int(person) == 0:
        raise TraceError("person", "person must be a positive integer id.")
    output = params.get("format", "json")
    if output not in ("json", "csv"):
        raise TraceError("format", "format must be json or csv.")
    same_gate = params.get("same_gate", "false").lower()
    if same_gate not in ("true", "false", "1", "0"):
        raise TraceError("same_gate", "same_gate must be true or false.")
    open_until = params.get("open_until", "")
    query = TraceQuery(
        person_id=int(person),
        start=parse_time(required("from"), "from"),
        end=parse_time(required("to"), "to"),
        open_until=parse_time(open_until, "open_until") if open_until else now,
        min_overlap_minutes=parse_minutes(params.get("min_overlap", "0"), "min_overlap"),
        same_gate=same_gate in ("true", "1"),
        site_id=principal(request).site_id,
    )
    return query, output


@requires(Role.AUDITOR, Role.ADMIN, Role.HEALTH)
@documented(
    query={
        "person": q_id(required=True),
        "from": q_time(required=True),
        "to": q_time(required=True),
        "open_until": q_time(),
        "min_overlap": ({"type": "number", "minimum": 0}, False),
        "same_gate": Q_BOOL,
        "format": q_choice("json", "csv"),
    }
)
async def trace_contacts(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    try:
        query, output = _query_from_request(request, now)
    except TraceError as e:
        raise ApiError(400, "bad_parameter", e.message, parameter=e.parameter) from None
    try:
        async with request.app[DB_KEY].connection() as conn:
            result = await trace(
                conn, query, actor=principal(request).actor, now=now, output=output
            )
    except PersonNotFound:
        raise person_not_found(query.person_id) from None
    if output == "csv":
        name = f"trace-person-{query.person_id}-{query.start:%Y%m%d}-{query.end:%Y%m%d}.csv"
        return web.Response(
            body=to_csv(result),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return web.json_response(result.as_json())


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/trace", trace_contacts, name="trace")]
