"""The kiosk wired end to end (in process) against a fake service that follows
docs/protocol.md: frames from an injected source, real decoding, real outbox."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from checkin_core.keys import SigningKey, TrustList
from scanner.capture import SourceSpec
from scanner.kiosk import Kiosk
from scanner.kiosk_config import KioskConfig
from scanner.outbox import Outbox
from tests.cli_helpers import free_port
from tests.kiosk_helpers import FakeCapture, FakeService, blank_frame, code_frame, forge, make_pass

KEY = SigningKey.generate()
TRUST = TrustList([KEY.trusted_key()])
RNG = np.random.default_rng(42)
BLANK = blank_frame(RNG)


def shots(*texts: str | None, frames: int = 6) -> list[Any]:
    out: list[Any] = []
    for text in texts:
        image = BLANK if text is None else code_frame(text, RNG)
        out += [image] * frames
    return out + [BLANK] * 2


class Lines(io.StringIO):
    """The kiosk's stdout, with an event set on the first verdict line."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


@pytest.fixture
def service() -> FakeService:
    return FakeService(trust=TRUST)


@pytest.fixture
async def server_url(aiohttp_server: Any, service: FakeService) -> str:
    server = await aiohttp_server(service.app())
    return str(server.make_url("")).rstrip("/")


def config(server: str, data_dir: Path, **overrides: Any) -> KioskConfig:
    base = KioskConfig(
        server=server,
        token="kiosk-token",
        source=SourceSpec("file", "synthetic"),
        data_dir=data_dir,
        headless=True,
        fps=25,
        cooldown=2.0,
        ack_timeout=1.0,
        heartbeat_s=0.2,
        drain_timeout=3.0,
        startup_wait=2.0,
    )
    return replace(base, **overrides)


async def run(cfg: KioskConfig, frames: list[Any]) -> tuple[list[dict[str, Any]], Kiosk]:
    out = io.StringIO()
    kiosk = Kiosk(cfg, opener=lambda: FakeCapture(frames), out=out)
    assert await kiosk.run() == 0
    return [json.loads(line) for line in out.getvalue().splitlines()], kiosk


def pending(data_dir: Path) -> list[Any]:
    box = Outbox(data_dir / "outbox.sqlite3")
    try:
        return box.pending(limit=1000)
    finally:
        box.close()


async def test_online_verdicts_and_every_attempt_recorded(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    good = make_pass(KEY)
    lines, _ = await run(
        config(server_url, tmp_path), shots(good, forge(good), "https://example.com/menu")
    )
    got = [(v["decision"], v["reason"], v["source"], v["offline"]) for v in lines]
    assert got == [
        ("allow", "welcome", "service", False),
        ("deny", "bad_signature", "local", False),  # answered at once, not asked
        ("deny", "malformed", "local", False),
    ]
    assert lines[0]["name"] == "N. V. An"
    assert lines[0]["message_vi"] == "Mời vào"
    assert lines[1]["message_vi"] == "Mã QR giả mạo hoặc bị sửa"
    # a code held for 6 frames is one scan; the service heard all three attempts
    assert service.order == [v["event_id"] for v in lines]
    assert pending(tmp_path) == []
    assert all(v["latency_ms"] < 1000 for v in lines)
    # each verdict names the frame it came from, and the part of its latency before the scan
    numbers = [v["frame"] for v in lines]
    assert numbers == sorted(set(numbers))
    assert all(0 <= v["decode_ms"] <= v["latency_ms"] for v in lines)
    # the trust list and the gate were cached for the next start
    assert json.loads((tmp_path / "trust.json").read_text()) == TRUST.to_json()
    assert json.loads((tmp_path / "gate.json").read_text())["gate"]["id"] == 3


async def test_heartbeats_carry_the_kiosk_health(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    await run(config(server_url, tmp_path), shots(make_pass(KEY), frames=20))
    assert service.heartbeats
    beat = service.heartbeats[-1]
    assert set(beat) == {
        "type",
        "fps",
        "frames_dropped",
        "decode_attempts",
        "decode_successes",
        "queue_depth",
        "outbox_depth",
        "camera_up",
        "offline_mode",
        "frame_width",
        "frame_height",
        "camera_fps",
        "knowledge_age_s",
        "sent_at",  # the service answers it with its time: the kiosk's clock skew
        "clock_skew_ms",
    }
    assert (beat["frame_width"], beat["frame_height"]) == (480, 360)  # what the source gave
    assert 0 <= beat["knowledge_age_s"] < 5  # synced on connect, kept fresh by the socket
    assert beat["decode_attempts"] > 0
    assert beat["decode_successes"] > 0
    assert beat["offline_mode"] is False
    assert any(b["fps"] > 0 for b in service.heartbeats)


async def test_offline_deny_then_replay_in_order(
    aiohttp_server: Any, service: FakeService, tmp_path: Path
) -> None:
    port = free_port()
    dead = f"http://127.0.0.1:{port}"
    passes = [make_pass(KEY) for _ in range(3)]
    lines, _ = await run(config(dead, tmp_path), shots(*passes, "garbage"))
    assert [(v["decision"], v["reason"], v["offline"]) for v in lines] == [
        ("deny", "offline_denied", True),
        ("deny", "offline_denied", True),
        ("deny", "offline_denied", True),
        ("deny", "malformed", False),  # certain without the service
    ]
    queued = pending(tmp_path)
    assert [s.event_id for s in queued] == [v["event_id"] for v in lines]
    assert queued[0].offline == {"verdict": "deny", "reason": "offline_denied"}
    assert queued[3].offline == {"verdict": "deny", "reason": "malformed"}

    # the service comes up on that port; the kiosk restarts with nothing to scan
    await aiohttp_server(service.app(), port=port)
    lines2, _ = await run(config(dead, tmp_path), shots(None))
    assert lines2 == []
    assert service.order == [v["event_id"] for v in lines]  # replayed, in order
    assert service.batches == [service.order]  # in one batch
    assert service.recorded[lines[0]["event_id"]]["offline"] == {
        "verdict": "deny",
        "reason": "offline_denied",
    }
    assert pending(tmp_path) == []


async def test_verify_offline_uses_the_cached_trust_list_and_gate(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    service.offline_policy = "verify-offline"
    await run(config(server_url, tmp_path), shots(None))  # learn the gate and the keys
    dead = f"http://127.0.0.1:{free_port()}"
    now = datetime.now(UTC)
    expired = make_pass(KEY, start=now - timedelta(days=1), valid_for=timedelta(hours=1))
    lines, _ = await run(
        config(dead, tmp_path),
        shots(make_pass(KEY, site_id=1), make_pass(KEY, site_id=7), expired),
    )
    assert [(v["decision"], v["reason"], v["offline"]) for v in lines] == [
        ("allow", "offline_allowed", True),
        ("deny", "wrong_site", True),
        ("deny", "expired", True),
    ]
    assert lines[0]["message_vi"] == "Mời vào (kiểm tra ngoại tuyến)"


async def test_offline_policy_flag_overrides_the_gate(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    service.offline_policy = "verify-offline"
    await run(config(server_url, tmp_path), shots(None))
    dead = f"http://127.0.0.1:{free_port()}"
    lines, _ = await run(config(dead, tmp_path, offline_policy="deny"), shots(make_pass(KEY)))
    assert [v["reason"] for v in lines] == ["offline_denied"]


async def test_a_slow_answer_is_judged_offline_and_kept_until_acked(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    service.delay = 0.8
    lines, _ = await run(config(server_url, tmp_path, ack_timeout=0.3), shots(make_pass(KEY)))
    assert [(v["reason"], v["offline"]) for v in lines] == [("offline_denied", True)]
    assert 300 <= lines[0]["latency_ms"] < 800
    # the late decision arrived while draining: acknowledged, gone from the outbox
    assert service.order == [lines[0]["event_id"]]
    assert pending(tmp_path) == []


async def test_service_unavailable_keeps_the_scan_for_later(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    service.unavailable = True
    lines, _ = await run(config(server_url, tmp_path, drain_timeout=0.5), shots(make_pass(KEY)))
    assert [(v["reason"], v["offline"]) for v in lines] == [("offline_denied", True)]
    assert [s.event_id for s in pending(tmp_path)] == [lines[0]["event_id"]]
    service.unavailable = False
    await run(config(server_url, tmp_path), shots(None))
    assert service.order == [lines[0]["event_id"]]
    assert pending(tmp_path) == []


async def test_scans_after_a_service_unavailable_wait_their_turn(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    # The first scan meets a database blip and is judged offline; the ones after it
    # must not overtake it: the record keeps the order in which the door saw them.
    service.blips = 1
    passes = [make_pass(KEY) for _ in range(3)]
    lines, _ = await run(config(server_url, tmp_path), shots(*passes))
    assert [(v["reason"], v["offline"]) for v in lines] == [
        ("offline_denied", True),
        ("welcome", False),
        ("welcome", False),
    ]
    assert service.order == [v["event_id"] for v in lines]
    assert service.recorded[lines[0]["event_id"]]["offline"] == {
        "verdict": "deny",
        "reason": "offline_denied",
    }
    assert pending(tmp_path) == []
    assert service.batches[0][0] == lines[0]["event_id"]  # it went first, replayed
    assert service.heartbeats[-1]["offline_mode"] is False  # then the link went live again


async def first_offline_then_welcome(
    server_url: str, service: FakeService, tmp_path: Path, ack_timeout: float
) -> None:
    """Two passes in a row; the first judged offline (by the service's knobs), the
    second answered: both recorded in the order they were taken, nothing left over."""
    passes = [make_pass(KEY) for _ in range(2)]
    lines, _ = await run(config(server_url, tmp_path, ack_timeout=ack_timeout), shots(*passes))
    assert [(v["reason"], v["offline"]) for v in lines] == [
        ("offline_denied", True),
        ("welcome", False),
    ]
    assert service.order == [v["event_id"] for v in lines]
    assert pending(tmp_path) == []


async def test_a_scan_taken_while_another_is_in_flight_never_overtakes_it(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    # The first scan's answer is slow, and a blip: the service records nothing of it.
    # The second, taken meanwhile, must wait for that answer rather than go ahead on
    # the socket (answered at once) and be recorded before the first's replay.
    service.blips, service.delays = 1, [0.4]
    await first_offline_then_welcome(server_url, service, tmp_path, ack_timeout=2.0)
    assert service.batches == [service.order]  # the second rode behind the first's replay


async def test_scans_held_behind_an_unanswered_one_go_once_it_is_judged_offline(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    # No answer to the first scan before the kiosk stops waiting: it is judged offline
    # and replayed with that verdict, and the second, held behind it, goes right after
    # (not after the link's retry interval, by when it too would be judged offline).
    service.delays = [5.0]
    await first_offline_then_welcome(server_url, service, tmp_path, ack_timeout=0.5)


async def test_the_same_code_after_the_cooldown_is_a_new_scan(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    good = make_pass(KEY)
    # at 50 fps: held 0.5 s, away 0.1 s (a glance away: same scan), back 0.5 s; then
    # away 1.2 s and back: a new scan
    frames = shots(good, frames=25) + [BLANK] * 5 + shots(good, frames=25)
    frames += [BLANK] * 60 + shots(good, frames=10)
    lines, _ = await run(config(server_url, tmp_path, cooldown=1.0, fps=50), frames)
    assert [v["reason"] for v in lines] == ["welcome", "welcome"]
    assert len(service.order) == 2


async def test_door_hooks_run_without_a_shell(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    log = tmp_path / "door.log"
    script = (
        "import os, sys; open(sys.argv[1], 'a').write("
        "os.environ['CHECKIN_DECISION'] + ' ' + os.environ['CHECKIN_REASON'] + chr(10))"
    )
    hook = f'{sys.executable} -c "{script}" {log}'
    lines, _ = await run(
        config(server_url, tmp_path / "data", on_allow=hook, on_deny=hook),
        shots(make_pass(KEY), "garbage"),
    )
    assert len(lines) == 2
    assert sorted(log.read_text().splitlines()) == ["allow welcome", "deny malformed"]


async def test_a_camera_unplugged_and_back_is_reported_and_resumes(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    good = make_pass(KEY)
    captures = [FakeCapture(shots(None) + [None] * 10), FakeCapture([], opened=False)]
    captures.append(FakeCapture(shots(good)))  # plugged back, a pass in view

    def opener() -> FakeCapture:
        return captures.pop(0) if captures else FakeCapture([], opened=False)

    out = Lines()
    cfg = config(server_url, tmp_path, source=SourceSpec("camera", 0), heartbeat_s=0.1)
    kiosk = Kiosk(cfg, opener=opener, out=out)
    task = asyncio.create_task(kiosk.run())
    async with asyncio.timeout(15):
        await out.written.wait()
    kiosk.stop.set()
    assert await task == 0
    [line] = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["reason"] == "welcome"
    states = [b["camera_up"] for b in service.heartbeats]
    assert False in states  # the service heard the camera was gone
    assert states[states.index(False) :].count(True) > 0  # and that it came back


async def test_sigterm_stops_cleanly_and_keeps_the_outbox(tmp_path: Path) -> None:
    folder = tmp_path / "cam"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), code_frame(make_pass(KEY), RNG))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanner",
        "--headless",
        "--server",
        f"http://127.0.0.1:{free_port()}",
        "--token",
        "kiosk-token",
        "--source",
        str(folder),
        "--loop",
        "--fps",
        "10",
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = json.loads(await proc.stdout.readline())
    assert line["reason"] == "offline_denied"
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "stopped; 1 scan(s) wait in the outbox" in err.decode()
    assert [s.event_id for s in pending(tmp_path / "data")] == [line["event_id"]]


async def test_a_key_the_kiosk_does_not_know_yet_is_left_to_the_service(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    new_key = SigningKey.generate()  # rotated in; the kiosk's list is older
    service.trust = TrustList([KEY.trusted_key(), new_key.trusted_key()])
    service.published = TRUST
    lines, _ = await run(config(server_url, tmp_path), shots(make_pass(new_key)))
    assert [(v["reason"], v["source"]) for v in lines] == [("welcome", "service")]


async def test_the_socket_reconnects_after_the_service_drops_it(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    service.drop_after = 1
    frames = shots(make_pass(KEY)) + [BLANK] * 25 + shots(make_pass(KEY))
    lines, kiosk = await run(config(server_url, tmp_path), frames)
    assert [(v["reason"], v["source"]) for v in lines] == [("welcome", "service")] * 2
    assert service.sockets >= 2
    assert kiosk.link.connects >= 2
    assert service.order == [v["event_id"] for v in lines]
