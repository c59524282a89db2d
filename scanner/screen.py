"""The door screen: live preview, detected code outlined, a verdict banner, status bar.

Rendering (``Renderer.compose``: state in, BGR ndarray out) is separate from showing
(``Display``: a thread with an OpenCV window), so tests check pixels without a display.
Text is drawn with Pillow and a TrueType font that has the Vietnamese diacritics
(DejaVu Sans): OpenCV's Hershey fonts have no "Ừ" or "Ố". Sizes are fractions of the
screen height, so the verdict is readable from two metres on any screen (at 1280x800 the
title's capitals are about 65 px tall), and every verdict has a shape as well as a
colour (scanner/icons.py). The window fills the screen even with no window manager
(scanner/window.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from scanner import icons
from scanner.verdict import Verdict

logger = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]
Color = tuple[int, int, int]  # RGB
Polygon = Sequence[tuple[int, int]]

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/arialbd.ttf",
)

GREEN: Color = (0, 150, 60)
RED: Color = (200, 20, 30)
WHITE: Color = (255, 255, 255)
BAR: Color = (30, 30, 30)
ONLINE: Color = (60, 200, 90)
OFFLINE: Color = icons.AMBER
CONNECTING: Color = (170, 190, 210)
OUTLINE_BGR = (0, 220, 255)

POLICY_WORDS = {
    "deny": ("từ chối tất cả", "deny all"),
    "verify-offline": ("kiểm tra chữ ký", "verify signature"),
}


class FontMissing(RuntimeError):
    pass


def find_font(path: str | Path | None = None) -> Path:
    """The font to render with: ``path``, else the first known Unicode font present."""
    candidates = [Path(path)] if path else [Path(p) for p in FONT_CANDIDATES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FontMissing(
        "no font with Vietnamese diacritics found; install fonts-dejavu-core "
        "(apt install fonts-dejavu-core) or pass --font PATH"
    )


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@dataclass(frozen=True)
class Status:
    online: bool
    offline_policy: str
    camera_up: bool = True
    gate_name: str = ""
    connecting: bool = False  # not online yet, and no connection attempt has failed
    hold_still: bool = False  # a code is in view but too blurred to read
    knowledge_age_s: float | None = None  # scanner.knowledge; None: no copy yet
    clock_skew_s: float | None = None  # set when the clock is too far off the service's


BANNER_SHARE = 0.6  # of the screen's height, below the status bar
OFFLINE_NOTE = "Quyết định ngoại tuyến / Decided offline"
HOLD_STILL = "Giữ yên mã QR / Hold the code still"


class Renderer:
    def __init__(self, size: tuple[int, int] = (1280, 720), font: str | Path | None = None):
        self.width, self.height = size
        self.font_path = str(find_font(font))

    # --- text ---------------------------------------------------------------------

    def render_text(self, text: str, size: int, color: Color = WHITE, bg: Color = BAR) -> Frame:
        """``text`` alone on a background, as BGR: a building block, handy in tests."""
        font = _font(self.font_path, size)
        right = int(font.getbbox(text)[2])
        image = Image.new("RGB", (right + size // 4, int(size * 1.4)), bg)
        ImageDraw.Draw(image).text((size // 8, size // 5), text, font=font, fill=color)
        return _to_bgr(image)

    # --- parts --------------------------------------------------------------------

    def banner_height(self) -> int:
        return int(self.height * BANNER_SHARE)

    def banner(self, verdict: Verdict) -> Frame:
        return _banner(self.font_path, self.width, self.banner_height(), verdict)

    def status_bar(self, status: Status) -> Frame:
        return _status_bar(self.font_path, self.width, max(24, self.height // 14), status)

    # --- the whole screen ---------------------------------------------------------

    def compose(
        self,
        frame: Frame | None,
        polygons: Sequence[Polygon] = (),
        verdict: Verdict | None = None,
        status: Status | None = None,
    ) -> Frame:
        canvas = np.zeros((self.height, self.width, 3), np.uint8)
        if frame is not None:
            self._preview(canvas, frame, polygons)
        if status is not None:
            bar = self.status_bar(status)
            canvas[: bar.shape[0]] = bar
        if verdict is not None:
            banner = self.banner(verdict)
            canvas[self.height - banner.shape[0] :] = banner
        return canvas

    def _preview(self, canvas: Frame, frame: Frame, polygons: Sequence[Polygon]) -> None:
        if frame.ndim == 2:
            frame = np.asarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), np.uint8)
        h, w = frame.shape[:2]
        scale = min(self.width / w, self.height / h)
        nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
        x0, y0 = (self.width - nw) // 2, (self.height - nh) // 2
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(
            frame[:, :, :3], (nw, nh), interpolation=interp
        )
        thickness = max(2, self.height // 150)
        for polygon in polygons:
            if len(polygon) < 3:
                continue
            pts = np.array([(x0 + x * scale, y0 + y * scale) for x, y in polygon], np.int32)
            cv2.polylines(canvas, [pts], True, OUTLINE_BGR, thickness, cv2.LINE_AA)


def _to_bgr(image: Image.Image) -> Frame:
    return np.ascontiguousarray(np.asarray(image, np.uint8)[:, :, ::-1])


@lru_cache(maxsize=32)
def _banner(font_path: str, width: int, height: int, verdict: Verdict) -> Frame:
    """The verdict: its shape on the left (tick or cross), its words on the right, the
    title biggest; each line shrinks to fit, and all of them to fit the height."""
    allow = verdict.decision == "allow"
    color = GREEN if allow else RED
    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    margin = max(6, min(width, height) // 14)
    icon = min(int(height * 0.6), width // 4)
    (icons.tick if allow else icons.cross)(draw, margin, (height - icon) // 2, icon, color)
    left = 2 * margin + icon
    avail_w, avail_h = width - left - margin, height - 2 * margin

    # The title in one line if it fits big, else one line per language ("A / B").
    title = verdict.headline  # its words fit the way the person goes
    parts = [p.strip() for p in title.split(" / ")] if " / " in title else [title]
    wanted: list[tuple[str, float]] = [(title, 0.2)]
    if len(parts) > 1 and _font(font_path, int(height * 0.2)).getlength(title) > avail_w:
        wanted = [(part, 0.2) for part in parts]
    if verdict.name and allow:
        wanted.append((verdict.name, 0.12))
    if verdict.message_vi:
        wanted.append((verdict.message_vi, 0.1))
    if verdict.message_en:
        wanted.append((verdict.message_en, 0.08))
    if verdict.offline:
        wanted.append((OFFLINE_NOTE, 0.065))

    def layout(scale: float) -> list[tuple[str, ImageFont.FreeTypeFont, int]]:
        lines = []
        for text, share in wanted:
            note = text == OFFLINE_NOTE
            size = max(10, int(height * share * scale))
            room = avail_w - (int(size * 1.3) if note else 0)  # the warning shape first
            while size > 10 and _font(font_path, size).getlength(text) > room:
                size = int(size * 0.93)
            lines.append((text, _font(font_path, size), int(size * 1.3) if note else 0))
        return lines

    lines = layout(1.0)
    total = sum(int(f.size * 1.22) for _, f, _ in lines)
    if total > avail_h:
        lines = layout(avail_h / total)
        total = sum(int(f.size * 1.22) for _, f, _ in lines)
    y = margin + max(0, (avail_h - total) // 2)
    for text, font, indent in lines:
        if indent:
            size = int(font.size)
            icons.warning(draw, left, y + size // 10, size)
        draw.text((left + indent, y), text, font=font, fill=WHITE)
        y += int(font.size * 1.22)
    return _to_bgr(image)


@lru_cache(maxsize=8)
def _status_bar(font_path: str, width: int, height: int, status: Status) -> Frame:
    """The link's state in words and a shape (a dot online, a ring while connecting, a
    warning triangle offline), the offline policy, the camera and the gate."""
    image = Image.new("RGB", (width, height), BAR)
    draw = ImageDraw.Draw(image)
    pad = height // 5
    vi, en = POLICY_WORDS.get(status.offline_policy, (status.offline_policy, status.offline_policy))
    if status.online:
        mode, color, shape = "TRỰC TUYẾN / ONLINE", ONLINE, icons.dot
    elif status.connecting:
        mode, color, shape = "ĐANG KẾT NỐI / CONNECTING", CONNECTING, icons.ring
    else:
        mode, color, shape = "NGOẠI TUYẾN / OFFLINE", OFFLINE, _warning
    parts = [mode, f"Khi mất mạng: {vi} / Offline: {en}", copy_age_words(status.knowledge_age_s)]
    if not status.camera_up:
        parts.append("Mất camera / No camera")
    if status.hold_still:
        parts.insert(0, HOLD_STILL)
    if status.clock_skew_s is not None:
        parts.append(
            f"Đồng hồ lệch {status.clock_skew_s:+.0f} s / Clock off by {status.clock_skew_s:+.0f} s"
        )
    if status.gate_name:
        parts.append(status.gate_name)
    text = "   ".join(parts)
    mark = int(height * 0.6)
    size = int(height * 0.6)
    while size > 8 and _font(font_path, size).getlength(text) > width - 3 * pad - mark:
        size -= 1
    font = _font(font_path, size)
    shape(draw, pad, (height - mark) // 2, mark, color)
    draw.text((2 * pad + mark, (height - size) // 2 - 1), text, font=font, fill=color)
    return _to_bgr(image)


def copy_age_words(age_s: float | None) -> str:
    """How old the kiosk's offline copy is, for the status bar."""
    if age_s is None:
        return "Chưa có dữ liệu ngoại tuyến / No offline data"
    if age_s < 60:
        return f"Dữ liệu: {age_s:.0f} giây / Data: {age_s:.0f} s old"
    if age_s < 3600:
        return f"Dữ liệu: {age_s / 60:.0f} phút / Data: {age_s / 60:.0f} min old"
    return f"Dữ liệu: {age_s / 3600:.1f} giờ / Data: {age_s / 3600:.1f} h old"


def _warning(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, color: Color) -> None:
    icons.warning(draw, x, y, size, color)


class Display:
    """Shows the composed screen in an OpenCV window from its own thread.

    The kiosk only hands over state (``update_*``); rendering and showing never run
    on its event loop. The window is the renderer's size; ``fullscreen`` also puts it
    at the top left and asks the window manager for full screen, so it fills the
    screen with a window manager or without one (the renderer has the screen's size,
    scanner/window.py). No toolbar or status line: it is a door, not an image viewer.
    """

    WINDOW = "checkin-scanner"

    def __init__(
        self,
        renderer: Renderer,
        *,
        verdict_seconds: float = 3.0,
        on_quit: Callable[[], None] | None = None,
        fullscreen: bool = True,
    ) -> None:
        self.renderer = renderer
        self.verdict_seconds = verdict_seconds
        self._on_quit = on_quit
        self._fullscreen = fullscreen
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._polygons: list[Polygon] = []
        self._polygons_until = 0.0
        self._verdict: Verdict | None = None
        self._verdict_until = 0.0
        self._status = Status(online=False, offline_policy="deny", connecting=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="display", daemon=True)

    def update_frame(self, frame: Frame, polygons: Sequence[Polygon] = ()) -> None:
        with self._lock:
            self._frame = frame
            if polygons:
                self._polygons = list(polygons)
                self._polygons_until = time.monotonic() + 0.5

    def update_verdict(self, verdict: Verdict) -> None:
        with self._lock:
            self._verdict = verdict
            self._verdict_until = time.monotonic() + self.verdict_seconds

    def update_status(self, status: Status) -> None:
        with self._lock:
            self._status = status

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _state(self) -> tuple[Frame | None, list[Polygon], Verdict | None, Status]:
        now = time.monotonic()
        with self._lock:
            polygons = self._polygons if now < self._polygons_until else []
            verdict = self._verdict if now < self._verdict_until else None
            return self._frame, polygons, verdict, self._status

    def _run(self) -> None:
        try:
            cv2.namedWindow(self.WINDOW, cv2.WINDOW_NORMAL | cv2.WINDOW_GUI_NORMAL)
            cv2.resizeWindow(self.WINDOW, self.renderer.width, self.renderer.height)
            if self._fullscreen:
                cv2.moveWindow(self.WINDOW, 0, 0)
                cv2.setWindowProperty(self.WINDOW, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
            while not self._stop.is_set():
                cv2.imshow(self.WINDOW, self.renderer.compose(*self._state()))
                key = cv2.waitKey(40) & 0xFF
                if key in (ord("q"), 27) and self._on_quit is not None:
                    self._on_quit()
        except cv2.error:
            logger.exception("the screen failed; use --headless on a machine without a display")
            if self._on_quit is not None:
                self._on_quit()
        finally:
            cv2.destroyAllWindows()
