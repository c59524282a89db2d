"""Motion blur: where a smeared code may be, and that region deconvolved.

A phone waved at the camera smears each module along one line. Finder patterns do not
survive a smear of a few modules, so the finder detector (scanner/candidates.py) sees
nothing and the frame would end as idle. Two cheap steps find such codes instead:

- `texture_regions`: squares of dense edges on a small copy (a code's modules, smeared
  or not; a plain surface or a poster's few edges are not dense enough);
- `motion_psf`: the smear's direction from the region's structure tensor (gradients
  along the motion are wiped out, so the tensor is strongly anisotropic: a sharp code
  has edges both ways) and its length from the autocorrelation of the derivative along
  it (a box smear of length L makes each edge two edges L apart: a negative peak at L);
- `cepstral_psf`, a second opinion where the tensor is pulled off by the code's own
  module grid: a box smear puts zeros on lines across the region's spectrum, so the
  cepstrum (the inverse transform of the log spectrum) has its deepest dip at the
  smear's vector, direction and length at once.

`deblurred` then rotates the region so the smear is horizontal and undoes it with a
one-dimensional Wiener filter along the rows (row DFTs: a few ms for a region); the
view maps codes back to frame pixels through the inverse rotation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from scanner.views import Image, Quad, View, region

TEXTURE_SIDE = 320  # the small copy's longer side
EDGE_DENSITY = 30  # mean (|gx| + |gy|) / 2 of a 3x3 Sobel over a window
WINDOW = 9  # in the small copy: a few modules of a small code
MIN_SIDE = 14  # in the small copy
MAX_REGIONS = 2
MIN_ANISOTROPY = 2.0  # tensor eigenvalue ratio: sharp codes measure about 1 to 1.5
MAX_LENGTH = 40  # region pixels: a smear up to 6 % of the region's side
REGION_MARGIN, REGION_SIDE = 0.2, 640  # smeared modules need more pixels than sharp ones
NOISE = (0.01, 0.03)  # Wiener noise-to-signal ratios tried, less to more smoothing
SAME_ANGLE, SAME_LENGTH = 4.0, 3  # degrees, region pixels: the cepstrum's smear adds nothing


def texture_regions(gray: Image) -> list[Quad]:
    """Squares of dense edges, biggest first (at most MAX_REGIONS), in frame pixels."""
    h, w = gray.shape[:2]
    s = min(1.0, TEXTURE_SIDE / max(h, w))
    small = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(small, cv2.CV_16S, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_16S, 0, 1, ksize=3)
    mag = cv2.addWeighted(cv2.convertScaleAbs(gx), 0.5, cv2.convertScaleAbs(gy), 0.5, 0)
    density = cv2.boxFilter(mag, -1, (WINDOW, WINDOW))
    edgy = np.asarray(density > EDGE_DENSITY, np.uint8)
    # Opening keeps areas of edges, and drops the lone edges of plain shapes around them.
    dense = cv2.morphologyEx(edgy, cv2.MORPH_OPEN, np.ones((WINDOW, WINDOW), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(dense)
    found = []
    for x, y, bw, bh, area in stats[1:n]:
        if min(bw, bh) < MIN_SIDE or max(bw, bh) > 2.0 * min(bw, bh) or area < 0.5 * bw * bh:
            continue
        x0, y0, x1, y1 = x / s, y / s, (x + bw) / s, (y + bh) / s
        found.append((area, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)))
    found.sort(key=lambda f: -f[0])
    return [quad for _, quad in found[:MAX_REGIONS]]


def views(gray: Image, quad: Quad) -> Iterator[View]:
    """The region around `quad` deconvolved, from less to more smoothing, by the
    tensor's smear, then by the cepstrum's where it differs; nothing when the region is
    not smeared along one line."""
    view = region(gray, quad, REGION_MARGIN, REGION_SIDE)
    smear = motion_psf(view.image) if view is not None else None
    if view is None or smear is None:
        return
    smears = [smear]
    other = cepstral_psf(view.image)
    turn = abs((other.angle - smear.angle + 90) % 180 - 90)
    if turn > SAME_ANGLE or abs(other.length - smear.length) > SAME_LENGTH:
        smears.append(other)
    for each in smears:
        for noise in NOISE:
            image, back = deblurred(view.image, each, noise)
            yield View(image, view.scale, view.offset, back)


@dataclass(frozen=True)
class Smear:
    angle: float  # degrees, as cv2.getRotationMatrix2D takes it: rotating by it levels the smear
    length: int  # region pixels


def motion_psf(region: Image) -> Smear | None:
    """The smear in a region, or None when the region is not smeared along one line."""
    small = cv2.resize(region, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    f = small.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = float((gx * gx).mean()), float((gy * gy).mean()), float((gx * gy).mean())
    half, det = (jxx + jyy) / 2, jxx * jyy - jxy * jxy
    big = half + math.sqrt(max(half * half - det, 0.0))
    small_eig = 2 * half - big
    if big < MIN_ANISOTROPY * max(small_eig, 1e-6):
        return None
    angle = math.degrees(0.5 * math.atan2(2 * jxy, jxx - jyy)) + 90  # across the strongest edges
    level = _rotate(region, angle)[0]
    d = np.diff(level[::4].astype(np.float32), axis=1)  # every 4th row is enough
    d -= d.mean()
    top = min(MAX_LENGTH, d.shape[1] // 4)
    if top < 2:
        return None
    corr = _row_autocorrelation(d)[2 : top + 1]
    if float(corr.min()) >= 0:
        return None
    return Smear(angle, 2 + int(np.argmin(corr)))


def cepstral_psf(region: Image) -> Smear:
    """The smear as the deepest dip of the region's cepstrum, on a half-size copy (at
    full size the screen's pixel grid makes dips of its own)."""
    small = cv2.resize(region, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    f = small.astype(np.float32)
    f -= f.mean()
    spectrum = np.fft.fft2(f * cv2.createHanningWindow(f.shape[::-1], cv2.CV_32F))
    cepstrum = np.fft.fftshift(np.real(np.fft.ifft2(np.log(np.abs(spectrum) + 1e-3))))
    h, w = cepstrum.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h // 2, xx - w // 2)
    y, x = np.unravel_index(
        np.argmin(np.where((r >= 2) & (r <= MAX_LENGTH / 2), cepstrum, np.inf)), r.shape
    )
    dx, dy = int(x) - w // 2, int(y) - h // 2
    return Smear(math.degrees(math.atan2(dy, dx)) % 180, max(2, round(2 * math.hypot(dx, dy))))


def _row_autocorrelation(d: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    n = cv2.getOptimalDFTSize(2 * d.shape[1])
    padded = cv2.copyMakeBorder(d, 0, 0, 0, n - d.shape[1], cv2.BORDER_CONSTANT, value=0)
    spectrum = cv2.dft(padded, flags=cv2.DFT_ROWS)
    power = cv2.mulSpectrums(spectrum, spectrum, cv2.DFT_ROWS, conjB=True)
    rows = cv2.idft(power, flags=cv2.DFT_ROWS | cv2.DFT_REAL_OUTPUT)
    return np.asarray(rows.mean(axis=0), np.float32)


def deblurred(region: Image, smear: Smear, noise: float) -> tuple[Image, npt.NDArray[np.float64]]:
    """The region levelled and deconvolved along its rows, and the affine map from the
    result's pixels back to the region's."""
    level, matrix = _rotate(region, smear.angle)
    h, w = level.shape[:2]
    pad = 2 * smear.length  # edge copies: the filter must not wrap one side onto the other
    n = cv2.getOptimalDFTSize(w + 2 * pad)
    rows = cv2.copyMakeBorder(level, 0, 0, pad, n - w - pad, cv2.BORDER_REPLICATE)
    spectrum = cv2.dft(rows.astype(np.float32), flags=cv2.DFT_ROWS)
    inverse = np.repeat(_inverse_spectrum(smear.length, noise, n), h, axis=0)
    sharp = cv2.idft(
        cv2.mulSpectrums(spectrum, inverse, cv2.DFT_ROWS),
        flags=cv2.DFT_ROWS | cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT,
    )[:, pad : pad + w]
    back = np.asarray(cv2.invertAffineTransform(matrix), np.float64)
    return np.clip(sharp, 0, 255).astype(np.uint8), back


def _inverse_spectrum(length: int, noise: float, n: int) -> npt.NDArray[np.float32]:
    """The Wiener inverse of a centred box smear, as OpenCV's packed row spectrum."""
    psf = np.zeros(n)
    psf[:length] = 1.0 / length
    psf = np.roll(psf, -(length // 2))
    h = np.fft.rfft(psf)
    impulse = np.fft.irfft(h.conj() / (np.abs(h) ** 2 + noise), n)
    return np.asarray(cv2.dft(impulse.astype(np.float32).reshape(1, -1), flags=cv2.DFT_ROWS))


def _rotate(image: Image, angle: float) -> tuple[Image, npt.NDArray[np.float64]]:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(matrix[0, 0]), abs(matrix[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    matrix[0, 2] += nw / 2 - w / 2
    matrix[1, 2] += nh / 2 - h / 2
    out = cv2.warpAffine(
        image, matrix, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(out, np.uint8), np.asarray(matrix, np.float64)
