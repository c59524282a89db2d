"""Pure QR decoding: a camera frame (ndarray) in, the codes it holds out.

The work on a frame is fixed by the frame, never by the clock, so a busy machine reads
exactly what a quiet one does:

1. the first pass: the first decoder on the unsmoothed frame, and the finder-pattern
   detector (scanner/candidates.py) on a small copy;
2. nothing decoded and no candidate (an idle door): done, at the cost of that pass. The
   second decoder's whole-frame opinion runs only where a candidate is still unread:
   on frames with no finder it read nothing the fallbacks missed (real photographs and
   phone screens, docs/benchmarks.md) and cost an idle frame four fifths of its time;
3. otherwise each candidate not yet read gets its region views (crop, scale, smoothed,
   binarised, sharpened ...), then the whole frame its views, until every candidate is
   read or the frame's budget is spent. The budget is in estimated CPU milliseconds,
   counted from the pixels each decoder is given (Decoder.ms_per_mpix), not measured,
   and grows with each candidate beyond the first (up to MORE_CANDIDATES of them), so a
   frame of many codes has the work to read each; a door's one pass gets the base;
4. a frame with no code and no finder is searched for smeared codes (scanner/deblur.py);
   those, and candidates still unread, are deconvolved and decoded again.

Distinct codes are kept apart even when they hold the same text; the same code read by
two views is reported once. No I/O and no threads here; a pipeline is not thread-safe
(give each worker its own).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from scanner import deblur
from scanner.candidates import candidate_regions, finders
from scanner.decoders import (
    Decoded,
    Decoder,
    DecoderUnavailable,
    PyzbarDecoder,
    ZxingDecoder,
    available,
    make_decoder,
)
from scanner.views import VIEWS, Quad, View, make_view, region

__all__ = [
    "DecodeConfig",
    "DecodePipeline",
    "DecodeStats",
    "Decoded",
    "Decoder",
    "DecoderUnavailable",
    "PyzbarDecoder",
    "View",
    "ZxingDecoder",
    "available",
    "config_for",
    "default_pipeline",
    "make_decoder",
    "to_gray",
]

ZX, PZ = ZxingDecoder.name, PyzbarDecoder.name
Early = Callable[[list[Decoded]], None]  # codes read before the fallbacks
REGION_PREFIX = "region:"  # a step run on a candidate region, in stats and Decoded.view
DEBLUR = "deblur"  # a smeared region deconvolved (scanner/deblur.py), not a VIEWS entry
DEBLUR_MS_PER_MPIX = 12.0  # the rotation and row DFTs, estimated like a decoder's
MORE_CANDIDATES = 16  # candidates beyond the first that add to a frame's budget


@dataclass(frozen=True)
class DecodeConfig:
    """What a pipeline tries, in order: steps are "view/decoder" (views in VIEWS)."""

    first: tuple[str, ...]
    second: tuple[str, ...]  # whole-frame passes when a candidate is still unread
    regions: tuple[str, ...]  # on each candidate region not yet read
    frame: tuple[str, ...]  # on the whole frame, after the regions
    deblur: tuple[str, ...] = ()  # decoders for deconvolved smeared regions (after regions)
    budget_ms: float = 150.0  # estimated CPU ms of decoding per frame, beyond the first pass
    candidate_ms: float = 20.0  # and this more for each candidate beyond the first
    detect: bool = True  # look for finder patterns (off: fallbacks on every frame)

    def steps(self) -> list[tuple[str, str]]:
        return [_split(s) for s in (*self.first, *self.second, *self.regions, *self.frame)]


def _split(step: str) -> tuple[str, str]:
    view, _, decoder = step.partition("/")
    if (view not in VIEWS and view != DEBLUR) or not decoder:
        raise ValueError(f"unknown decode step {step!r}; VIEW/DECODER, views {sorted(VIEWS)}")
    return view, decoder


# Orders chosen by codes recovered per estimated millisecond on real photographs and on
# the phone-screen benchmark (bench/decode_bench.py, bench/phone_screens.py).
BOTH = DecodeConfig(
    first=(f"raw/{ZX}",),
    second=(f"raw/{PZ}",),
    regions=(
        f"raw/{ZX}",
        f"raw/{PZ}",
        f"smooth/{PZ}",
        f"threshold/{PZ}",
        f"sharpen/{ZX}",
        f"sharpen/{PZ}",
        f"equalize/{ZX}",
        f"soften/{PZ}",
        f"threshold/{ZX}",
    ),
    frame=(
        f"upscale/{ZX}",
        f"equalize/{ZX}",
        f"sharpen/{ZX}",
        f"clahe/{ZX}",
        f"threshold/{ZX}",
        f"threshold/{PZ}",
        f"sharpen/{PZ}",
        f"smooth/{PZ}",
        f"equalize/{PZ}",
        f"soften/{PZ}",
    ),
    deblur=(ZX,),
)
PYZBAR_ONLY = DecodeConfig(
    first=(f"raw/{PZ}",),
    second=(),
    regions=(
        f"raw/{PZ}",
        f"smooth/{PZ}",
        f"threshold/{PZ}",
        f"invert/{PZ}",
        f"sharpen/{PZ}",
        f"soften/{PZ}",
    ),
    frame=(
        f"threshold/{PZ}",
        f"invert/{PZ}",
        f"soften/{PZ}",
        f"sharpen/{PZ}",
        f"smooth/{PZ}",
        f"downscale/{PZ}",
        f"upscale/{PZ}",
    ),
    deblur=(PZ,),
)


def config_for(decoder: str = "auto") -> DecodeConfig:
    """ "auto": both decoders when zxing-cpp is installed, else ZBar alone."""
    name = decoder.strip().lower()
    if name == "auto":
        return BOTH if available(ZX) else PYZBAR_ONLY
    kind = make_decoder(name).name
    if kind == PZ:
        return PYZBAR_ONLY
    return DecodeConfig(
        first=BOTH.first,
        second=(),
        regions=tuple(s for s in BOTH.regions if s.endswith(ZX)),
        frame=tuple(s for s in BOTH.frame if s.endswith(ZX)),
        deblur=(ZX,),
    )


@dataclass
class DecodeStats:
    """Decode health: how often frames decode, what they cost, which views earn their keep."""

    attempts: int = 0  # frames decoded
    successes: int = 0  # frames with at least one code
    codes: int = 0
    idle_frames: int = 0  # no code and no candidate: only the first pass ran
    fallback_frames: int = 0  # frames that went on past the first pass
    budget_exhausted: int = 0  # frames whose fallbacks stopped at the budget
    work_ms: float = 0.0  # estimated decoding CPU ms, all frames
    cpu_ms: float = 0.0  # measured CPU ms of this thread, all frames (for reports only)
    view_tries: Counter[str] = field(default_factory=Counter)
    view_hits: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "codes": self.codes,
            "idle_frames": self.idle_frames,
            "fallback_frames": self.fallback_frames,
            "budget_exhausted": self.budget_exhausted,
            "work_ms": round(self.work_ms, 1),
            "cpu_ms": round(self.cpu_ms, 1),
            "view_tries": dict(self.view_tries),
            "view_hits": dict(self.view_hits),
        }


def to_gray(frame: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
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
    """Decode a frame as DecodeConfig says; callable: ``pipeline(frame) -> [Decoded]``."""

    def __init__(
        self,
        config: DecodeConfig | None = None,
        *,
        decoders: dict[str, Decoder] | None = None,
    ) -> None:
        self.config = config if config is not None else config_for("auto")
        if self.config.budget_ms < 0 or self.config.candidate_ms < 0:
            raise ValueError("budget_ms and candidate_ms must not be negative")
        self.decoders: dict[str, Decoder] = dict(decoders or {})
        for name in [d for _, d in self.config.steps()] + list(self.config.deblur):
            if name not in self.decoders:
                self.decoders[name] = make_decoder(name)
        self.stats = DecodeStats()
        self.code_seen = False  # the last frame held a candidate or a code
        self.unread: list[Quad] = []  # the last frame's candidates and smears left unread

    def reset_stats(self) -> DecodeStats:
        """Return the counters so far and start new ones."""
        stats, self.stats = self.stats, DecodeStats()
        return stats

    def __call__(self, frame: npt.NDArray[Any]) -> list[Decoded]:
        return self.decode_frame(frame)

    def decode_frame(self, frame: npt.NDArray[Any], early: Early | None = None) -> list[Decoded]:
        """The frame's codes; `early` gets those the first passes read, before the
        fallbacks look for more (a door need not wait for them)."""
        cpu = time.thread_time()
        stats = self.stats
        stats.attempts += 1
        run = _FrameRun(self, to_gray(frame))
        run.first_pass()
        if run.doubt():
            run.second_pass()
        if early is not None and run.found:
            early(list(run.found))
        if not run.found and not run.candidates and self.config.deblur:
            run.look_for_smears()
        if not run.found and not run.candidates and not run.smeared:
            stats.idle_frames += 1
        elif run.open_candidates() or not run.found:
            stats.fallback_frames += 1
            run.fallbacks()
        stats.work_ms += run.spent + run.first_spent
        stats.cpu_ms += 1000 * (time.thread_time() - cpu)
        self.code_seen = bool(run.found or run.candidates or run.smeared)
        self.unread = run.open_candidates(smeared=True)
        if run.found:
            stats.successes += 1
            stats.codes += len(run.found)
        return run.found


class _FrameRun:
    """One frame's decoding: what was found, where codes may still be, what was spent."""

    def __init__(self, pipeline: DecodePipeline, gray: npt.NDArray[np.uint8]) -> None:
        self.p = pipeline
        self.gray = gray
        self.found: list[Decoded] = []
        self.candidates: list[Quad] = []
        self.smeared: list[Quad] = []  # regions of dense edges where no finder was seen
        self.spent = 0.0
        self.first_spent = 0.0
        self.exhausted = False

    def first_pass(self) -> None:
        cfg = self.p.config
        self._whole_frame(cfg.first)
        if cfg.detect:
            self.candidates.extend(candidate_regions(finders(self.gray)))

    def look_for_smears(self) -> None:
        self.smeared = deblur.texture_regions(self.gray)

    def doubt(self) -> bool:
        return bool(self.open_candidates())

    def second_pass(self) -> None:
        self._whole_frame(self.p.config.second)

    def _whole_frame(self, steps: tuple[str, ...]) -> None:
        # Passes outside the budget: every frame gets them, whatever the budget.
        for step in steps:
            view = make_view(_split(step)[0], self.gray)
            if view is not None:
                self.first_spent += self._decode(step, view)

    def fallbacks(self) -> None:
        cfg = self.p.config
        for quad in self.open_candidates():
            view = region(self.gray, quad)
            if view is None:
                continue
            for step in cfg.regions:
                if not self._within(step, view) or self._read(quad):
                    break
                self.spent += self._decode(step, _region_view(step, view), REGION_PREFIX)
        for quad in [*self.open_candidates(), *self.smeared]:
            if not self._read(quad) and not self._deblur(quad):
                break
        for step in cfg.frame:
            if self.found and not self.open_candidates():
                return
            view = make_view(_split(step)[0], self.gray)
            if view is None:
                continue
            if not self._within(step, view):
                return
            self.spent += self._decode(step, view)

    def _deblur(self, quad: Quad) -> bool:
        """Deconvolve a smeared region and decode it; False once the budget is spent."""
        for sharp in deblur.views(self.gray, quad):
            for name in self.p.config.deblur:
                step = f"{DEBLUR}/{name}"
                if not self._within(step, sharp):
                    return False
                self.spent += self._decode(step, sharp, REGION_PREFIX)
                if self._read(quad):
                    return True
        return True

    def _budget(self) -> float:
        cfg = self.p.config
        more = min(MORE_CANDIDATES, max(0, len(self.candidates) - 1))
        return cfg.budget_ms + cfg.candidate_ms * more

    def _within(self, step: str, view: View) -> bool:
        cost = self._cost(step, view)
        if self.spent + cost > self._budget():
            if not self.exhausted:
                self.p.stats.budget_exhausted += 1
            self.exhausted = True
            return False
        return True

    def _cost(self, step: str, view: View) -> float:
        h, w = view.image.shape[:2]
        view_name, decoder = _split(step)
        extra = DEBLUR_MS_PER_MPIX if view_name == DEBLUR else 0.0
        return float(h * w / 1e6 * (self.p.decoders[decoder].ms_per_mpix + extra))

    def _decode(self, step: str, view: View, where: str = "") -> float:
        cost = self._cost(step, view)
        stats = self.p.stats
        label = where + step
        stats.view_tries[label] += 1
        reading = self.p.decoders[_split(step)[1]].read(view.image)
        new = 0
        for code in reading.codes:
            mapped = view.to_frame(code, label)
            if not any(_same(mapped, old) for old in self.found):
                self.found.append(mapped)
                new += 1
        if new:
            stats.view_hits[label] += new
        self.candidates.extend(view.quad_to_frame(q) for q in reading.located)
        return cost

    def open_candidates(self, *, smeared: bool = False) -> list[Quad]:
        quads = [*self.candidates, *self.smeared] if smeared else self.candidates
        return [q for q in quads if not self._read(q)]

    def _read(self, quad: Quad) -> bool:
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        for code in self.found:
            cx, cy = _centre(code)
            if x0 <= cx <= x1 and y0 <= cy <= y1:
                return True
        return False


def _region_view(step: str, view: View) -> View:
    image = VIEWS[_split(step)[0]](view.image)
    return view if image is None else View(image, view.scale, view.offset)


def _centre(code: Decoded) -> tuple[float, float]:
    pts = np.asarray(code.polygon, np.float32).reshape(-1, 2)
    return float(pts[:, 0].mean()), float(pts[:, 1].mean())


def _same(a: Decoded, b: Decoded) -> bool:
    """The same code read twice: same text, and each one's centre within the other."""
    if a.text != b.text:
        return False
    for one, other in ((a, b), (b, a)):
        cx, cy = _centre(one)
        pts = np.asarray(other.polygon, np.float32).reshape(-1, 2)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            return True
    return False


def default_pipeline() -> DecodePipeline:
    """The kiosk's default configuration: a callable from a BGR frame to [Decoded]."""
    return DecodePipeline(config_for("auto"))
