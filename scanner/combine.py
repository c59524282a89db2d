"""Frames combined: a code seen but not read in several frames in a row is read again
from their average.

Sensor noise (a dim doorway, a phone screen turned down) differs from frame to frame;
the code does not while the pass is held up. The region around the newest frame's
unread candidate (a finder group, or a square of dense edges where noise hides the
finders: scanner/deblur.py) is cut from each of the last frames, aligned with the
newest by phase correlation (a held phone drifts a few pixels) and averaged: the noise
falls with the square root of their number. Only frames in which a candidate stayed
unread are kept, so an idle door and a pass read at once cost nothing here.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import numpy.typing as npt

from scanner.views import Image, Quad, View

FRAMES = 4  # averaged: the noise halves
MARGIN = 0.25  # of the candidate's side, around it
MAX_SHIFT = 0.15  # of the region's side: a larger move is a new position, not a drift


class FrameStack:
    """The last frames whose candidates stayed unread; their average when there are
    enough of them in a row."""

    def __init__(self, frames: int = FRAMES) -> None:
        self._grays: deque[Image] = deque(maxlen=frames)

    def reset(self) -> None:
        """A frame read, or with nothing to read: the run of unread frames is broken."""
        self._grays.clear()

    def add(self, gray: Image, unread: Quad) -> View | None:
        """A frame whose candidate `unread` stayed unread; once there are enough in a
        row, the region around it combined from them all, in this frame's pixels."""
        if self._grays and self._grays[-1].shape != gray.shape:
            self.reset()
        self._grays.append(gray)
        if len(self._grays) < (self._grays.maxlen or FRAMES):
            return None
        view = combined(list(self._grays), unread)
        self.reset()  # the next combination is of new frames
        return view


def combined(grays: list[Image], quad: Quad) -> View | None:
    """The region around `quad`, cut from each frame, aligned with the last one and
    averaged; None when the region is too small or a frame moved too far."""
    h, w = grays[-1].shape[:2]
    (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
    pad = MARGIN * max(x1 - x0, y1 - y0)
    left, top = max(0, int(x0 - pad)), max(0, int(y0 - pad))
    right, bottom = min(w, int(x1 + pad) + 1), min(h, int(y1 + pad) + 1)
    if right - left < 32 or bottom - top < 32:
        return None
    crops = [g[top:bottom, left:right].astype(np.float32) for g in grays]
    newest = crops[-1]
    window = cv2.createHanningWindow(newest.shape[::-1], cv2.CV_32F)
    total = newest.copy()
    limit = MAX_SHIFT * max(newest.shape)
    for crop in crops[:-1]:
        (dx, dy), _ = cv2.phaseCorrelate(newest, crop, window)
        if abs(dx) > limit or abs(dy) > limit:
            return None
        total += _shifted(crop, -dx, -dy)
    mean: npt.NDArray[np.uint8] = np.clip(total / len(crops), 0, 255).astype(np.uint8)
    return View(mean, 1.0, (left, top))


def _shifted(image: npt.NDArray[np.float32], dx: float, dy: float) -> npt.NDArray[np.float32]:
    matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    h, w = image.shape[:2]
    moved = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(moved, np.float32)
