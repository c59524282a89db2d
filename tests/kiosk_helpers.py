"""Helpers for the kiosk tests: passes, synthetic frames and videos, a fake service."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from aiohttp import WSMsgType, web

from checkin_core.keys import SigningKey, TrustList
from checkin_core.passes import issue_pass, verify_pass
from checkin_core.reasons import message
from tests import frames
from tests.frames import Frame, place

W, H = 480, 360  # small frames: the machine is shared


def make_pass(
    key: SigningKey,
    *,
    site_id: int = 1,
    pass_id: uuid.UUID | None = None,
    valid_for: timedelta = timedelta(hours=8),
    start: datetime | None = None,
) -> str:
    start = start or datetime.now(UTC) - timedelta(minutes=5)
    return issue_pass(
        key,
        pass_id=pass_id or uuid.uuid4(),
        site_id=site_id,
        not_before=start,
        not_after=start + valid_for,
    )


def forge(payload: str) -> str:
    """The same pass with one signature character changed (still valid base45)."""
    i = len(payload) - 10
    c = payload[i]
    return payload[:i] + ("1" if c != "1" else "2") + payload[i + 1 :]


def qr_image(text: str, module: int = 3) -> Frame:
    return frames.qr_image(text, module)


def blank(rng: np.random.Generator, level: int = 140) -> Frame:
    frame = np.full((H, W), level, np.uint8)
    for _ in range(4):
        x, y = int(rng.integers(0, W - 80)), int(rng.integers(0, H - 40))
        cv2.rectangle(frame, (x, y), (x + 70, y + 35), int(rng.integers(40, 220)), -1)
    return frame


@dataclass(frozen=True)
class Look:
    """How a code appears in a frame: tilt, blur, noise, glare, dim contrast."""

    tilt: float = 0.0  # perspective: fraction of the side the far edge shrinks
    blur: float = 0.0  # Gaussian sigma in pixels
    noise: float = 0.0  # Gaussian sigma in grey levels
    glare: bool = False
    dim: float = 1.0  # contrast factor (< 1: washed out)


def code_frame(text: str, rng: np.random.Generator, look: Look = Look()) -> Frame:
    """A BGR frame with the code for ``text`` roughly in the middle."""
    code = qr_image(text)
    side = 230.0
    x, y = (W - side) / 2 + rng.uniform(-20, 20), (H - side) / 2 + rng.uniform(-10, 10)
    shrink = side * look.tilt / 2
    quad = [(x, y + shrink), (x + side, y), (x + side, y + side), (x, y + side - shrink)]
    frame: npt.NDArray[np.float64] = place(blank(rng), code, quad).astype(np.float64)
    if look.dim != 1.0:
        frame = 128 + (frame - 128) * look.dim
    if look.glare:
        yy, xx = np.mgrid[0:H, 0:W]
        cx, cy = x + side * 0.7, y + side * 0.3
        frame += 120 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 35.0**2))
    if look.blur:
        frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), look.blur), np.float64)
    if look.noise:
        frame += rng.normal(0, look.noise, frame.shape)
    gray = np.clip(frame, 0, 255).astype(np.uint8)
    return np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), np.uint8)


def blank_frame(rng: np.random.Generator) -> Frame:
    return np.asarray(cv2.cvtColor(blank(rng), cv2.COLOR_GRAY2BGR), np.uint8)


@dataclass(frozen=True)
class Shot:
    """``seconds`` of video showing ``text`` (None: no code)."""

    text: str | None
    seconds: float
    look: Look = Look()


def write_video(path: Path, shots: Sequence[Shot], *, fps: float = 10.0, seed: int = 42) -> Path:
    """A short MJPG AVI: each shot's code held in view for its duration."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (W, H))
    if not writer.isOpened():
        raise RuntimeError("cv2.VideoWriter cannot write MJPG here")
    try:
        for shot in shots:
            for _ in range(max(1, round(shot.seconds * fps))):
                if shot.text is None:
                    writer.write(blank_frame(rng))
                else:
                    writer.write(code_frame(shot.text, rng, shot.look))
    finally:
        writer.release()
    return path


class FakeCapture:
    """A VideoSource over a list of frames; ``None`` in the list is a failed read."""

    def __init__(self, frames: Sequence[Frame | None], *, opened: bool = True) -> None:
        self.frames = list(frames)
        self.opened = opened
        self.released = False
        self.asked: dict[int, float] = {}  # what set() was asked
        self._i = 0

    def isOpened(self) -> bool:  # OpenCV's name
        return self.opened

    def read(self) -> tuple[bool, Any]:
        if self._i >= len(self.frames):
            return False, None
        frame = self.frames[self._i]
        self._i += 1
        return (frame is not None), frame

    def get(self, prop_id: int) -> float:
        return 0.0

    def set(self, prop_id: int, value: float) -> bool:
        self.asked[prop_id] = value
        return True

    def release(self) -> None:
        self.released = True


# --- a fake service: the kiosk protocol of docs/protocol.md, decisions from verify_pass


@dataclass
class FakeService:
    """Judges scans with verify_pass alone; knobs for delays and outages."""

    trust: TrustList
    site_id: int = 1
    offline_policy: str = "deny"
    delay: float = 0.0  # seconds before answering a scan (a blip too)
    delays: list[float] = field(default_factory=list)  # the next live scans', before delay
    unavailable: bool = False  # answer service_unavailable, record nothing
    blips: int = 0  # answer the next this many live scans service_unavailable (a blip)
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> scan
    order: list[str] = field(default_factory=list)  # event ids in the order recorded
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)
    sockets: int = 0
    published: TrustList | None = None  # what /api/v1/keys says, if not ``trust``
    drop_after: int | None = None  # close each socket after this many decisions
    # GET /api/v1/kiosk/sync: the whole copy each time (pass id -> reason), its rules
    refused: dict[str, str] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    syncs: list[str | None] = field(default_factory=list)  # the cursors asked after

    def decide(self, scan: dict[str, Any]) -> dict[str, Any]:
        event_id = scan["event_id"]
        duplicate = event_id in self.recorded
        if not duplicate:
            self.recorded[event_id] = scan
            self.order.append(event_id)
        try:
            verify_pass(scan["payload"], self.trust, now=datetime.now(UTC), site_id=self.site_id)
            reason, decision, name = "welcome", "allow", "N. V. An"
        except Exception as e:
            reason, decision, name = str(getattr(e, "reason", "malformed")), "deny", None
        vi, en = message(reason)
        return {
            "type": "decision",
            "event_id": event_id,
            "decision": decision,
            "reason": reason,
            "message_vi": vi,
            "message_en": en,
            "name": name,
            "direction": "in",
            "duplicate": duplicate,
        }

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/api/v1/keys", self.keys),
                web.get("/api/v1/kiosk/stream", self.stream),
                web.post("/api/v1/scans/batch", self.batch),
                web.get("/api/v1/kiosk/sync", self.sync),
            ]
        )
        return app

    async def keys(self, request: web.Request) -> web.Response:
        return web.json_response((self.published or self.trust).to_json())

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        if request.headers.get("Authorization") != "Bearer kiosk-token":
            raise web.HTTPUnauthorized()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets += 1
        await ws.send_json(
            {
                "type": "hello",
                "gate": {
                    "id": 3,
                    "name": "Cổng chính — vào",
                    "direction": "entrance",
                    "offline_policy": self.offline_policy,
                },
                "site": {"id": self.site_id, "name": "Trụ sở"},
                "server_time": datetime.now(UTC).isoformat(),
            }
        )
        answered = 0
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["type"] == "heartbeat":
                self.heartbeats.append(data)
            elif data["type"] == "scan":
                wait = self.delays.pop(0) if self.delays else self.delay
                if wait:
                    await asyncio.sleep(wait)
                if self.unavailable or self.blips > 0:
                    self.blips = max(0, self.blips - 1)
                    await ws.send_json(
                        {
                            "type": "error",
                            "code": "service_unavailable",
                            "message": "db down",
                            "event_id": data["event_id"],
                        }
                    )
                    continue
                await ws.send_json(self.decide(data))
                answered += 1
                if self.drop_after is not None and answered >= self.drop_after:
                    await ws.close()
        return ws

    async def sync(self, request: web.Request) -> web.Response:
        self.syncs.append(request.query.get("after"))
        changes = [
            {"pass_id": p, "reason": r, "not_after": "2099-01-01T00:00:00+00:00"}
            for p, r in self.refused.items()
        ]
        answer = {"cursor": f"{len(self.syncs)}.0", "snapshot": True, "changes": changes}
        answer["site_id"] = self.site_id
        return web.json_response({**answer, "from": None, "rules": self.rules})

    async def batch(self, request: web.Request) -> web.Response:
        if self.unavailable:
            return web.json_response({"error": {"code": "service_unavailable"}}, status=503)
        scans = (await request.json())["scans"]
        self.batches.append([s["event_id"] for s in scans])
        decisions = [self.decide(s) for s in scans]
        for d in decisions:
            del d["type"]
        return web.json_response({"decisions": decisions})
