"""The capture loop: frames from a camera, stream, video file or folder of images.

One thread reads frames until stopped and hands them on through a bounded queue; when
the queue is full the oldest frame is dropped (and counted), because a door needs the
newest picture, not a backlog. A live source that stops delivering is released and
reopened with backoff, for as long as it takes: a camera unplugged and plugged back
resumes by itself. A video file or folder that ends is done, unless looping.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]
SourceKind = Literal["camera", "file", "stream", "folder"]
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DEFAULT_FOLDER_FPS = 2.0
# Asked of a camera: at 640x480 a phone screen's modules are too few pixels to read well.
CAMERA_RESOLUTION = (1280, 720)
V4L2_AUTO_EXPOSURE = 3  # aperture priority: the camera sets the exposure itself


class VideoSource(Protocol):
    """What the loop needs of a ``cv2.VideoCapture`` (tests inject fakes)."""

    def isOpened(self) -> bool: ...  # OpenCV's name

    def read(self) -> tuple[bool, Any]: ...

    def get(self, prop_id: int) -> float: ...

    def set(self, prop_id: int, value: float) -> bool: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class SourceSpec:
    kind: SourceKind
    target: str | int

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        """``0`` a camera index, a URL a stream, a directory a folder, else a video file."""
        text = text.strip()
        if text.isdigit():
            return cls("camera", int(text))
        if text.lower().startswith(STREAM_SCHEMES):
            return cls("stream", text)
        if Path(text).is_dir():
            return cls("folder", text)
        return cls("file", text)

    @property
    def finite(self) -> bool:
        return self.kind in ("file", "folder")

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"


class FolderCapture:
    """A folder of images read as a video: each image (sorted by name) is one frame.

    The folder is listed when opened; an empty or missing folder is a source that is
    down, like an unplugged camera.
    """

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        try:
            self._paths = sorted(
                p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
        except OSError:
            self._paths = []
        self._next = 0

    def isOpened(self) -> bool:
        return bool(self._paths)

    def read(self) -> tuple[bool, Any]:
        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return True, image
            logger.warning("skipping unreadable image %s", path)
        return False, None

    def get(self, prop_id: int) -> float:
        return 0.0

    def set(self, prop_id: int, value: float) -> bool:
        return False

    def release(self) -> None:
        self._paths = []


def open_source(spec: SourceSpec, resolution: tuple[int, int] | None = None) -> VideoSource:
    if spec.kind == "folder":
        return FolderCapture(str(spec.target))
    capture: VideoSource = cv2.VideoCapture(spec.target)
    if spec.kind == "camera" and capture.isOpened():
        ask_camera(capture, resolution)
    return capture


def ask_camera(capture: VideoSource, resolution: tuple[int, int] | None) -> None:
    """Ask for a resolution, autofocus and automatic exposure; cameras and backends that
    cannot do one ignore it (OpenCV returns False), and the frames say what came."""
    asks: list[tuple[int, float]] = [
        (cv2.CAP_PROP_AUTOFOCUS, 1),
        (cv2.CAP_PROP_AUTO_EXPOSURE, V4L2_AUTO_EXPOSURE),
    ]
    if resolution is not None:
        asks = [
            (cv2.CAP_PROP_FRAME_WIDTH, resolution[0]),
            (cv2.CAP_PROP_FRAME_HEIGHT, resolution[1]),
            *asks,
        ]
    refused = [prop for prop, value in asks if not capture.set(prop, value)]
    if refused:
        logger.info("the camera ignored %d of %d settings asked", len(refused), len(asks))


@dataclass(frozen=True)
class CapturedFrame:
    image: Frame
    t: float  # time.monotonic() when read
    wall: datetime  # the same moment in UTC, for the scan's seen_at
    index: int = 0  # its number in the source since the source was (re)opened
    decoded: float = 0.0  # time.monotonic() when its codes were handed on (0: not yet)


END = None  # put on the queue after the last frame of a finite source


class FrameQueue:
    """A bounded queue that drops the oldest frame when full, and counts the drops."""

    def __init__(self, maxsize: int = 2) -> None:
        self._q: queue.Queue[CapturedFrame | None] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def put(self, item: CapturedFrame | None) -> None:
        while True:
            try:
                self._q.put_nowait(item)
                return
            except queue.Full:
                try:
                    old = self._q.get_nowait()
                except queue.Empty:
                    continue
                if old is END:  # never drop the end marker
                    self._q.put_nowait(old)
                    return
                self.dropped += 1

    def get(self, timeout: float) -> CapturedFrame | None:
        """The next frame or END; raise queue.Empty after ``timeout`` seconds."""
        return self._q.get(timeout=timeout)

    def qsize(self) -> int:
        return self._q.qsize()


@dataclass
class CaptureStats:
    frames: int = 0
    camera_up: bool = False
    done: bool = False
    reconnects: int = 0
    width: int = 0  # of the frames the source really delivers
    height: int = 0
    camera_fps: float = 0.0  # the rate the source reports (0: it does not say)
    _times: deque[float] = field(default_factory=lambda: deque(maxlen=60))

    def frame_read(self, t: float, image: Frame | None = None) -> None:
        self.frames += 1
        self._times.append(t)
        if image is not None:
            self.height, self.width = int(image.shape[0]), int(image.shape[1])

    def fps(self, now: float | None = None) -> float:
        times = list(self._times)
        if len(times) < 2:
            return 0.0
        now = time.monotonic() if now is None else now
        if now - times[-1] > 2.0:  # nothing recent: the source is stalled
            return 0.0
        return round((len(times) - 1) / max(times[-1] - times[0], 1e-6), 1)


@dataclass(frozen=True)
class Backoff:
    first: float = 0.5
    limit: float = 10.0

    def delays(self) -> Callable[[], float]:
        state = {"next": self.first}

        def delay() -> float:
            d = state["next"]
            state["next"] = min(d * 2, self.limit)
            return d

        return delay


def capture_frames(
    open_source: Callable[[], VideoSource],
    frames: FrameQueue,
    stop: threading.Event,
    stats: CaptureStats,
    *,
    finite: bool = False,
    loop: bool = False,
    fps: float | None = None,
    max_failures: int = 5,
    backoff: Backoff = Backoff(),
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Read frames until ``stop`` is set (or a finite source ends without ``loop``).

    ``fps`` paces the reads (files and folders are read at their own pace otherwise:
    a file at its recorded rate); live sources are read as fast as they deliver.
    """
    next_delay = backoff.delays()
    while not stop.is_set():
        cap = open_source()
        try:
            if not cap.isOpened():
                _source_down(stats, "could not be opened")
                stop.wait(next_delay())
                continue
            period = _source_up(cap, stats, fps, finite)
            delivered, failures = _read_frames(
                cap, frames, stop, stats, period, finite, max_failures, clock
            )
            if stop.is_set():
                return
            if delivered:
                next_delay = backoff.delays()
            if finite and delivered:
                if not loop:
                    stats.done = True
                    frames.put(END)
                    logger.info("video source ended")
                    return
                continue
            _source_down(stats, "no frames" if finite else f"{failures} reads failed in a row")
            stats.reconnects += 1
            stop.wait(next_delay())
        finally:
            cap.release()


def _source_up(cap: VideoSource, stats: CaptureStats, fps: float | None, finite: bool) -> float:
    """Note the opened source; return the pause between reads (0: as fast as it delivers)."""
    if not stats.camera_up:
        logger.info("video source is up")
    stats.camera_up = True
    stats.camera_fps = max(0.0, float(cap.get(cv2.CAP_PROP_FPS) or 0.0))
    rate = fps if fps else (cap.get(cv2.CAP_PROP_FPS) if finite else 0.0)
    return 1.0 / rate if rate and 0 < rate < 1000 else 0.0


def _read_frames(
    cap: VideoSource,
    frames: FrameQueue,
    stop: threading.Event,
    stats: CaptureStats,
    period: float,
    finite: bool,
    max_failures: int,
    clock: Callable[[], float],
) -> tuple[bool, int]:
    """Read until stopped, the end of a finite source, or `max_failures` failed reads in
    a row; return whether any frame came and the failures at the end."""
    failures = 0
    delivered = False
    index = 0  # the frame's number in the source (the latency bench names frames by it)
    next_at = clock()
    while not stop.is_set():
        ok, image = cap.read()
        if not ok or image is None:
            if finite:
                break
            failures += 1
            if failures >= max_failures:
                break
            stop.wait(0.05)
            continue
        failures = 0
        now = clock()
        stats.frame_read(now, image)
        frames.put(CapturedFrame(np.asarray(image), now, datetime.now(UTC), index))
        index += 1
        delivered = True
        if period:
            next_at = max(next_at + period, now)
            stop.wait(max(0.0, next_at - clock()))
    return delivered, failures


def _source_down(stats: CaptureStats, why: str) -> None:
    if stats.camera_up or stats.frames == 0:
        logger.warning("video source is down (%s); retrying", why)
    stats.camera_up = False


class Capture:
    """The capture loop in its own thread."""

    def __init__(
        self,
        spec: SourceSpec,
        *,
        loop: bool = False,
        fps: float | None = None,
        queue_size: int = 2,
        opener: Callable[[], VideoSource] | None = None,
        backoff: Backoff = Backoff(),
        resolution: tuple[int, int] | None = CAMERA_RESOLUTION,
    ) -> None:
        self.spec = spec
        self.frames = FrameQueue(queue_size)
        self.stats = CaptureStats()
        self.stop_event = threading.Event()
        if fps is None and spec.kind == "folder":
            fps = DEFAULT_FOLDER_FPS
        self._thread = threading.Thread(
            target=capture_frames,
            args=(
                opener or (lambda: open_source(spec, resolution)),
                self.frames,
                self.stop_event,
                self.stats,
            ),
            kwargs={"finite": spec.finite, "loop": loop, "fps": fps, "backoff": backoff},
            name="capture",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self._thread.join(timeout)
