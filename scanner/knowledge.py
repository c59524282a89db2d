"""What the kiosk knows, to decide well while the service cannot be reached.

A copy of the site's refusals that a pass does not show by itself (revoked or
superseded passes, passes of people on the deny list or suspended by the health desk,
each with the door's reason), and the door rules applied offline. It comes from
``GET /api/v1/kiosk/sync`` and the socket's ``knowledge`` messages
(docs/protocol.md), and lives in SQLite beside the outbox, so it survives a restart
made while offline.

The copy's age is how long ago it was last known complete: the last pull, or the
last heartbeat on a socket that has pushed every change since that pull. Past the
site's ``max_offline_age_s`` the kiosk denies everyone offline (``offline_stale``), as
it does with no copy at all: fail secure.

Reads are in memory (the door path); writes are small and rare (a change, a
heartbeat), one statement each, on the caller's thread.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS refused (
    pass_id     TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    not_after   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
"""
DEFAULT_MAX_AGE_S = 24 * 3600
DEFAULT_REPEAT_S = 120.0


@dataclass(frozen=True)
class Cursor:
    """Where the copy stands in the service's event log: ``"<site seq>.<global seq>"``."""

    site_seq: int
    global_seq: int

    @classmethod
    def parse(cls, raw: Any) -> Cursor | None:
        try:
            site, glob = str(raw).split(".")
            return cls(int(site), int(glob))
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"{self.site_seq}.{self.global_seq}"

    def covers(self, other: Cursor) -> bool:
        return self.site_seq >= other.site_seq and self.global_seq >= other.global_seq


class Knowledge:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # No fsync per write (on the kiosk's loop): a power cut may lose the last
        # change, and the copy then pulls it again from its older cursor.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self.refused: dict[str, str] = dict(
            self._db.execute("SELECT pass_id, reason FROM refused").fetchall()
        )
        facts = dict(self._db.execute("SELECT key, value FROM facts").fetchall())
        self.cursor = Cursor.parse(facts.get("cursor"))
        self.synced_at = _time(facts.get("synced_at"))
        self.rules: dict[str, Any] = json.loads(facts.get("rules", "{}"))
        self.site_id: str | None = facts.get("site_id")
        self._seen: dict[str, datetime] = {}  # pass -> last offline allow at this door

    def close(self) -> None:
        self._db.close()

    # --- what the service says --------------------------------------------------------

    def fits(self, msg: Mapping[str, Any]) -> bool | None:
        """Whether a pushed message applies to this copy: True, None when it is already
        in it, False when the copy must be pulled instead (a gap)."""
        new, start = Cursor.parse(msg.get("cursor")), Cursor.parse(msg.get("from"))
        if new is None:
            return False
        if self.cursor is not None and self.cursor.covers(new):
            return None
        if self.cursor is not None and not new.covers(self.cursor):
            return False  # read before something this copy has: it could undo it
        if msg.get("snapshot"):
            return True
        return start is not None and self.cursor is not None and self.cursor.covers(start)

    def apply(self, msg: Mapping[str, Any], *, now: datetime) -> None:
        """Take an answer of the sync endpoint (or a fitting push); raise ValueError
        on one of the wrong shape, leaving the copy as it was."""
        cursor = Cursor.parse(msg.get("cursor"))
        if cursor is None:
            raise ValueError(f"bad cursor {msg.get('cursor')!r}")
        try:
            changes = [
                (str(c["pass_id"]), c["reason"], str(c["not_after"])) for c in msg["changes"]
            ]
            rules = dict(msg["rules"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"bad knowledge message: {e!r}") from e
        snapshot = bool(msg.get("snapshot"))
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if snapshot:
                db.execute("DELETE FROM refused")
            db.executemany(
                "DELETE FROM refused WHERE pass_id = ?", [(p,) for p, r, _ in changes if r is None]
            )
            db.executemany(
                "INSERT OR REPLACE INTO refused (pass_id, reason, not_after) VALUES (?, ?, ?)",
                [(p, str(r), n) for p, r, n in changes if r is not None],
            )
            db.execute("DELETE FROM refused WHERE not_after < ?", (_iso(now - timedelta(days=1)),))
            site = str(msg["site_id"]) if msg.get("site_id") is not None else self.site_id
            self._put({"cursor": str(cursor), "rules": json.dumps(rules), "synced_at": _iso(now)})
            if site is not None:
                self._put({"site_id": site})
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if snapshot:
            self.refused.clear()
        for pass_id, reason, _ in changes:
            if reason is None:
                self.refused.pop(pass_id, None)
            else:
                self.refused[pass_id] = str(reason)
        self.cursor, self.rules, self.synced_at, self.site_id = cursor, rules, now, site

    def moved(self, site_id: int) -> None:
        """The kiosk's gate is now at this site: a copy of another is no use, and its
        cursor means nothing here. The next pull answers the whole copy."""
        if self.site_id is not None and self.site_id != str(site_id):
            logger.warning("the kiosk moved to site %s: its offline copy is dropped", site_id)
            self._db.execute("DELETE FROM facts WHERE key IN ('cursor', 'synced_at')")
            self._db.execute("DELETE FROM refused")
            self.cursor = self.synced_at = None
            self.refused.clear()

    def touch(self, now: datetime) -> None:
        """The copy is still complete (the socket that pushes every change is up)."""
        if self.cursor is not None:
            self._put({"synced_at": _iso(now)})
            self.synced_at = now

    def _put(self, facts: Mapping[str, str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO facts (key, value) VALUES (?, ?)", list(facts.items())
        )

    # --- the door, offline ------------------------------------------------------------

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the copy was last known complete; None: there is none."""
        if self.synced_at is None:
            return None
        return max(0.0, (now - self.synced_at).total_seconds())

    @property
    def max_age_s(self) -> float:
        return float(self.rules.get("max_offline_age_s", DEFAULT_MAX_AGE_S))

    def printed_rule(self, told_at_hello: str) -> str:
        """The site's rule for printed passes: the copy's (kept current by sync), else
        what the last hello said."""
        return str(self.rules.get("static_pass", told_at_hello))

    def refusal(self, pass_id: str, *, now: datetime, direction: str | None) -> str | None:
        """The reason to deny a genuine, valid pass offline, or None to let it through
        (then remembered, so that the same pass again at this door soon is refused)."""
        age = self.age_s(now)
        if age is None or age > self.max_age_s:
            return "offline_stale"
        reason = self.refused.get(pass_id)
        if reason is not None and direction != "out":  # exits are never refused for it
            return reason
        last = self._seen.get(pass_id)
        window = float(self.rules.get("repeat_window_s", DEFAULT_REPEAT_S))
        if last is not None and (now - last).total_seconds() < window:
            return "offline_repeat"
        self._seen[pass_id] = now
        return None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _time(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        logger.warning("ignoring an unreadable sync time %r", raw)
        return None
