"""Views: preprocessed copies of a frame (or of a region of it) for a decoder to try.

Each one answers a failure measured on real photographs and phone screens; sizes are in
pixels, chosen for webcam frames (longer side 640-1280), not for particular images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from scanner.decoders import Decoded

Image = npt.NDArray[np.uint8]
Quad = npt.NDArray[np.float32]  # 4 x 2 corner points in frame pixels


@dataclass(frozen=True)
class View:
    """A preprocessed image to decode, and how its pixels map back to the frame."""

    image: Image
    scale: float = 1.0  # view pixels per frame pixel
    offset: tuple[int, int] = (0, 0)  # frame position of the view's origin
    back: npt.NDArray[np.float64] | None = None  # 2x3 affine to the scaled view (rotated views)

    def to_frame(self, code: Decoded, view: str = "") -> Decoded:
        pts = self.quad_to_frame(code.polygon)
        polygon = tuple((round(float(x)), round(float(y))) for x, y in pts)
        return Decoded(text=code.text, polygon=polygon, view=view or code.view)

    def quad_to_frame(self, polygon: tuple[tuple[int, int], ...]) -> Quad:
        pts = np.asarray(polygon, np.float64).reshape(-1, 2)
        if self.back is not None:
            pts = pts @ self.back[:, :2].T + self.back[:, 2]
        return np.asarray(pts / self.scale + self.offset, np.float32)


Transform = Callable[[Image], Image | None]  # None: this view does not apply to the image

SMALL_SIDE = 1280  # upscale only images up to this side: beyond, modules are big enough
MIN_DOWNSCALED_SIDE = 200
REGION_SIDE = 480
REGION_MARGIN = 0.35


def _u8(image: npt.NDArray[np.generic]) -> Image:
    return np.ascontiguousarray(image, dtype=np.uint8)


def raw(gray: Image) -> Image:
    # Unsmoothed first: smoothing costs small codes their modules.
    return gray


def smooth(gray: Image) -> Image:
    # Screens: a light blur removes the pixel grid and moiré.
    return _u8(cv2.GaussianBlur(gray, (0, 0), 1.0))


def soften(gray: Image) -> Image:
    # Strong moiré and sensor noise.
    return _u8(cv2.GaussianBlur(gray, (0, 0), 2.0))


def sharpen(gray: Image) -> Image:
    # Motion and focus blur: an unsharp mask restores module edges.
    soft = cv2.GaussianBlur(gray, (0, 0), 2.0)
    return _u8(cv2.addWeighted(gray, 2.0, soft, -1.0, 0))


def equalize(gray: Image) -> Image:
    # Dim or washed-out frames.
    return _u8(cv2.equalizeHist(gray))


def clahe(gray: Image) -> Image:
    # Local contrast: codes in shadow or next to a bright spot.
    return _u8(cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(gray))


def threshold(gray: Image) -> Image:
    # Local binarisation: glare, bright spots, uneven light.
    block = max(15, int(max(gray.shape[:2])) // 30) | 1
    return _u8(
        cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 5)
    )


def invert(gray: Image) -> Image:
    # Dark mode: light modules on a dark screen; ZBar reads only dark on light.
    return _u8(cv2.bitwise_not(gray))


def downscale(gray: Image) -> Image | None:
    # Codes filling the frame, and screen moiré: area averaging removes both.
    if min(gray.shape[:2]) // 3 < MIN_DOWNSCALED_SIDE:
        return None
    return _u8(cv2.resize(gray, None, fx=1 / 3, fy=1 / 3, interpolation=cv2.INTER_AREA))


def upscale(gray: Image) -> Image | None:
    # Small codes (far away, or a low-resolution camera): modules of one or two pixels.
    if max(gray.shape[:2]) > SMALL_SIDE:
        return None
    return _u8(cv2.resize(gray, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC))


VIEWS: dict[str, Transform] = {
    "raw": raw,
    "smooth": smooth,
    "soften": soften,
    "sharpen": sharpen,
    "equalize": equalize,
    "clahe": clahe,
    "threshold": threshold,
    "invert": invert,
    "downscale": downscale,
    "upscale": upscale,
}


def make_view(name: str, gray: Image) -> View | None:
    """The named view of a whole frame (or None when it does not apply to its size)."""
    image = VIEWS[name](gray)
    if image is None:
        return None
    return View(image, scale=image.shape[1] / gray.shape[1])


def region(
    gray: Image, quad: Quad, margin: float = REGION_MARGIN, side: int = REGION_SIDE
) -> View | None:
    """A candidate's neighbourhood, cropped with a margin and scaled to `side`."""
    h, w = gray.shape[:2]
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    margin *= max(x1 - x0, y1 - y0)
    left, top = max(0, int(x0 - margin)), max(0, int(y0 - margin))
    right, bottom = min(w, int(x1 + margin) + 1), min(h, int(y1 + margin) + 1)
    if right - left < 16 or bottom - top < 16:
        return None
    crop = gray[top:bottom, left:right]
    s = side / max(crop.shape[:2])
    interp = cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA
    return View(_u8(cv2.resize(crop, None, fx=s, fy=s, interpolation=interp)), s, (left, top))
