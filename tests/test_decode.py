"""scanner.decode on synthetic 720p frames built with qrcode and OpenCV; never a camera.

No test times anything: the pipeline's work is counted (steps tried, estimated work),
and the same frame gets the same work however busy the machine is.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import cv2
import numpy as np
import pytest

from scanner.candidates import candidate_regions, finders
from scanner.decode import (
    BOTH,
    PYZBAR_ONLY,
    REGION_PREFIX,
    DecodeConfig,
    Decoded,
    DecodePipeline,
    DecoderUnavailable,
    PyzbarDecoder,
    View,
    config_for,
    default_pipeline,
    make_decoder,
    to_gray,
)
from scanner.decoders import Reading
from tests import frames
from tests.frames import Frame, place

W, H = 1280, 720
PASS = "CHK1.7Q2M9XKD.visitor-0042.ZJ4W8T6P3R5N"


def zxing_or_skip() -> None:
    pytest.importorskip("zxingcpp")


@pytest.fixture(params=["default", "pyzbar-only"])
def pipeline(request: pytest.FixtureRequest) -> DecodePipeline:
    if request.param == "default":
        zxing_or_skip()
        return DecodePipeline(BOTH)
    return DecodePipeline(PYZBAR_ONLY)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def qr_image(text: str, module: int = 8) -> Frame:
    return frames.qr_image(text, module)


def background(rng: np.random.Generator, level: int = 150) -> Frame:
    frame = np.full((H, W), level, np.uint8)
    for _ in range(8):
        x, y = int(rng.integers(0, W - 200)), int(rng.integers(0, H - 100))
        cv2.rectangle(frame, (x, y), (x + 180, y + 80), int(rng.integers(40, 220)), -1)
    return frame


def square(x: float, y: float, side: float) -> list[tuple[float, float]]:
    return [(x, y), (x + side, y), (x + side, y + side), (x, y + side)]


def add_noise(frame: Frame, rng: np.random.Generator, sigma: float) -> Frame:
    noisy = frame.astype(np.float32) + rng.normal(0, sigma, frame.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def texts(codes: list[Decoded]) -> set[str]:
    return {c.text for c in codes}


def inside(code: Decoded, quad: list[tuple[float, float]], slack: float = 12) -> bool:
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return all(
        min(xs) - slack <= x <= max(xs) + slack and min(ys) - slack <= y <= max(ys) + slack
        for x, y in code.polygon
    )


def test_plain_code_with_polygon_in_frame_coordinates(
    pipeline: DecodePipeline, rng: np.random.Generator
) -> None:
    quad = square(700, 200, 300)
    frame = place(background(rng), qr_image(PASS), quad)

    codes = pipeline.decode_frame(frame)

    assert texts(codes) == {PASS}
    assert len(codes[0].polygon) >= 4
    assert inside(codes[0], quad)
    xs = [x for x, _ in codes[0].polygon]
    assert max(xs) - min(xs) > 200
    assert codes[0].view == pipeline.config.first[0]


def test_bgr_and_bgra_frames(pipeline: DecodePipeline, rng: np.random.Generator) -> None:
    gray = place(background(rng), qr_image(PASS), square(100, 100, 300))
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    bgra = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)

    assert texts(pipeline.decode_frame(bgr)) == {PASS}
    assert texts(pipeline.decode_frame(bgra)) == {PASS}


@pytest.mark.parametrize("damage", ["perspective", "blur", "noise", "glare", "dim", "motion"])
def test_degraded_frames(pipeline: DecodePipeline, rng: np.random.Generator, damage: str) -> None:
    frame = background(rng)
    quad = square(480, 180, 320)
    if damage == "perspective":
        quad = [(430, 170), (820, 230), (790, 560), (460, 610)]
    frame = place(frame, qr_image(PASS), quad)
    if damage == "blur":
        frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), 2.5), np.uint8)
    elif damage == "noise":
        frame = add_noise(frame, rng, 25)
    elif damage == "glare":
        glare = np.zeros_like(frame)
        cv2.ellipse(glare, (600, 300), (60, 40), 30, 0, 360, 255, -1)
        glare = np.asarray(cv2.GaussianBlur(glare, (0, 0), 15), np.uint8)
        frame = np.maximum(frame, glare)
    elif damage == "dim":
        frame = (frame.astype(np.float32) * 0.12 + 20).astype(np.uint8)
        frame = add_noise(frame, rng, 2)
    elif damage == "motion":
        kernel = np.full((1, 7), 1 / 7, np.float32)
        frame = np.asarray(cv2.filter2D(frame, -1, kernel), np.uint8)

    codes = pipeline.decode_frame(frame)

    assert texts(codes) == {PASS}
    assert inside(codes[0], quad)


def test_two_codes_in_one_frame(pipeline: DecodePipeline, rng: np.random.Generator) -> None:
    other = "CHK1.staff-0007.8FJ2KQ"
    left, right = square(120, 200, 300), square(820, 250, 280)
    frame = place(background(rng), qr_image(PASS), left)
    frame = place(frame, qr_image(other), right)

    codes = pipeline.decode_frame(frame)

    assert texts(codes) == {PASS, other}
    by_text = {c.text: c for c in codes}
    assert inside(by_text[PASS], left)
    assert inside(by_text[other], right)


def test_two_codes_with_the_same_text_are_two_codes(
    pipeline: DecodePipeline, rng: np.random.Generator
) -> None:
    left, right = square(120, 200, 300), square(820, 250, 280)
    frame = place(background(rng), qr_image(PASS), left)
    frame = place(frame, qr_image(PASS), right)

    codes = sorted(pipeline.decode_frame(frame), key=lambda c: c.polygon[0][0])

    assert [c.text for c in codes] == [PASS, PASS]
    assert inside(codes[0], left)
    assert inside(codes[1], right)


def test_one_code_read_by_two_views_is_reported_once(rng: np.random.Generator) -> None:
    config = DecodeConfig(first=("raw/pyzbar", "smooth/pyzbar"), second=(), regions=(), frame=())
    pipeline = DecodePipeline(config)
    frame = place(background(rng), qr_image(PASS), square(500, 200, 300))

    codes = pipeline.decode_frame(frame)

    assert [c.view for c in codes] == ["raw/pyzbar"]
    assert pipeline.stats.view_tries == {"raw/pyzbar": 1, "smooth/pyzbar": 1}


def dark_mode(rng: np.random.Generator, quad: list[tuple[float, float]]) -> Frame:
    # A phone in dark mode: light modules on a dark screen.
    return 255 - place(background(rng), qr_image(PASS), quad)


def test_dark_mode_pass_plain_pyzbar_misses_pipeline_reads(
    pipeline: DecodePipeline, rng: np.random.Generator
) -> None:
    quad = square(500, 200, 300)
    frame = dark_mode(rng, quad)

    assert PyzbarDecoder().decode(frame) == []
    codes = pipeline.decode_frame(frame)

    assert texts(codes) == {PASS}
    assert inside(codes[0], quad)


def test_pyzbar_only_reads_dark_mode_by_inverting(rng: np.random.Generator) -> None:
    pipeline = DecodePipeline(PYZBAR_ONLY)

    pipeline.decode_frame(dark_mode(rng, square(500, 200, 300)))

    assert pipeline.stats.view_hits == {f"{REGION_PREFIX}invert/pyzbar": 1}


def test_idle_frame_gets_only_the_first_pass(
    pipeline: DecodePipeline, rng: np.random.Generator
) -> None:
    codes = pipeline.decode_frame(add_noise(background(rng), rng, 5))

    assert codes == []
    stats = pipeline.stats
    counts = (stats.attempts, stats.successes, stats.idle_frames, stats.fallback_frames)
    assert counts == (1, 0, 1, 0)
    steps = pipeline.config.first  # no candidate: no second opinion either
    assert stats.view_tries == dict.fromkeys(steps, 1)
    rates = [pipeline.decoders[step.split("/")[1]].ms_per_mpix for step in steps]
    assert stats.work_ms == pytest.approx(W * H / 1e6 * sum(rates))


def test_frame_read_at_first_pass_gets_no_fallbacks(rng: np.random.Generator) -> None:
    zxing_or_skip()
    pipeline = DecodePipeline(BOTH)
    frame = place(background(rng), qr_image(PASS), square(500, 200, 300))

    for _ in range(3):
        pipeline.decode_frame(frame)

    stats = pipeline.stats
    assert (stats.attempts, stats.successes, stats.codes, stats.fallback_frames) == (3, 3, 3, 0)
    assert stats.view_tries == {BOTH.first[0]: 3}


def test_the_same_frame_gets_the_same_work(rng: np.random.Generator) -> None:
    # Deterministic: the budget counts work, so a busy machine does what a quiet one does.
    frame = np.asarray(cv2.GaussianBlur(dark_mode(rng, square(40, 40, 150)), (0, 0), 1.5))
    first, second = DecodePipeline(PYZBAR_ONLY), DecodePipeline(PYZBAR_ONLY)

    a, b = first.decode_frame(frame), second.decode_frame(frame)

    assert a == b
    assert first.stats.as_dict() | {"cpu_ms": 0} == second.stats.as_dict() | {"cpu_ms": 0}


def test_zero_budget_stops_the_fallbacks(rng: np.random.Generator) -> None:
    pipeline = DecodePipeline(replace(PYZBAR_ONLY, budget_ms=0))

    assert pipeline.decode_frame(dark_mode(rng, square(500, 200, 300))) == []
    assert pipeline.stats.budget_exhausted == 1
    assert set(pipeline.stats.view_tries) == {"raw/pyzbar"}


def test_each_candidate_beyond_the_first_adds_to_the_budget(rng: np.random.Generator) -> None:
    # Four dark-mode codes that only their region views read: a flat budget that covers
    # two of them stops there; what each further candidate adds covers the rest.
    frame = background(rng)
    many = [f"CHK1.MANY.{i}" for i in range(4)]
    for i, text in enumerate(many):
        frame = place(frame, qr_image(text), square(60 + 300 * i, 200, 220))
    regions_only = replace(PYZBAR_ONLY, budget_ms=20, frame=())

    flat = DecodePipeline(replace(regions_only, candidate_ms=0))
    grown = DecodePipeline(replace(regions_only, candidate_ms=20))

    assert len(flat.decode_frame(255 - frame)) == 2 and flat.stats.budget_exhausted == 1
    assert texts(grown.decode_frame(255 - frame)) == set(many)
    assert grown.stats.budget_exhausted == 0


def test_finder_patterns_make_one_candidate_around_the_code(rng: np.random.Generator) -> None:
    code = qr_image(PASS)
    frame = place(background(rng), code, square(600, 150, 240))
    quiet = 240 * 4 * 8 / code.shape[0]  # the symbol starts after 4 modules of quiet zone
    symbol = (600 + quiet, 150 + quiet, 840 - quiet, 390 - quiet)

    found = finders(frame)
    regions = candidate_regions(found)

    assert len(found) >= 3
    assert len(regions) == 1
    (x0, y0), (x1, y1) = regions[0].min(axis=0), regions[0].max(axis=0)
    assert x0 <= symbol[0] + 4 and y0 <= symbol[1] + 4  # detected at half size
    assert x1 >= symbol[2] - 4 and y1 >= symbol[3] - 4


def test_small_code_read_in_its_region() -> None:
    # 1.4 pixels per module at 640x480: too fine for ZBar in the whole frame, read once
    # its region is cropped and scaled up.
    code = cv2.resize(qr_image(PASS, module=1), None, fx=1.4, fy=1.4, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640), 200, np.uint8)
    frame[200 : 200 + code.shape[0], 300 : 300 + code.shape[1]] = code
    pipeline = DecodePipeline(PYZBAR_ONLY)

    assert PyzbarDecoder().decode(frame) == []
    codes = pipeline.decode_frame(frame)

    assert texts(codes) == {PASS}
    assert codes[0].view == f"{REGION_PREFIX}raw/pyzbar"
    assert inside(codes[0], square(300, 200, code.shape[0]), slack=3)


class SmallOnly:
    """A stub decoder that only 'reads' views narrower than 640 px, at a fixed spot."""

    name = "small-only"
    ms_per_mpix = 1.0

    def read(self, gray: Frame) -> Reading:
        if gray.shape[1] >= 640:
            return Reading([], [])
        return Reading([Decoded("x", ((10, 20), (110, 20), (110, 120), (10, 120)))], [])


def test_polygons_map_back_from_a_downscaled_view() -> None:
    config = DecodeConfig(first=("downscale/small-only",), second=(), regions=(), frame=())
    pipeline = DecodePipeline(config, decoders={"small-only": SmallOnly()})

    codes = pipeline.decode_frame(np.zeros((H, W), np.uint8))

    assert codes == [
        Decoded("x", ((30, 60), (330, 60), (330, 360), (30, 360)), "downscale/small-only")
    ]


def test_view_maps_crop_offset_and_scale() -> None:
    view = View(np.zeros((10, 10), np.uint8), scale=2.0, offset=(100, 50))

    mapped = view.to_frame(Decoded("x", ((0, 0), (40, 20))), "v")

    assert mapped == Decoded("x", ((100, 50), (120, 60)), "v")


def test_default_pipeline_is_a_callable_on_bgr_frames(rng: np.random.Generator) -> None:
    frame = cv2.cvtColor(
        place(background(rng), qr_image(PASS), square(300, 100, 300)), cv2.COLOR_GRAY2BGR
    )

    codes = default_pipeline()(frame)

    assert [(c.text, len(c.polygon)) for c in codes] == [(PASS, 4)]


def test_to_gray_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match="8-bit"):
        to_gray(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_gray(np.zeros((2, 4, 4, 3), np.uint8))


def test_make_decoder() -> None:
    assert make_decoder("pyzbar").name == "pyzbar"
    assert make_decoder("ZBar").name == "pyzbar"
    with pytest.raises(ValueError, match="unknown QR decoder 'quirc'"):
        make_decoder("quirc")


def test_without_zxing_auto_is_pyzbar_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxingcpp", None)

    with pytest.raises(DecoderUnavailable, match=r"pip install \.\[zxing\]"):
        config_for("zxing-cpp")
    assert config_for("auto") == PYZBAR_ONLY


def test_unknown_step_is_rejected() -> None:
    config = DecodeConfig(first=("median/pyzbar",), second=(), regions=(), frame=())
    with pytest.raises(ValueError, match="unknown decode step 'median/pyzbar'"):
        DecodePipeline(config)


def test_codes_read_by_the_first_passes_are_handed_on_before_the_fallbacks(
    pipeline: DecodePipeline, rng: np.random.Generator
) -> None:
    frame = place(background(rng), qr_image(PASS), square(700, 200, 300))
    early: list[list[Decoded]] = []

    codes = pipeline.decode_frame(frame, early=early.append)

    first = pipeline.config.first + pipeline.config.second
    if any(pipeline.stats.view_hits.get(step) for step in first):
        assert early == [codes]
    else:  # read by a fallback only: nothing to hand on early
        assert early == [] and texts(codes) == {PASS}
