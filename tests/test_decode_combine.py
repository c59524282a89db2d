"""Frames combined (scanner/combine.py): a pass on a dim, noisy screen that no single
frame reads is read from the average of the last frames, through the real decode
worker; frames read at once, or with nothing in view, are never combined."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest

from scanner.capture import CapturedFrame, FrameQueue
from scanner.combine import FRAMES, FrameStack
from scanner.decode import Decoded, DecodePipeline, config_for, to_gray
from scanner.worker import DecodeWorker
from tests.frames import Frame, place, qr_image

PASS = "CHK1.7Q2M9XKD.visitor-0042.ZJ4W8T6P3R5N"
AT = (500, 200, 160)  # x, y, side of the code in the frame


def noisy_frames(n: int, seed: int = 1, sigma: float = 50.0) -> list[Frame]:
    """A pass on a dim screen (a quarter of the contrast) held up while the phone drifts
    a pixel or two, under heavy sensor noise that differs from frame to frame."""
    rng = np.random.default_rng(seed)
    x, y, side = AT
    quad = [(x, y), (x + side, y), (x + side, y + side), (x, y + side)]
    scene = place(np.full((720, 1280), 140, np.uint8), qr_image(PASS, 4), quad)
    dim = 100 + (scene.astype(np.float32) - 128) * 0.25
    frames = []
    for i in range(n):
        drifted = np.roll(dim, (i % 2, i // 2), axis=(0, 1))
        noisy = np.clip(drifted + rng.normal(0, sigma, dim.shape), 0, 255).astype(np.uint8)
        frames.append(cv2.cvtColor(noisy, cv2.COLOR_GRAY2BGR))
    return frames


@pytest.fixture
def pipeline() -> DecodePipeline:
    return DecodePipeline(config_for("auto"))


def test_no_single_frame_reads_it_and_their_average_does(pipeline: DecodePipeline) -> None:
    stack = FrameStack()
    views = []
    for frame in noisy_frames(FRAMES):
        assert pipeline.decode_frame(frame) == []
        assert pipeline.unread  # the code is seen, not read
        views.append(stack.add(to_gray(frame), pipeline.unread[0]))
    assert views[:-1] == [None] * (FRAMES - 1)
    view = views[-1]
    assert view is not None
    (code,) = [view.to_frame(c) for c in DecodePipeline(config_for("auto"))(view.image)]
    assert code.text == PASS
    x, y, side = AT
    cx, cy = np.asarray(code.polygon, np.float32).mean(axis=0)
    assert x < cx < x + side and y < cy < y + side  # in the frame's pixels


def test_a_frame_that_moved_far_is_not_averaged_in(pipeline: DecodePipeline) -> None:
    frames = noisy_frames(FRAMES)
    frames[0] = np.roll(frames[0], 400, axis=1)  # the pass was elsewhere then
    stack = FrameStack()
    pipeline.decode_frame(frames[-1])
    quad = pipeline.unread[0]
    views = [stack.add(to_gray(f), quad) for f in frames]
    assert views == [None] * FRAMES


def test_the_worker_reads_the_noisy_pass_from_its_frames_combined() -> None:
    frames = FrameQueue(maxsize=FRAMES + 1)
    seen: list[list[Decoded]] = []
    decoded = threading.Semaphore(0)
    worker = DecodeWorker(
        frames,
        lambda: DecodePipeline(config_for("auto")),
        on_codes=lambda f, c: seen.append(c),
        on_end=lambda: None,
        on_frame=lambda f, c: decoded.release(),
    )
    worker.start()
    try:
        for i, image in enumerate(noisy_frames(FRAMES)):
            frames.put(CapturedFrame(image, t=float(i), wall=datetime.now(UTC), index=i))
            assert decoded.acquire(timeout=30)  # one at a time: none is passed over
    finally:
        worker.stop()
    assert [(c.text, c.view) for codes in seen for c in codes] == [(PASS, "combined")]
    assert worker.attempts == FRAMES  # the camera's frames; the average is counted apart


def test_frames_read_at_once_or_empty_are_never_combined(pipeline: DecodePipeline) -> None:
    stack = FrameStack()
    clean = noisy_frames(1, sigma=2.0)[0]
    assert [c.text for c in pipeline.decode_frame(clean)] == [PASS]
    assert pipeline.unread == []
    empty = np.full((720, 1280, 3), 140, np.uint8)
    assert pipeline.decode_frame(empty) == [] and pipeline.unread == []
    # The worker resets the stack on such frames; three unread frames and a reset, then
    # one more, are not yet enough.
    noisy = noisy_frames(FRAMES)
    pipeline.decode_frame(noisy[0])
    quad = pipeline.unread[0]
    for frame in noisy[:-1]:
        assert stack.add(to_gray(frame), quad) is None
    stack.reset()
    assert stack.add(to_gray(noisy[-1]), quad) is None
