"""scanner.outbox: durable before sent, gone only when acked, survives kill -9."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.outbox import AsyncOutbox, Outbox, Scan

NOW = datetime(2021, 10, 9, 3, 0, 0, 123000, tzinfo=UTC)


def scan(payload: str = "CG1:X") -> Scan:
    return Scan.new(payload, seen_at=NOW)


def test_scan_message_has_the_protocol_shape() -> None:
    s = scan()
    assert s.to_message() == {
        "event_id": s.event_id,
        "payload": "CG1:X",
        "seen_at": "2021-10-09T03:00:00.123+00:00",
        "direction": None,
    }
    offline = Scan(s.event_id, s.payload, s.seen_at, offline={"verdict": "deny", "reason": "x"})
    assert offline.to_message()["offline"] == {"verdict": "deny", "reason": "x"}


def test_pending_in_order_until_acked(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    scans = [scan(f"CG1:{i}") for i in range(5)]
    for s in scans:
        box.add(s)
    assert box.pending() == scans
    assert box.ack([scans[1].event_id, scans[3].event_id, "not-there"]) == 2
    assert box.pending() == [scans[0], scans[2], scans[4]]
    assert box.pending(limit=1) == [scans[0]]
    assert box.depth() == 3


def test_uses_wal_and_full_sync(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_offline_verdict_is_kept_for_the_replay(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    s = scan()
    box.add(s)
    box.set_offline(s.event_id, "allow", "offline_allowed")
    box.close()
    [again] = Outbox(tmp_path / "o.sqlite3").pending()
    assert again.offline == {"verdict": "allow", "reason": "offline_allowed"}


def test_rejected_scans_are_parked_not_lost(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    a, b = scan("CG1:A"), scan("CG1:B")
    box.add(a)
    box.add(b)
    box.reject(a.event_id, "422")
    assert box.pending() == [b]
    assert box.depth() == 1
    assert box._db.execute("SELECT count(*) FROM scans").fetchone()[0] == 2


def test_an_event_id_is_stored_once(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    s = scan()
    box.add(s)
    with pytest.raises(sqlite3.IntegrityError):
        box.add(s)


async def test_async_outbox_runs_off_the_loop(tmp_path: Path) -> None:
    box = AsyncOutbox(Outbox(tmp_path / "o.sqlite3"))
    s = scan()
    await asyncio.gather(box.add(s), box.add(scan()))
    assert box.depth == 2
    assert await box.ack([s.event_id]) == 1
    assert box.depth == 1
    assert len(await box.pending()) == 1
    box.close()


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from scanner.outbox import Outbox, Scan

    box = Outbox(Path(sys.argv[1]))
    mode = sys.argv[2]
    if mode == "add":
        while True:
            s = Scan.new("CG1:" + "A" * 146, seen_at=datetime.now(UTC))
            box.add(s)
            print(s.event_id, flush=True)
    else:
        for s in box.pending(limit=100000):
            box.ack([s.event_id])
            print(s.event_id, flush=True)
        print("done", flush=True)
    """
)


def run_and_kill(path: Path, mode: str, lines: int) -> list[str]:
    """Run the writer, read ``lines`` committed ids from it, then kill -9 it mid-write."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    seen = [proc.stdout.readline().strip() for _ in range(lines)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    seen += [line.strip() for line in proc.stdout]  # printed before the kill landed
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return [s for s in seen if s and s != "done"]


def test_kill_minus_9_while_adding_loses_no_committed_scan(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    committed = run_and_kill(path, "add", 40)
    box = Outbox(path)
    assert box._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = [s.event_id for s in box.pending(limit=100000)]
    # every scan the writer saw committed is there, in order; at most the one being
    # written when the kill landed is there too
    assert stored[: len(committed)] == committed
    assert len(stored) - len(committed) <= 1
    box.add(scan())  # and the outbox goes on working
    assert box.depth() == len(stored) + 1


def test_kill_minus_9_while_acking_forgets_only_acked_scans(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    scans = [scan(f"CG1:{i}") for i in range(300)]
    for s in scans:
        box.add(s)
    box.close()
    acked = run_and_kill(path, "ack", 30)
    left = [s.event_id for s in Outbox(path).pending(limit=1000)]
    assert left, "the kill should land mid-way"
    ids = [s.event_id for s in scans]
    assert not set(acked) & set(left)
    # what is left is a suffix of the original order: nothing unacked vanished
    assert left == ids[len(ids) - len(left) :]
    assert len(ids) - len(left) - len(acked) in (0, 1)
