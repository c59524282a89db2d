"""The kiosk's settings and the files it keeps in its data folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from scanner.capture import CAMERA_RESOLUTION, SourceSpec
from scanner.debounce import DEFAULT_COOLDOWN_S
from scanner.trust import read_json
from scanner.verdict import GateInfo, OfflinePolicy
from scanner.window import Size

logger = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"
KNOWLEDGE_FILE = "knowledge.sqlite3"
TRUST_FILE = "trust.json"
GATE_FILE = "gate.json"
CLOCK_FILE = "clock.json"
MAX_SENT_CHARS = 8192
TRUST_MIN_INTERVAL_S = 5.0
SESSION_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=5)  # not the socket's life


@dataclass(frozen=True)
class KioskConfig:
    server: str
    token: str
    source: SourceSpec
    data_dir: Path = Path(".kiosk-data")
    headless: bool = False
    decoder: str = "auto"  # both decoders when zxing-cpp is installed
    cooldown: float = DEFAULT_COOLDOWN_S
    on_allow: str | None = None
    on_deny: str | None = None
    offline_policy: OfflinePolicy | None = None  # None: the gate's
    loop: bool = False
    fps: float | None = None
    resolution: tuple[int, int] | None = CAMERA_RESOLUTION  # asked of a camera; None: its own
    ack_timeout: float = 1.5
    heartbeat_s: float = 5.0
    trust_refresh_s: float = 300.0
    verdict_seconds: float = 3.0
    font: str | None = None
    window: Size | None = None  # None: full screen
    drain_timeout: float = 5.0
    startup_wait: float = 5.0
    hook_timeout: float = 30.0


def sendable(text: str) -> str:
    """A decoded text as a payload the service accepts (it records every attempt).

    A QR code holds at most 7,089 characters, so the cut only guards against a broken
    decoder; NUL cannot be stored by PostgreSQL and is never part of a pass.
    """
    return text[:MAX_SENT_CHARS].replace("\x00", "\ufffd")


def load_gate(path: Path) -> GateInfo | None:
    obj = read_json(path)
    if obj is None:
        return None
    try:
        return GateInfo.from_hello(obj)
    except ValueError as e:
        logger.warning("ignoring cached gate %s: %s", path, e)
        return None
