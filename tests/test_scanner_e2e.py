"""The real kiosk (``python -m scanner --headless`` in a subprocess) against the real
service (the app on a loopback port, a fresh database), on synthetic videos."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import statistics
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from checkin_core.keys import SigningKey
from service.web.auth import Role
from tests.cli_helpers import free_port
from tests.factory import Factory
from tests.kiosk_helpers import Look, Shot, forge, write_video

ROOT = Path(__file__).resolve().parent.parent
FPS = 10.0


@dataclass
class KioskProcess:
    """``python -m scanner --headless`` with its verdict lines and its log."""

    proc: asyncio.subprocess.Process
    log: Path
    lines: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def start(
        cls, server: str, token: str, source: Path, data_dir: Path, *extra: str
    ) -> KioskProcess:
        log = data_dir.with_name(data_dir.name + f"-{uuid.uuid4().hex[:6]}.log")
        err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "scanner",
                "--headless",
                "--server",
                server,
                "--source",
                str(source),
                "--data-dir",
                str(data_dir),
                "--heartbeat",
                "1",
                *extra,
                cwd=ROOT,
                env=os.environ | {"CHECKIN_KIOSK_TOKEN": token},
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        finally:
            os.close(err)
        return cls(proc, log)

    async def read(self, n: int, limit_s: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``n`` verdict lines have been printed."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(limit_s):
                while len(self.lines) < n:
                    line = await self.proc.stdout.readline()
                    assert line, f"kiosk exited early:\n{self.log.read_text()[-3000:]}"
                    self.lines.append(json.loads(line))
        except BaseException:
            await self.kill()  # no kiosk outlives the test that failed with it
            raise
        return self.lines

    async def finish(self, limit_s: float = 60.0) -> list[dict[str, Any]]:
        """Wait for the kiosk to exit by itself (its source ended); all its lines."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(limit_s):
                async for line in self.proc.stdout:
                    self.lines.append(json.loads(line))
                code = await self.proc.wait()
        except BaseException:
            await self.kill()
            raise
        assert code == 0, self.log.read_text()[-3000:]
        return self.lines

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()


@dataclass
class Gate:
    site_id: int
    gate_id: int
    token: str
    key: SigningKey


@pytest.fixture
async def gate(factory: Factory, conn: asyncpg.Connection) -> Gate:
    site_id = await factory.site()
    gate_id = await factory.gate(site_id, name="Cổng chính — vào", direction="entrance")
    token = await factory.token(Role.KIOSK, gate_id=gate_id)
    return Gate(site_id, gate_id, token, await factory.signing_key())


@pytest.fixture
async def port() -> int:
    return free_port()


@pytest.fixture
async def service(aiohttp_server: Any, app: web.Application, port: int) -> AsyncIterator[str]:
    server = await aiohttp_server(app, port=port)
    yield str(server.make_url("")).rstrip("/")


async def scan_events(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT event_id, decision, reason, detail FROM events WHERE kind = 'scan' ORDER BY id"
        )
    )


def outbox_ids(data_dir: Path) -> list[str]:
    db = sqlite3.connect(data_dir / "outbox.sqlite3")
    try:
        return [r[0] for r in db.execute("SELECT event_id FROM scans ORDER BY seq")]
    finally:
        db.close()


async def test_video_through_the_kiosk_and_the_service(
    service: str, gate: Gate, factory: Factory, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    payloads = [(await factory.issued_pass(gate.key, gate.site_id))[1] for _ in range(3)]
    now = datetime.now(UTC).replace(microsecond=0)
    _, expired = await factory.issued_pass(
        gate.key,
        gate.site_id,
        not_before=now - timedelta(days=2),
        not_after=now - timedelta(days=1),
    )
    gap = Shot(None, 0.4)
    video = write_video(
        tmp_path / "door.avi",
        [
            gap,
            Shot(payloads[0], 1.2, Look(tilt=0.2, blur=0.8)),  # held: one scan
            gap,
            Shot(payloads[1], 0.8, Look(noise=10, glare=True)),
            gap,
            Shot(payloads[2], 0.8, Look(dim=0.45, blur=0.8)),
            gap,
            Shot(forge(payloads[0]), 0.8),
            gap,
            Shot(expired, 0.8, Look(tilt=0.15)),
            Shot(None, 1.3),  # longer than the cooldown
            Shot(payloads[0], 0.8),  # again: a new scan, and the person is inside
            gap,
        ],
        fps=FPS,
    )
    kiosk = await KioskProcess.start(service, gate.token, video, tmp_path / "k", "--cooldown", "1")
    lines = await kiosk.finish()
    got = [(v["decision"], v["reason"], v["offline"]) for v in lines]
    assert got == [
        ("allow", "welcome", False),
        ("allow", "welcome", False),
        ("allow", "welcome", False),
        ("deny", "bad_signature", False),  # said by the kiosk at once
        ("deny", "expired", False),
        ("deny", "already_inside", False),
    ]
    assert lines[0]["name"] and lines[0]["name"].startswith("N. V.")
    assert lines[4]["message_vi"] == "Mã QR đã hết hạn; vui lòng khai báo lại"
    # every attempt is recorded once, the forgery too; nothing is left in the outbox
    events = await scan_events(conn)
    assert [str(e["event_id"]) for e in events] == [v["event_id"] for v in lines]
    assert [e["reason"] for e in events] == [v["reason"] for v in lines]
    assert outbox_ids(tmp_path / "k") == []
    beat = await conn.fetchval("SELECT report FROM kiosk_health")
    assert beat["decode_attempts"] > 0 and beat["offline_mode"] is False
    # The service was up from the start: "connecting", then "online", never "offline".
    log = kiosk.log.read_text()
    assert "offline mode" not in log
    assert log.index("connecting") < log.index("online")
    latencies = [v["latency_ms"] for v in lines if v["source"] == "service"]
    print(
        f"\nscan-to-verdict at the kiosk, service answers: median "
        f"{statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms"
    )
    assert max(latencies) < 1500  # never fell back to the offline timeout


async def test_kill_minus_9_mid_stream_loses_and_duplicates_nothing(
    service: str, gate: Gate, factory: Factory, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    payloads = [(await factory.issued_pass(gate.key, gate.site_id))[1] for _ in range(6)]
    shots = [s for p in payloads for s in (Shot(p, 0.6), Shot(None, 0.3))]
    video = write_video(tmp_path / "queue.avi", shots, fps=FPS)
    data = tmp_path / "k"
    kiosk = await KioskProcess.start(service, gate.token, video, data)
    await kiosk.read(3)
    await kiosk.kill()
    recorded = {str(e["event_id"]) for e in await scan_events(conn)}
    queued = set(outbox_ids(data))  # written before sending; maybe sent, maybe not
    assert {v["event_id"] for v in kiosk.lines} <= recorded | queued

    blank = write_video(tmp_path / "blank.avi", [Shot(None, 1.0)], fps=FPS)
    again = await KioskProcess.start(service, gate.token, blank, data)
    assert await again.finish() == []
    events = await scan_events(conn)
    ids = [str(e["event_id"]) for e in events]
    assert len(ids) == len(set(ids))
    assert set(ids) == recorded | queued  # exactly once each
    assert outbox_ids(data) == []


async def test_offline_then_online_replays_in_order(
    aiohttp_server: Any,
    app: web.Application,
    port: int,
    gate: Gate,
    factory: Factory,
    conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    payloads = [(await factory.issued_pass(gate.key, gate.site_id))[1] for _ in range(3)]
    shots = [s for p in [*payloads, "https://example.com"] for s in (Shot(p, 0.6), Shot(None, 0.3))]
    video = write_video(tmp_path / "outage.avi", shots, fps=FPS)
    data = tmp_path / "k"
    url = f"http://127.0.0.1:{port}"  # nothing listens there yet
    kiosk = await KioskProcess.start(url, gate.token, video, data)
    lines = await kiosk.finish()
    assert [(v["reason"], v["offline"]) for v in lines] == [
        ("offline_denied", True),  # no gate cached yet: fail secure
        ("offline_denied", True),
        ("offline_denied", True),
        ("malformed", False),
    ]
    assert outbox_ids(data) == [v["event_id"] for v in lines]
    assert await scan_events(conn) == []

    await aiohttp_server(app, port=port)
    blank = write_video(tmp_path / "blank.avi", [Shot(None, 1.0)], fps=FPS)
    assert await (await KioskProcess.start(url, gate.token, blank, data)).finish() == []
    events = await scan_events(conn)
    assert [str(e["event_id"]) for e in events] == [v["event_id"] for v in lines]
    # the door stayed shut: that is what the record says, with the service's own view
    assert [e["decision"] for e in events] == ["deny"] * 4
    detail = _detail(events[0])
    assert detail["offline"] == {"verdict": "deny", "reason": "offline_denied"}
    assert detail["server_verdict"]["decision"] == "allow"
    assert outbox_ids(data) == []


async def test_kill_minus_9_with_scans_the_service_committed_but_never_acked(
    service: str,
    gate: Gate,
    factory: Factory,
    conn: asyncpg.Connection,
    db_url: str,
    tmp_path: Path,
) -> None:
    """The hard case: the service commits scans after the kiosk gave up waiting and
    died; the restarted kiosk replays them and the service records each once."""
    payloads = [(await factory.issued_pass(gate.key, gate.site_id))[1] for _ in range(4)]
    shots = [s for p in payloads for s in (Shot(p, 0.6), Shot(None, 0.3))]
    video = write_video(tmp_path / "queue.avi", shots, fps=FPS)
    data = tmp_path / "k"
    locker = await asyncpg.connect(db_url)
    try:
        # Hold the site's event chain: every scan commit waits behind this lock.
        tx = locker.transaction()
        await tx.start()
        await locker.execute(
            "SELECT 1 FROM event_chains WHERE chain_id = $1 FOR UPDATE", gate.site_id
        )
        kiosk = await KioskProcess.start(service, gate.token, video, data, "--ack-timeout", "0.5")
        lines = await kiosk.read(2)
        await kiosk.kill()
        assert [(v["reason"], v["offline"]) for v in lines] == [("offline_denied", True)] * 2
        queued = outbox_ids(data)
        assert [v["event_id"] for v in lines] == queued[:2]
        await tx.rollback()  # the service now commits what it had received
    finally:
        await locker.close()

    blank = write_video(tmp_path / "blank.avi", [Shot(None, 1.0)], fps=FPS)
    again = await KioskProcess.start(service, gate.token, blank, data)
    assert await again.finish() == []
    events = await scan_events(conn)
    assert [str(e["event_id"]) for e in events] == queued  # once each, in order
    # the first was committed from the live send, before the replay: the replay was a
    # duplicate to the service, and only its acknowledgement emptied the outbox
    assert "offline" not in _detail(events[0])
    assert outbox_ids(data) == []


def _detail(event: asyncpg.Record) -> dict[str, Any]:
    detail = event["detail"]
    return dict(json.loads(detail) if isinstance(detail, str) else detail)


async def test_verify_offline_gate_lets_valid_passes_in_and_the_record_says_so(
    service: str, gate: Gate, factory: Factory, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await conn.execute(
        "UPDATE gates SET offline_policy = 'verify-offline' WHERE id = $1", gate.gate_id
    )
    _, good = await factory.issued_pass(gate.key, gate.site_id)
    other_site = await factory.site()
    _, elsewhere = await factory.issued_pass(gate.key, other_site)
    data = tmp_path / "k"
    blank = write_video(tmp_path / "blank.avi", [Shot(None, 0.5)], fps=FPS)
    await (await KioskProcess.start(service, gate.token, blank, data)).finish()  # learn it all

    video = write_video(
        tmp_path / "outage.avi",
        [Shot(good, 0.6), Shot(None, 0.3), Shot(elsewhere, 0.6), Shot(None, 0.3)],
        fps=FPS,
    )
    unreachable = f"http://127.0.0.1:{free_port()}"
    lines = await (await KioskProcess.start(unreachable, gate.token, video, data)).finish()
    assert [(v["decision"], v["reason"], v["offline"]) for v in lines] == [
        ("allow", "offline_allowed", True),
        ("deny", "wrong_site", True),
    ]
    assert await scan_events(conn) == []

    assert await (await KioskProcess.start(service, gate.token, blank, data)).finish() == []
    events = await scan_events(conn)
    assert [(str(e["event_id"]), e["decision"]) for e in events] == [
        (lines[0]["event_id"], "allow"),  # the door opened: that is the record
        (lines[1]["event_id"], "deny"),
    ]
    assert _detail(events[0])["offline"] == {"verdict": "allow", "reason": "offline_allowed"}
    assert "offline_against_policy" not in _detail(events[0])  # as the gate's policy says
    assert outbox_ids(data) == []


async def test_a_kiosk_opening_a_deny_gate_offline_is_flagged_when_it_replays(
    service: str, gate: Gate, factory: Factory, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """The gate says deny offline; its kiosk was started with verify-offline anyway."""
    _, good = await factory.issued_pass(gate.key, gate.site_id)
    data = tmp_path / "k"
    blank = write_video(tmp_path / "blank.avi", [Shot(None, 0.5)], fps=FPS)
    await (await KioskProcess.start(service, gate.token, blank, data)).finish()  # learn it all

    video = write_video(tmp_path / "outage.avi", [Shot(good, 0.6), Shot(None, 0.3)], fps=FPS)
    unreachable = f"http://127.0.0.1:{free_port()}"
    override = ("--offline-policy", "verify-offline")
    kiosk = await KioskProcess.start(unreachable, gate.token, video, data, *override)
    lines = await kiosk.finish()
    assert [(v["decision"], v["offline"]) for v in lines] == [("allow", True)]

    assert await (await KioskProcess.start(service, gate.token, blank, data)).finish() == []
    (event,) = await scan_events(conn)
    assert (str(event["event_id"]), event["decision"]) == (lines[0]["event_id"], "allow")
    assert _detail(event)["offline_against_policy"] == "gate_policy_deny"
    assert outbox_ids(data) == []
