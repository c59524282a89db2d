"""Capture settings asked of a camera, the frame size reported, and motion: the sharpest
of the frames waiting is decoded, and blur alone raises the hold-still hint."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from scanner import __main__ as scanner_main
from scanner.capture import (
    CAMERA_RESOLUTION,
    CapturedFrame,
    CaptureStats,
    FrameQueue,
    ask_camera,
    capture_frames,
)
from scanner.decode import PYZBAR_ONLY, Decoded, DecodePipeline
from scanner.motion import HOLD_STILL_FRAMES, Steadiness, sharpest, sharpness
from scanner.screen import HOLD_STILL
from scanner.worker import DecodeWorker
from tests.frames import place, qr_image
from tests.kiosk_helpers import FakeCapture

PASS = "CHK1.7Q2M9XKD.visitor-0042.ZJ4W8T6P3R5N"


def pass_frame(blur: int = 0) -> np.ndarray:
    frame = place(
        np.full((480, 640), 170, np.uint8),
        qr_image(PASS, 5),
        [(200, 100), (400, 100), (400, 300), (200, 300)],
    )
    if blur:
        frame = cv2.filter2D(frame, -1, np.full((1, blur), 1 / blur, np.float32))
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def test_a_camera_is_asked_for_720p_autofocus_and_exposure() -> None:
    cap = FakeCapture([])

    ask_camera(cap, CAMERA_RESOLUTION)

    assert cap.asked[cv2.CAP_PROP_FRAME_WIDTH] == 1280
    assert cap.asked[cv2.CAP_PROP_FRAME_HEIGHT] == 720
    assert cap.asked[cv2.CAP_PROP_AUTOFOCUS] == 1
    assert cv2.CAP_PROP_AUTO_EXPOSURE in cap.asked


def test_the_real_frame_size_is_reported() -> None:
    stats = CaptureStats()
    frames = FrameQueue(maxsize=4)
    cap = FakeCapture([np.zeros((480, 640, 3), np.uint8)] * 2)

    capture_frames(lambda: cap, frames, threading.Event(), stats, finite=True)

    assert (stats.width, stats.height) == (640, 480)


def test_sharpness_falls_with_motion_blur() -> None:
    assert sharpness(pass_frame(blur=9)) < 0.5 * sharpness(pass_frame())
    assert sharpest([1.0, 3.0, 2.0]) == 1


def test_blur_alone_asks_to_hold_still() -> None:
    steady = Steadiness()
    assert not steady.feed(100.0, code_seen=True, code_read=True)
    hints = [steady.feed(20.0, code_seen=True, code_read=False) for _ in range(HOLD_STILL_FRAMES)]
    assert hints == [False] * (HOLD_STILL_FRAMES - 1) + [True]
    # No code in view: nothing to hold still.
    assert not steady.feed(20.0, code_seen=False, code_read=False)
    # A code read: fine again.
    assert not steady.feed(20.0, code_seen=True, code_read=True)
    assert HOLD_STILL.startswith("Giữ yên") and "Hold" in HOLD_STILL


def test_worker_decodes_the_sharpest_of_the_frames_waiting() -> None:
    frames = FrameQueue(maxsize=4)
    for image in (pass_frame(blur=15), pass_frame(), pass_frame(blur=15)):
        frames.put(CapturedFrame(image, 0.0, None))  # type: ignore[arg-type]
    frames.put(None)
    seen: list[list[Decoded]] = []
    ended = threading.Event()
    worker = DecodeWorker(
        frames,
        lambda: DecodePipeline(PYZBAR_ONLY),
        on_codes=lambda f, c: seen.append(c),
        on_end=ended.set,
    )

    worker.start()
    assert ended.wait(10)
    worker.stop()

    assert [c.text for codes in seen for c in codes] == [PASS]
    assert (worker.attempts, worker.skipped) == (1, 2)


def test_resolution_option() -> None:
    assert scanner_main.camera_resolution("native") is None
    assert scanner_main.camera_resolution("640x480") == (640, 480)
    args = scanner_main.build_parser().parse_args(["--server", "http://x", "--source", "0"])
    assert args.resolution == CAMERA_RESOLUTION == (1280, 720)
