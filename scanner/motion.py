"""Motion: how sharp a frame is, the sharpest of the frames waiting, and when to ask the
person at the door to hold still.

Sharpness is the variance of the Laplacian on a small copy: cheap, and it falls fast as
motion blur spreads the module edges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from scanner.decode import to_gray

SHARPNESS_SIDE = 320
RECENT = 15  # frames remembered: half a second at 30 fps
BLURRED_SHARE = 0.5  # blurred: less than this share of the sharpest recent frame
HOLD_STILL_FRAMES = 3  # blurred misses in a row before the hint


def sharpness(frame: npt.NDArray[np.uint8]) -> float:
    gray = to_gray(frame)
    h, w = gray.shape[:2]
    s = min(1.0, SHARPNESS_SIDE / max(h, w))
    if s < 1.0:
        gray = np.asarray(
            cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), np.uint8
        )
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def sharpest(scores: Sequence[float]) -> int:
    """The index of the highest score (the newest of equals)."""
    return max(range(len(scores)), key=lambda i: (scores[i], i))


class Steadiness:
    """Decides when blur is the only problem: a code is there but not read, and the
    frames are much blurrier than the sharpest one seen just before."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=RECENT)
        self._blurred_misses = 0

    def feed(self, score: float, *, code_seen: bool, code_read: bool) -> bool:
        """One decoded frame; True when the person should be asked to hold still."""
        peak = max(self._recent, default=score)
        self._recent.append(score)
        blurred = score < BLURRED_SHARE * peak
        if code_seen and not code_read and blurred:
            self._blurred_misses += 1
        elif code_read or not code_seen:
            self._blurred_misses = 0
        return self._blurred_misses >= HOLD_STILL_FRAMES
