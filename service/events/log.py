"""The append-only event log and its hash chains.

Each site's events form one chain (chain 0 holds events of no site). Appending locks
the chain's head row until commit; that lock is taken once per transaction (a whole
batch of scans), not once per event, and it makes `seq` gap-free and commit-ordered
within a chain, which is what lets a console resume exactly where it stopped.

digest = sha256(canonical record); hash = sha256(prev_hash || digest). The retention
purge may blank personal fields of old rows but keeps digest and hashes, so the chain
still verifies across it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

GENESIS_HASH = bytes(32)

KINDS = frozenset(
    {
        "scan",
        "override",
        "manual_exit",
        "deny_list_add",
        "deny_list_remove",
        "pass_revoked",
        "declaration_reviewed",
        "admin",
        "export",
        "trace",
        "purge",
        "door_correction",
        "login_failed",
        "login_locked",
        "login_burst",
        "official_test",
        "health_case",
        "suspension",
        "suspension_cleared",
        "auto_exit",
        "presence_confirmed",
        "id_check",
        "overstay",
    }
)


NO_SITE_CHAIN = 0  # the chain of events of no site (the deny list, an all-sites suspension)


@dataclass(frozen=True)
class NewEvent:
    kind: str
    actor: str
    occurred_at: datetime
    site_id: int | None = None
    gate_id: int | None = None
    person_id: int | None = None
    pass_id: UUID | None = None
    event_id: UUID | None = None
    direction: str | None = None
    decision: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def chain_id(self) -> int:
        return self.site_id or NO_SITE_CHAIN


@dataclass(frozen=True)
class AppendedEvent:
    id: int
    chain_id: int
    seq: int
    event: NewEvent


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, no spaces, UTC times, str UUIDs."""

    def encode(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat(timespec="microseconds")
        if isinstance(value, UUID):
            return str(value)
        raise TypeError(f"cannot hash {type(value).__name__}")

    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=encode
    ).encode("utf-8")


HASHED_FIELDS = (
    "kind",
    "actor",
    "occurred_at",
    "site_id",
    "gate_id",
    "person_id",
    "pass_id",
    "event_id",
    "direction",
    "decision",
    "reason",
    "detail",
)


def digest_of(record: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical({k: record[k] for k in HASHED_FIELDS})).digest()


def _canonical_new(e: NewEvent) -> bytes:
    """canonical() of an event being appended, with its times and UUIDs already in the
    text canonical() gives them (the same bytes, without a callback per value)."""
    return canonical(
        {
            "kind": e.kind,
            "actor": e.actor,
            "occurred_at": e.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "site_id": e.site_id,
            "gate_id": e.gate_id,
            "person_id": e.person_id,
            "pass_id": None if e.pass_id is None else str(e.pass_id),
            "event_id": None if e.event_id is None else str(e.event_id),
            "direction": e.direction,
            "decision": e.decision,
            "reason": e.reason,
            "detail": e.detail,
        }
    )


def link(prev_hash: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(prev_hash + digest).digest()


LOCK_CHAINS_SQL = """
SELECT chain_id, last_seq, last_hash FROM event_chains
WHERE chain_id = ANY($1::bigint[]) ORDER BY chain_id FOR UPDATE
"""

# One round trip: the rows, and the chain heads moved to the last of them (schema.sql).
APPEND_SQL = """
SELECT id, chain_id, seq FROM append_chained_events($1::text::jsonb, $2, $3, $4, $5, $6)
"""


Heads = dict[int, tuple[int, bytes]]  # chain_id -> (last seq, last hash)


async def lock_chains(conn: asyncpg.Connection, chain_ids: Sequence[int]) -> Heads:
    """Lock the heads of these chains until the transaction ends (sorted: no deadlock).

    While a site's head is locked, nobody else appends to that site, so what the
    holder reads of the site (presence, recent scans) stays true until it commits."""
    if not conn.is_in_transaction():
        raise RuntimeError("chains can only be locked inside a transaction")
    rows = await conn.fetch(LOCK_CHAINS_SQL, sorted(set(chain_ids)))
    heads = {r["chain_id"]: (r["last_seq"], bytes(r["last_hash"])) for r in rows}
    missing = set(chain_ids) - heads.keys()
    if missing:
        raise LookupError(f"no event chain for site(s) {sorted(missing)}")
    return heads


@dataclass
class ChainedEvents:
    """Events linked into their chains, as append_chained_events (schema.sql) takes them:
    their canonical records as one JSON array, and per event its place and hashes."""

    records: str
    chain_ids: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)
    prev_hashes: list[bytes] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)

    def params(self) -> tuple[Any, ...]:
        return (
            self.records,
            self.chain_ids,
            self.seqs,
            self.digests,
            self.prev_hashes,
            self.hashes,
        )


def chain(events: Sequence[NewEvent], heads: Heads) -> ChainedEvents:
    """Link the events, in order, to the heads of their chains; `heads` are advanced in
    place."""
    records = [_canonical_new(e) for e in events]
    chained = ChainedEvents((b"[" + b",".join(records) + b"]").decode("utf-8"))
    for e, record in zip(events, records, strict=True):
        if e.kind not in KINDS:
            raise ValueError(f"unknown event kind {e.kind!r}")
        seq, prev = heads[e.chain_id]
        digest = hashlib.sha256(record).digest()
        heads[e.chain_id] = (seq + 1, link(prev, digest))
        chained.chain_ids.append(e.chain_id)
        chained.seqs.append(seq + 1)
        chained.digests.append(digest)
        chained.prev_hashes.append(prev)
        chained.hashes.append(heads[e.chain_id][1])
    return chained


async def append_events(
    conn: asyncpg.Connection, events: Sequence[NewEvent], heads: Heads | None = None
) -> list[AppendedEvent]:
    """Append events in the given order, inside the caller's transaction. `heads` are
    the chains already locked by `lock_chains` in this transaction (locked here if
    not given); they are advanced in place."""
    if not events:
        return []
    if heads is None:
        heads = await lock_chains(conn, [e.chain_id for e in events])
    chained = chain(events, heads)
    rows = await conn.fetch(APPEND_SQL, *chained.params())
    ids = {(r["chain_id"], r["seq"]): r["id"] for r in rows}
    return [
        AppendedEvent(id=ids[(e.chain_id, s)], chain_id=e.chain_id, seq=s, event=e)
        for e, s in zip(events, chained.seqs, strict=True)
    ]


async def append_event(conn: asyncpg.Connection, event: NewEvent) -> AppendedEvent:
    """One event, in its own transaction unless one is already open."""
    if conn.is_in_transaction():
        return (await append_events(conn, [event]))[0]
    async with conn.transaction():
        return (await append_events(conn, [event]))[0]


# --- verification -------------------------------------------------------------------

CHAIN_ROWS_SQL = """
SELECT id, seq, kind, actor, occurred_at, site_id, gate_id, person_id, pass_id, event_id,
       direction, decision, reason, detail, digest, prev_hash, hash
FROM events WHERE chain_id = $1 AND seq >= $2 AND ($3::bigint IS NULL OR seq <= $3)
ORDER BY seq
"""


@dataclass(frozen=True)
class BrokenLink:
    chain_id: int
    seq: int
    event_row_id: int | None
    problem: str


@dataclass(frozen=True)
class ChainReport:
    chain_id: int
    checked: int
    first_seq: int | None
    last_seq: int | None
    broken: BrokenLink | None

    def as_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "ok": self.broken is None,
            "broken": None
            if self.broken is None
            else {
                "seq": self.broken.seq,
                "event_row_id": self.broken.event_row_id,
                "problem": self.broken.problem,
            },
        }


async def verify_chain(
    conn: asyncpg.Connection, chain_id: int, *, from_seq: int = 1, to_seq: int | None = None
) -> ChainReport:
    """Recompute the chain from `from_seq`; report the first broken link, if any.

    A row whose record was purged (detail.purged) is checked by its stored digest
    alone; every other row's digest is recomputed from its fields. One snapshot
    covers the rows and the chain head, so concurrent appends do not confuse it."""
    expected_prev = GENESIS_HASH if from_seq == 1 else None
    expected_seq = from_seq
    checked = 0
    last_seq: int | None = None
    broken: BrokenLink | None = None
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        head = await conn.fetchrow(
            "SELECT last_seq, last_hash FROM event_chains WHERE chain_id = $1", chain_id
        )
        rows = conn.cursor(CHAIN_ROWS_SQL, chain_id, from_seq, to_seq, prefetch=2000)
        async for row in rows:
            problem = _link_problem(row, expected_seq, expected_prev)
            if problem:
                # A missing row is the broken link itself, not the row after it.
                at = (row["seq"], row["id"]) if row["seq"] == expected_seq else (expected_seq, None)
                broken = BrokenLink(chain_id, at[0], at[1], problem)
                break
            checked += 1
            last_seq = row["seq"]
            expected_seq = row["seq"] + 1
            expected_prev = bytes(row["hash"])
    if broken is None and to_seq is None and head is not None:
        end_ok = head["last_seq"] == expected_seq - 1 and (
            not checked or bytes(head["last_hash"]) == expected_prev
        )
        if not end_ok:
            broken = BrokenLink(
                chain_id, expected_seq, None, "events missing at the end of the chain"
            )
    return ChainReport(chain_id, checked, from_seq if checked else None, last_seq, broken)


def _link_problem(row: asyncpg.Record, seq: int, prev_hash: bytes | None) -> str | None:
    if row["seq"] != seq:
        return f"missing seq {seq} (next is {row['seq']})"
    if prev_hash is not None and bytes(row["prev_hash"]) != prev_hash:
        return "prev_hash does not match the previous event's hash"
    if not row["detail"].get("purged") and digest_of(dict(row)) != bytes(row["digest"]):
        return "the record's fields do not match its digest (edited)"
    if link(bytes(row["prev_hash"]), bytes(row["digest"])) != bytes(row["hash"]):
        return "hash is not sha256(prev_hash || digest)"
    return None
