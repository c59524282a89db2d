"""scanner.capture: the capture loop with injected sources; never a real camera."""

from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from scanner.capture import (
    END,
    Backoff,
    Capture,
    CapturedFrame,
    CaptureStats,
    FolderCapture,
    FrameQueue,
    SourceSpec,
    capture_frames,
)
from tests.kiosk_helpers import FakeCapture

FAST = Backoff(first=0.01, limit=0.05)


def frame(value: int) -> np.ndarray:
    return np.full((8, 8, 3), value, np.uint8)


def drain(frames: FrameQueue) -> list[CapturedFrame | None]:
    out: list[CapturedFrame | None] = []
    while True:
        try:
            out.append(frames.get(timeout=0.01))
        except queue.Empty:
            return out


def opener(
    captures: list[FakeCapture], then: Callable[[], FakeCapture]
) -> Callable[[], FakeCapture]:
    opened: list[FakeCapture] = []

    def open_next() -> FakeCapture:
        cap = captures.pop(0) if captures else then()
        opened.append(cap)
        return cap

    open_next.opened = opened  # type: ignore[attr-defined]
    return open_next


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("0", "camera", 0),
        ("2", "camera", 2),
        ("rtsp://cam.local/stream", "stream", "rtsp://cam.local/stream"),
        ("http://cam.local/video.mjpg", "stream", "http://cam.local/video.mjpg"),
        ("clip.mp4", "file", "clip.mp4"),
    ],
)
def test_source_spec(text: str, kind: str, target: object) -> None:
    assert SourceSpec.parse(text) == SourceSpec(kind, target)  # type: ignore[arg-type]


def test_source_spec_folder(tmp_path: Path) -> None:
    assert SourceSpec.parse(str(tmp_path)).kind == "folder"


def test_full_queue_drops_the_oldest_and_counts() -> None:
    frames = FrameQueue(maxsize=2)
    for i in range(5):
        frames.put(CapturedFrame(frame(i), float(i), None))  # type: ignore[arg-type]
    assert frames.dropped == 3
    got = drain(frames)
    assert [f.t for f in got if f is not None] == [3.0, 4.0]  # the newest survive


def test_end_marker_is_never_dropped() -> None:
    frames = FrameQueue(maxsize=1)
    frames.put(END)
    frames.put(CapturedFrame(frame(1), 1.0, None))  # type: ignore[arg-type]
    assert drain(frames) == [END]


def test_a_camera_that_dies_and_comes_back_is_reopened() -> None:
    stop = threading.Event()
    stats = CaptureStats()
    frames = FrameQueue(maxsize=100)
    # unplugged at start; then 3 frames and it dies (reads fail); unplugged twice; back
    caps = [
        FakeCapture([], opened=False),
        FakeCapture([frame(1), frame(2), frame(3)] + [None] * 10),
        FakeCapture([], opened=False),
        FakeCapture([], opened=False),
    ]

    def forever() -> FakeCapture:
        if len(open_.opened) > 10:  # type: ignore[attr-defined]
            stop.set()
        return FakeCapture([frame(9)] * 3 + [None] * 10)

    open_ = opener(caps, forever)
    thread = threading.Thread(
        target=capture_frames,
        args=(open_, frames, stop, stats),
        kwargs={"max_failures": 3, "backoff": FAST},
    )
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    got = [f for f in drain(frames) if f is not None]
    values = [int(f.image[0, 0, 0]) for f in got]
    assert values[:3] == [1, 2, 3]
    assert 9 in values  # frames again after the camera came back
    assert stats.reconnects >= 2
    assert not stats.done
    assert all(c.released for c in open_.opened)  # type: ignore[attr-defined]


def test_camera_state_is_reported_while_down() -> None:
    stop = threading.Event()
    stats = CaptureStats()
    stats.camera_up = True
    thread = threading.Thread(
        target=capture_frames,
        args=(lambda: FakeCapture([], opened=False), FrameQueue(), stop, stats),
        kwargs={"backoff": FAST},
    )
    thread.start()
    time.sleep(0.1)
    assert not stats.camera_up
    stop.set()
    thread.join(2)
    assert not thread.is_alive()


def test_a_video_that_ends_is_done() -> None:
    stop = threading.Event()
    stats = CaptureStats()
    frames = FrameQueue(maxsize=10)
    cap = FakeCapture([frame(1), frame(2)])
    capture_frames(lambda: cap, frames, stop, stats, finite=True)
    assert stats.done
    assert cap.released
    got = drain(frames)
    assert got[-1] is END
    assert len(got) == 3


def test_looping_replays_a_finite_source() -> None:
    stop = threading.Event()
    stats = CaptureStats()
    frames = FrameQueue(maxsize=100)

    def open_() -> FakeCapture:
        if stats.frames >= 6:
            stop.set()
        return FakeCapture([frame(1), frame(2)])

    capture_frames(open_, frames, stop, stats, finite=True, loop=True)
    assert stats.frames >= 6
    assert not stats.done


def test_fps_paces_the_reads() -> None:
    stop = threading.Event()
    stats = CaptureStats()
    start = time.monotonic()
    capture_frames(
        lambda: FakeCapture([frame(0)] * 6), FrameQueue(10), stop, stats, finite=True, fps=50
    )
    assert time.monotonic() - start >= 5 / 50 * 0.9


def test_stop_releases_the_camera_promptly() -> None:
    cap = FakeCapture([frame(0)] * 100000)
    capture = Capture(SourceSpec("camera", 0), fps=100, opener=lambda: cap)
    capture.start()
    time.sleep(0.1)
    start = time.monotonic()
    capture.stop()
    assert time.monotonic() - start < 1
    assert cap.released
    assert capture.stats.frames > 0
    assert capture.frames.dropped > 0  # nobody consumed: the queue stayed bounded
    assert capture.frames.qsize() <= 2


def write_images(folder: Path, values: list[int]) -> None:
    folder.mkdir(exist_ok=True)
    for i, v in enumerate(values):
        cv2.imwrite(str(folder / f"{i:03}.png"), frame(v))


def test_folder_of_images_is_a_video(tmp_path: Path) -> None:
    write_images(tmp_path, [10, 20, 30])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    cap = FolderCapture(tmp_path)
    assert cap.isOpened()
    values = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        values.append(int(image[0, 0, 0]))
    assert values == [10, 20, 30]
    assert not FolderCapture(tmp_path / "missing").isOpened()


def test_a_folder_emptied_and_refilled_comes_back(tmp_path: Path) -> None:
    folder = tmp_path / "cam"
    write_images(folder, [10, 20])
    capture = Capture(
        SourceSpec("folder", str(folder)), loop=True, fps=100, queue_size=1000, backoff=FAST
    )
    capture.start()
    try:
        deadline = time.monotonic() + 5
        while capture.stats.frames < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        shutil.rmtree(folder)  # unplugged
        deadline = time.monotonic() + 5
        while capture.stats.camera_up and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not capture.stats.camera_up
        write_images(folder, [77])  # plugged back, new pictures
        deadline = time.monotonic() + 5
        while not capture.stats.camera_up and time.monotonic() < deadline:
            time.sleep(0.01)
        assert capture.stats.camera_up
        time.sleep(0.05)
    finally:
        capture.stop()
    values = [int(f.image[0, 0, 0]) for f in drain(capture.frames) if f is not None]
    assert {10, 20} <= set(values)
    assert values[-1] == 77
