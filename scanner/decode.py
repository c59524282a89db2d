"""Pure QR decoding: a camera frame (ndarray) in, the codes it holds out.

No I/O and no threads here; the kiosk runs `DecodePipeline.decode_frame` in its executor.
A pipeline is not thread-safe: give each worker its own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Polygon = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Decoded:
    text: str
    polygon: Polygon  # corner points in the frame's pixel coordinates


class DecoderUnavailable(RuntimeError):
    """The decoding library behind a decoder is not installed."""


class Decoder(Protocol):
    name: str

    def decode(self, gray: Image) -> list[Decoded]: ...


class PyzbarDecoder:
    """ZBar through pyzbar, restricted to QR codes (the default decoder)."""

    name = "pyzbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except ImportError as e:  # pyzbar raises ImportError when libzbar is missing
            raise DecoderUnavailable(
                f"pyzbar cannot load ZBar ({e}); install the zbar library (apt install libzbar0)"
            ) from e
        self._pyzbar = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, gray: Image) -> list[Decoded]:
        return [
            Decoded(
                text=r.data.decode("utf-8", errors="replace"),
                polygon=tuple((int(p.x), int(p.y)) for p in r.polygon),
            )
            for r in self._pyzbar.decode(gray, symbols=self._symbols)
        ]


class ZxingDecoder:
    """zxing-cpp (the optional `zxing` extra): faster and more robust than ZBar."""

    name = "zxing-cpp"

    def __init__(self) -> None:
        try:
            import zxingcpp
        except ImportError as e:
            raise DecoderUnavailable(
                "the zxing-cpp decoder needs the optional dependency: pip install .[zxing]"
            ) from e
        self._zxing: Any = zxingcpp
        self._formats = zxingcpp.BarcodeFormat.QRCode

    def decode(self, gray: Image) -> list[Decoded]:
        results = []
        for r in self._zxing.read_barcodes(gray, formats=self._formats):
            pos = r.position
            corners = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
            results.append(
                Decoded(text=r.text, polygon=tuple((int(p.x), int(p.y)) for p in corners))
            )
        return results


DECODERS: dict[str, Callable[[], Decoder]] = {
    PyzbarDecoder.name: PyzbarDecoder,
    "zbar": PyzbarDecoder,
    ZxingDecoder.name: ZxingDecoder,
    "zxing": ZxingDecoder,
}


def make_decoder(name: str) -> Decoder:
    """Build a decoder by name: "pyzbar" (alias "zbar") or "zxing-cpp" (alias "zxing")."""
    try:
        factory = DECODERS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(DECODERS))
        raise ValueError(f"unknown QR decoder {name!r}; choose one of: {known}") from None
    return factory()


@dataclass(frozen=True)
class View:
    """A preprocessed image to decode, and how its pixels map back to the frame."""

    image: Image
    scale: float = 1.0  # view pixels per frame pixel
    offset: tuple[int, int] = (0, 0)  # frame position of the view's origin

    def to_frame(self, code: Decoded) -> Decoded:
        if self.scale == 1.0 and self.offset == (0, 0):
            return code
        ox, oy = self.offset
        polygon = tuple(
            (round(x / self.scale + ox), round(y / self.scale + oy)) for x, y in code.polygon
        )
        return Decoded(text=code.text, polygon=polygon)


Fallback = Callable[[Image], Iterator[View]]

# Sizes in pixels; chosen for webcam frames (longer side 640-1280), not for particular images.
DOWNSCALE_FACTOR = 3
MIN_DOWNSCALED_SIDE = 160
SMALL_FRAME_SIDE = 640
REGION_SIDE = 400
REGION_MARGIN = 0.25
MAX_REGIONS = 8


def _adaptive_block(gray: Image) -> int:
    block = max(15, int(max(gray.shape[:2])) // 30)
    return block | 1


def downscale(gray: Image) -> Iterator[View]:
    # Codes held close to the camera, and screen moiré: area averaging removes both.
    h, w = gray.shape[:2]
    if min(h, w) // DOWNSCALE_FACTOR < MIN_DOWNSCALED_SIDE:
        return
    f = 1.0 / DOWNSCALE_FACTOR
    small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    yield View(np.asarray(small, np.uint8), scale=small.shape[1] / w)


def unsmoothed(gray: Image) -> Iterator[View]:
    # The frame as captured, for pipelines whose first decode runs on a smoothed copy.
    yield View(gray)


def threshold(gray: Image) -> Iterator[View]:
    # Local binarisation: glare, bright spots, uneven light.
    binary = cv2.adaptiveThreshold(
        gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, _adaptive_block(gray), 5
    )
    yield View(np.asarray(binary, np.uint8))


def equalize(gray: Image) -> Iterator[View]:
    # Dim or washed-out frames.
    yield View(np.asarray(cv2.equalizeHist(gray), np.uint8))


def clahe(gray: Image) -> Iterator[View]:
    # Local contrast: codes in shadow or next to a bright spot.
    tool = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    yield View(np.asarray(tool.apply(gray), np.uint8))


def blur(gray: Image) -> Iterator[View]:
    # A light blur defeats screen moiré and sensor noise.
    yield View(np.asarray(cv2.GaussianBlur(gray, (0, 0), 2.0), np.uint8))


def sharpen(gray: Image) -> Iterator[View]:
    soft = cv2.GaussianBlur(gray, (0, 0), 2.0)
    yield View(np.asarray(cv2.addWeighted(gray, 2.0, soft, -1.0, 0), np.uint8))


def upscale(gray: Image) -> Iterator[View]:
    # Small frames (a cropped or low-resolution source) hold codes with tiny modules.
    h, w = gray.shape[:2]
    if max(h, w) > SMALL_FRAME_SIDE:
        return
    big = cv2.resize(gray, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    yield View(np.asarray(big, np.uint8), scale=2.0)


def invert(gray: Image) -> Iterator[View]:
    # Light-on-dark codes (phones in dark mode); ZBar does not try them itself.
    yield View(np.asarray(cv2.bitwise_not(gray), np.uint8))


class Region:
    """Crop each QR candidate OpenCV's detector finds and scale it to a workable size.

    Small, distant or damaged codes that the decoder misses in the full frame often decode
    once cropped and normalised; a blurred and a binarised copy of each crop follow.
    """

    def __init__(self) -> None:
        self._detector = cv2.QRCodeDetectorAruco()  # stateful: one per pipeline

    def candidates(self, gray: Image) -> list[npt.NDArray[np.float32]]:
        found, points = self._detector.detectMulti(gray)
        if not found or points is None:
            return []
        return [np.asarray(q, np.float32).reshape(-1, 2) for q in points[:MAX_REGIONS]]

    def __call__(self, gray: Image) -> Iterator[View]:
        yield from _region_views(gray, self.candidates(gray))


def _region_views(gray: Image, quads: list[npt.NDArray[np.float32]]) -> Iterator[View]:
    h, w = gray.shape[:2]
    for quad in quads:
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        margin = REGION_MARGIN * max(x1 - x0, y1 - y0)
        left, top = max(0, int(x0 - margin)), max(0, int(y0 - margin))
        right, bottom = min(w, int(x1 + margin) + 1), min(h, int(y1 + margin) + 1)
        if right - left < 8 or bottom - top < 8:
            continue
        crop = gray[top:bottom, left:right]
        s = REGION_SIDE / max(crop.shape[:2])
        interp = cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA
        norm = np.asarray(cv2.resize(crop, None, fx=s, fy=s, interpolation=interp), np.uint8)
        yield View(norm, scale=s, offset=(left, top))
        soft = np.asarray(cv2.GaussianBlur(norm, (0, 0), 1.5), np.uint8)
        yield View(soft, scale=s, offset=(left, top))
        binary = cv2.adaptiveThreshold(
            norm, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 41, 5
        )
        yield View(np.asarray(binary, np.uint8), scale=s, offset=(left, top))


# ZBar reads a lightly smoothed frame as well as the raw one on real photographs, and
# faster, since sensor noise no longer produces edges to scan; zxing-cpp reads it worse.
PRESMOOTH_SIGMA: dict[str, float] = {PyzbarDecoder.name: 1.0}

# Ordered by codes recovered per millisecond on real photographs (bench/decode_bench.py).
# ZBar gains most from a downscale (moiré, codes held close) and binarisation; zxing-cpp
# already downscales and inverts by itself and gains most from contrast equalisation.
DEFAULT_FALLBACKS: tuple[str, ...] = (
    "downscale",
    "upscale",
    "threshold",
    "invert",  # rare in photographs, common at a kiosk: phones in dark mode
    "unsmoothed",
    "equalize",
    "blur",
    "sharpen",
    "region",
    "clahe",
)
DECODER_FALLBACKS: dict[str, tuple[str, ...]] = {
    PyzbarDecoder.name: DEFAULT_FALLBACKS,
    ZxingDecoder.name: (
        "equalize",
        "clahe",
        "blur",
        "threshold",
        "upscale",
        "sharpen",
        "region",
        "downscale",
    ),
}
FALLBACKS: dict[str, Callable[[], Fallback]] = {
    "downscale": lambda: downscale,
    "unsmoothed": lambda: unsmoothed,
    "upscale": lambda: upscale,
    "threshold": lambda: threshold,
    "equalize": lambda: equalize,
    "blur": lambda: blur,
    "sharpen": lambda: sharpen,
    "region": Region,
    "invert": lambda: invert,
    "clahe": lambda: clahe,
}


@dataclass
class DecodeStats:
    """Decode health: how often frames decode and which fallbacks earn their keep."""

    attempts: int = 0  # frames decoded
    successes: int = 0  # frames with at least one code
    codes: int = 0
    fallback_frames: int = 0  # frames the plain decode missed
    budget_exhausted: int = 0  # frames whose fallbacks stopped at the time budget
    fallback_tries: Counter[str] = field(default_factory=Counter)
    fallback_hits: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "codes": self.codes,
            "fallback_frames": self.fallback_frames,
            "budget_exhausted": self.budget_exhausted,
            "fallback_tries": dict(self.fallback_tries),
            "fallback_hits": dict(self.fallback_hits),
        }


def to_gray(frame: npt.NDArray[Any]) -> Image:
    """A contiguous 8-bit grayscale copy or view of a BGR, BGRA or grayscale frame."""
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        frame = cv2.cvtColor(frame, code)
    if frame.ndim != 2:
        raise ValueError(f"expected a grayscale or BGR frame, got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit frame, got {frame.dtype}")
    return np.ascontiguousarray(frame)


class DecodePipeline:
    """Grayscale, decode; if nothing decodes, try OpenCV fallbacks within a time budget.

    The first decode runs on the grayscale frame, lightly smoothed when the decoder gains
    from it (`presmooth_sigma`, by default from PRESMOOTH_SIGMA). Fallbacks run in order
    and stop at the first that yields a code, so a frame the first decode reads costs one
    decode. The budget is checked before each view: a frame overruns it by at most one
    view's decode.
    """

    def __init__(
        self,
        decoder: Decoder | None = None,
        *,
        budget_ms: float = 50.0,
        fallbacks: Sequence[str] | None = None,
        presmooth_sigma: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if budget_ms < 0:
            raise ValueError("budget_ms must not be negative")
        self.decoder = decoder if decoder is not None else PyzbarDecoder()
        self.budget_ms = budget_ms
        if presmooth_sigma is None:
            presmooth_sigma = PRESMOOTH_SIGMA.get(self.decoder.name, 0.0)
        self.presmooth_sigma = presmooth_sigma
        if fallbacks is None:
            fallbacks = DECODER_FALLBACKS.get(self.decoder.name, DEFAULT_FALLBACKS)
            if presmooth_sigma <= 0:  # the first decode already saw the raw frame
                fallbacks = [n for n in fallbacks if n != "unsmoothed"]
        names = list(fallbacks)
        unknown = [n for n in names if n not in FALLBACKS]
        if unknown:
            raise ValueError(f"unknown fallbacks {unknown}; choose from {sorted(FALLBACKS)}")
        self.fallbacks = [(n, FALLBACKS[n]()) for n in names]
        self._clock = clock
        self.stats = DecodeStats()

    def reset_stats(self) -> DecodeStats:
        """Return the counters so far and start new ones."""
        stats, self.stats = self.stats, DecodeStats()
        return stats

    def decode_frame(self, frame: npt.NDArray[Any]) -> list[Decoded]:
        start = self._clock()
        stats = self.stats
        stats.attempts += 1
        gray = to_gray(frame)
        first = gray
        if self.presmooth_sigma > 0:
            first = np.asarray(cv2.GaussianBlur(gray, (0, 0), self.presmooth_sigma), np.uint8)
        codes = _unique(self.decoder.decode(first))
        if not codes and self.fallbacks:
            stats.fallback_frames += 1
            codes = self._fallback(gray, start)
        if codes:
            stats.successes += 1
            stats.codes += len(codes)
        return codes

    def _fallback(self, gray: Image, start: float) -> list[Decoded]:
        deadline = start + self.budget_ms / 1000.0
        stats = self.stats
        for name, fallback in self.fallbacks:
            if self._clock() >= deadline:
                stats.budget_exhausted += 1
                return []
            stats.fallback_tries[name] += 1
            found: list[Decoded] = []
            for view in fallback(gray):
                found.extend(view.to_frame(c) for c in self.decoder.decode(view.image))
                if self._clock() >= deadline:
                    break
            if found:
                stats.fallback_hits[name] += 1
                return _unique(found)
        return []


def _unique(codes: list[Decoded]) -> list[Decoded]:
    seen: dict[str, Decoded] = {}
    for code in codes:
        seen.setdefault(code.text, code)
    return list(seen.values())
