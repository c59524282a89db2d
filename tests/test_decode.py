"""scanner.decode on synthetic 720p frames built with qrcode and OpenCV; never a camera."""

from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np
import pytest

from scanner.decode import (
    Decoded,
    DecodePipeline,
    Decoder,
    DecoderUnavailable,
    PyzbarDecoder,
    View,
    ZxingDecoder,
    make_decoder,
    to_gray,
)
from tests import frames
from tests.frames import Frame, place

W, H = 1280, 720
PASS = "CHK1.7Q2M9XKD.visitor-0042.ZJ4W8T6P3R5N"


def unhurried(decoder: Decoder, **options: Any) -> DecodePipeline:
    """A pipeline whose clock stands still: these tests are about what the fallbacks
    read, not how fast; on a busy machine the 50 ms budget ran out before "invert"."""
    return DecodePipeline(decoder, clock=lambda: 0.0, **options)


def zxing_or_skip() -> ZxingDecoder:
    pytest.importorskip("zxingcpp")
    return ZxingDecoder()


@pytest.fixture(params=["pyzbar", "zxing-cpp"])
def pipeline(request: pytest.FixtureRequest) -> DecodePipeline:
    if request.param == "zxing-cpp":
        return unhurried(zxing_or_skip())
    return unhurried(PyzbarDecoder())


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
    # the code fills its quiet zone too: the symbol lies within the placed square
    assert inside(codes[0], quad)
    xs = [x for x, _ in codes[0].polygon]
    assert max(xs) - min(xs) > 200


def test_bgr_and_bgra_frames(pipeline: DecodePipeline, rng: np.random.Generator) -> None:
    gray = place(background(rng), qr_image(PASS), square(100, 100, 300))
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    bgra = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)

    assert texts(pipeline.decode_frame(bgr)) == {PASS}
    assert texts(pipeline.decode_frame(bgra)) == {PASS}


@pytest.mark.parametrize(
    "damage",
    ["perspective", "blur", "noise", "glare", "dim"],
)
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


def test_same_code_twice_is_reported_once(
    pipeline: DecodePipeline, rng: np.random.Generator
) -> None:
    frame = place(background(rng), qr_image(PASS), square(120, 200, 300))
    frame = place(frame, qr_image(PASS), square(820, 250, 280))

    assert [c.text for c in pipeline.decode_frame(frame)] == [PASS]


def test_inverted_code_plain_pyzbar_misses_pipeline_reads(rng: np.random.Generator) -> None:
    # A phone in dark mode shows light modules on a dark screen; ZBar reads only dark-on-light.
    quad = square(500, 200, 300)
    frame = 255 - place(background(rng), qr_image(PASS), quad)
    pipeline = unhurried(PyzbarDecoder())

    assert PyzbarDecoder().decode(frame) == []
    codes = pipeline.decode_frame(frame)

    assert texts(codes) == {PASS}
    assert inside(codes[0], quad)
    assert pipeline.stats.fallback_hits["invert"] == 1


def test_inverted_code_zxing() -> None:
    decoder = zxing_or_skip()
    frame = place(background(np.random.default_rng(42)), qr_image(PASS), square(500, 200, 300))
    frame = 255 - frame

    assert texts(unhurried(decoder).decode_frame(frame)) == {PASS}


def test_empty_frame_returns_nothing(pipeline: DecodePipeline, rng: np.random.Generator) -> None:
    # How the time budget cuts the fallbacks short is tested with a scripted clock
    # (test_zero_budget_skips_fallbacks); no test here times the machine.
    codes = pipeline.decode_frame(add_noise(background(rng), rng, 5))

    assert codes == []
    assert pipeline.stats.attempts == 1
    assert pipeline.stats.successes == 0
    assert pipeline.stats.fallback_frames == 1


def test_fallbacks_only_run_on_frames_that_need_them(rng: np.random.Generator) -> None:
    pipeline = unhurried(PyzbarDecoder())
    frame = place(background(rng), qr_image(PASS), square(500, 200, 300))

    for _ in range(3):
        pipeline.decode_frame(frame)

    stats = pipeline.stats
    assert (stats.attempts, stats.successes, stats.codes) == (3, 3, 3)
    assert stats.fallback_frames == 0
    assert sum(stats.fallback_tries.values()) == 0


def test_stats_as_dict_and_reset() -> None:
    pipeline = unhurried(PyzbarDecoder(), fallbacks=["invert"])
    pipeline.decode_frame(np.full((H, W), 128, np.uint8))

    old = pipeline.reset_stats()

    assert old.as_dict() == {
        "attempts": 1,
        "successes": 0,
        "codes": 0,
        "fallback_frames": 1,
        "budget_exhausted": 0,
        "fallback_tries": {"invert": 1},
        "fallback_hits": {},
    }
    assert pipeline.stats.attempts == 0


class SmallOnly:
    """A stub decoder that only 'reads' views narrower than 640 px, at a fixed spot."""

    name = "small-only"

    def decode(self, gray: Frame) -> list[Decoded]:
        if gray.shape[1] >= 640:
            return []
        return [Decoded("x", ((10, 20), (110, 20), (110, 120), (10, 120)))]


def test_polygons_map_back_from_a_downscaled_view() -> None:
    pipeline = unhurried(SmallOnly(), fallbacks=["downscale"])

    codes = pipeline.decode_frame(np.zeros((H, W), np.uint8))

    assert codes == [Decoded("x", ((30, 60), (330, 60), (330, 360), (30, 360)))]
    assert pipeline.stats.fallback_hits["downscale"] == 1


def test_view_maps_crop_offset_and_scale() -> None:
    view = View(np.zeros((10, 10), np.uint8), scale=2.0, offset=(100, 50))

    mapped = view.to_frame(Decoded("x", ((0, 0), (40, 20))))

    assert mapped == Decoded("x", ((100, 50), (120, 60)))


def test_zero_budget_skips_fallbacks() -> None:
    ticks = iter(range(100))
    pipeline = DecodePipeline(PyzbarDecoder(), budget_ms=0, clock=lambda: float(next(ticks)))

    assert pipeline.decode_frame(np.full((H, W), 128, np.uint8)) == []
    assert pipeline.stats.budget_exhausted == 1
    assert sum(pipeline.stats.fallback_tries.values()) == 0


def test_small_frame_plain_pyzbar_misses_upscale_reads() -> None:
    # A low-resolution source: 1.4 pixels per module is too fine for ZBar.
    code = cv2.resize(qr_image(PASS, module=1), None, fx=1.4, fy=1.4, interpolation=cv2.INTER_AREA)
    frame = np.full((120, 160), 255, np.uint8)
    frame[: code.shape[0], : code.shape[1]] = code
    pipeline = unhurried(PyzbarDecoder(), fallbacks=["upscale"], presmooth_sigma=0)

    assert PyzbarDecoder().decode(frame) == []
    codes = pipeline.decode_frame(frame)

    assert texts(codes) == {PASS}
    assert inside(codes[0], square(0, 0, code.shape[0]), slack=2)
    assert pipeline.stats.fallback_hits["upscale"] == 1


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


def test_zxing_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxingcpp", None)

    with pytest.raises(DecoderUnavailable, match=r"pip install \.\[zxing\]"):
        make_decoder("zxing-cpp")


def test_unknown_fallback_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fallbacks"):
        DecodePipeline(PyzbarDecoder(), fallbacks=["median"])
