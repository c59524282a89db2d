"""The durable outbox: every scan is on disk before it is sent, and stays until acked.

SQLite in WAL mode with ``synchronous=FULL``: a committed row survives a kill -9 or a
power cut. A scan leaves the outbox only when the service acknowledged it (its decision
arrived, which the service sends after its own commit). The service is idempotent on
``event_id``, so sending a row twice is safe, losing one is not.

Not thread-safe: the kiosk uses one outbox from one I/O thread.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    payload     TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    direction   TEXT CHECK (direction IN ('in', 'out')),
    offline     TEXT,
    rejected    TEXT
);
"""


@dataclass(frozen=True)
class Scan:
    event_id: str
    payload: str
    seen_at: str  # ISO 8601 with offset
    direction: str | None = None
    offline: dict[str, str] | None = None  # the kiosk's own verdict, when it had to judge

    @classmethod
    def new(cls, payload: str, *, seen_at: datetime, direction: str | None = None) -> Scan:
        return cls(
            event_id=str(uuid.uuid4()),
            payload=payload,
            seen_at=seen_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            direction=direction,
        )

    def to_message(self) -> dict[str, Any]:
        """The scan object of the protocol (without ``type``)."""
        msg: dict[str, Any] = {
            "event_id": self.event_id,
            "payload": self.payload,
            "seen_at": self.seen_at,
            "direction": self.direction,
        }
        if self.offline is not None:
            msg["offline"] = self.offline
        return msg


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Autocommit mode: every statement below is its own durable transaction.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, scan: Scan) -> int:
        """Store a scan durably; return its sequence number (replay order)."""
        cur = self._db.execute(
            "INSERT INTO scans (event_id, payload, seen_at, direction, offline)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                scan.event_id,
                scan.payload,
                scan.seen_at,
                scan.direction,
                json.dumps(scan.offline) if scan.offline is not None else None,
            ),
        )
        return int(cur.lastrowid or 0)

    def set_offline(self, event_id: str, verdict: str, reason: str) -> None:
        """Record the verdict the kiosk gave on its own, to be sent with the replay."""
        self._db.execute(
            "UPDATE scans SET offline = ? WHERE event_id = ?",
            (json.dumps({"verdict": verdict, "reason": reason}), event_id),
        )

    def ack(self, event_ids: Iterable[str]) -> int:
        """Delete acknowledged scans; return how many were deleted."""
        ids = list(event_ids)
        if not ids:
            return 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            deleted = sum(
                self._db.execute("DELETE FROM scans WHERE event_id = ?", (i,)).rowcount for i in ids
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return deleted

    def settle(self, event_id: str, decision: str) -> bool:
        """Delete a scan the service answered, unless the kiosk had already judged it
        offline the other way (the answer came late): the door and the record then
        disagree, and the scan stays to be replayed with its verdict, which the service
        records as a correction. True if it stays."""
        self._db.execute(
            "DELETE FROM scans WHERE event_id = ?"
            " AND (offline IS NULL OR json_extract(offline, '$.verdict') = ?)",
            (event_id, decision),
        )
        row = self._db.execute("SELECT 1 FROM scans WHERE event_id = ?", (event_id,)).fetchone()
        return row is not None

    def reject(self, event_id: str, why: str) -> None:
        """Park a scan the service refuses to accept (kept for a person to look at)."""
        self._db.execute("UPDATE scans SET rejected = ? WHERE event_id = ?", (why, event_id))

    def pending(self, limit: int = 500) -> list[Scan]:
        """Scans not yet acknowledged, oldest first."""
        rows = self._db.execute(
            "SELECT event_id, payload, seen_at, direction, offline FROM scans"
            " WHERE rejected IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            Scan(
                event_id=r[0],
                payload=r[1],
                seen_at=r[2],
                direction=r[3],
                offline=json.loads(r[4]) if r[4] is not None else None,
            )
            for r in rows
        ]

    def depth(self) -> int:
        row = self._db.execute("SELECT count(*) FROM scans WHERE rejected IS NULL").fetchone()
        return int(row[0])


class AsyncOutbox:
    """The outbox for the event loop: every call runs in one I/O thread of its own,
    so fsyncs never block the loop and SQLite sees one thread."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self.depth = outbox.depth()  # last known, for heartbeats

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, fn, *args)

    async def add(self, scan: Scan) -> int:
        seq = await self._run(self.outbox.add, scan)
        self.depth = await self._run(self.outbox.depth)
        return seq

    async def set_offline(self, event_id: str, verdict: str, reason: str) -> None:
        await self._run(self.outbox.set_offline, event_id, verdict, reason)

    async def ack(self, event_ids: Iterable[str]) -> int:
        deleted = await self._run(self.outbox.ack, list(event_ids))
        self.depth = await self._run(self.outbox.depth)
        return deleted

    async def settle(self, event_id: str, decision: str) -> bool:
        stays = await self._run(self.outbox.settle, event_id, decision)
        self.depth = await self._run(self.outbox.depth)
        return stays

    async def reject(self, event_id: str, why: str) -> None:
        await self._run(self.outbox.reject, event_id, why)
        self.depth = await self._run(self.outbox.depth)

    async def pending(self, limit: int = 500) -> list[Scan]:
        return await self._run(self.outbox.pending, limit)

    def close(self) -> None:
        self._io.submit(self.outbox.close).result()
        self._io.shutdown(wait=True)
