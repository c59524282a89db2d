"""Where a QR code is likely: finder patterns found from contours, grouped into regions.

A finder pattern is a square ring around a square, so its contour has two levels of
contours nested inside it, in either polarity (dark mode too). It runs on a copy of at
most DETECT_SIDE pixels, so it costs the same for every frame of a camera: a frame with
no candidate (and nothing decoded) ends the pipeline's work on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Quad = npt.NDArray[np.float32]

DETECT_SIDE = 640
MIN_FINDER_PX = 5.0  # in the detection copy: smaller is noise
MAX_CANDIDATES = 24
GROUP_REACH = 14.0  # finder sizes between finders of one code (versions up to ~15 at 7 px)


@dataclass(frozen=True)
class Finder:
    x: float
    y: float
    size: float  # side of the pattern's outer square, frame pixels


def finders(gray: Image) -> list[Finder]:
    h, w = gray.shape[:2]
    s = min(1.0, DETECT_SIDE / max(h, w))
    small = gray if s == 1.0 else cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    block = max(11, int(max(small.shape[:2])) // 20) | 1
    binary = cv2.adaptiveThreshold(
        small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 4
    )
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    tree = hierarchy[0]
    child = tree[:, 2]
    grandchild = np.where(child >= 0, tree[np.maximum(child, 0), 2], -1)
    found: list[Finder] = []
    for i in np.flatnonzero(grandchild >= 0):  # vectorised: frames hold thousands of contours
        finder = _finder(contours[int(i)], contours[int(grandchild[i])], s)
        if finder is not None:
            found.append(finder)
    return found


def _finder(outer: npt.NDArray[Any], inner: npt.NDArray[Any], s: float) -> Finder | None:
    (cx, cy), (bw, bh), _ = cv2.minAreaRect(outer)
    if min(bw, bh) < MIN_FINDER_PX or max(bw, bh) > 2.2 * min(bw, bh):
        return None
    area = cv2.contourArea(outer)
    inner_area = cv2.contourArea(inner)
    if inner_area <= 0 or not 2.0 <= area / inner_area <= 14.0:  # ideal (7/3)^2 = 5.4
        return None
    if area < 0.6 * bw * bh:  # a ring, not a thin outline of something else
        return None
    (ix, iy), _, _ = cv2.minAreaRect(inner)
    if math.hypot(ix - cx, iy - cy) > 0.2 * max(bw, bh):  # concentric
        return None
    return Finder(cx / s, cy / s, math.sqrt(area) / s)


def candidate_regions(found: list[Finder]) -> list[Quad]:
    """Finders grouped by distance and size into codes; each group's bounding square."""
    groups: list[list[Finder]] = []
    for f in sorted(found, key=lambda f: -f.size):
        for group in groups:
            g = group[0]
            near = math.hypot(f.x - g.x, f.y - g.y) <= GROUP_REACH * g.size
            if near and 0.5 <= f.size / g.size <= 2.0 and len(group) < 4:
                group.append(f)
                break
        else:
            groups.append([f])
    quads = [_group_quad(g) for g in sorted(groups, key=lambda g: -len(g)) if len(g) >= 2]
    return quads[:MAX_CANDIDATES]


def _group_quad(group: list[Finder]) -> Quad:
    xs = [f.x for f in group]
    ys = [f.y for f in group]
    size = max(f.size for f in group)
    if len(group) == 2:  # two finders: a side or the diagonal; cover both
        d = math.hypot(xs[1] - xs[0], ys[1] - ys[0])
        cx, cy = sum(xs) / 2, sum(ys) / 2
        half = d + size / 2
        x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
    else:
        x0, y0 = min(xs) - size / 2, min(ys) - size / 2
        x1, y1 = max(xs) + size / 2, max(ys) + size / 2
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
