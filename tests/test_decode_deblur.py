"""Motion blur (scanner/deblur.py): a smeared code, which the finder detector cannot
see, found as a square of dense edges, its smear measured, and read once deconvolved.
Synthetic 720p frames; nothing is timed."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from scanner.deblur import (
    NOISE,
    Smear,
    cepstral_psf,
    deblurred,
    motion_psf,
    texture_regions,
    views,
)
from scanner.decode import BOTH, PYZBAR_ONLY, DecodePipeline, DecoderUnavailable, View
from scanner.decoders import Decoded, make_decoder
from scanner.views import region
from tests.frames import Frame, place, qr_image

W, H = 1280, 720
PASS = "CHK1.7Q2M9XKD.visitor-0042.ZJ4W8T6P3R5N.2026-12-07.gate-3"


def smear(image: Frame, length: int, degrees: float) -> Frame:
    """A box smear along a line at `degrees` (counter-clockwise on screen)."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), degrees, 1)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return np.asarray(cv2.filter2D(image, -1, kernel / kernel.sum()), np.uint8)


def scene(rng: np.random.Generator) -> Frame:
    frame = np.full((H, W), 140, np.uint8)
    for x, y, level in ((100, 80, 60), (900, 500, 210), (500, 560, 90)):
        cv2.rectangle(frame, (x, y), (x + 220, y + 90), level, -1)
    return frame


def noisy(frame: Frame, rng: np.random.Generator) -> Frame:
    return np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)


QUAD = [(560.0, 250.0), (730.0, 262.0), (718.0, 432.0), (548.0, 420.0)]


@pytest.fixture
def smeared() -> Frame:
    pytest.importorskip("zxingcpp")
    rng = np.random.default_rng(3)
    sharp = place(scene(rng), qr_image(PASS, 4), QUAD)
    return noisy(smear(sharp, 9, 30.0), rng)


def test_a_smeared_code_is_read_by_deconvolving_its_region(smeared: Frame) -> None:
    zx, pz = make_decoder("zxing-cpp"), make_decoder("pyzbar")
    assert zx.read(smeared).codes == [] and pz.read(smeared).codes == []

    pipeline = DecodePipeline(BOTH)
    codes = pipeline(smeared)

    assert [c.text for c in codes] == [PASS]
    assert codes[0].view.startswith("region:deblur/")
    xs, ys = [p[0] for p in codes[0].polygon], [p[1] for p in codes[0].polygon]
    assert 530 < min(xs) and max(xs) < 750 and 230 < min(ys) and max(ys) < 450
    assert pipeline.stats.fallback_frames == 1 and pipeline.code_seen


def test_the_smear_is_measured_along_its_line(smeared: Frame) -> None:
    [quad] = texture_regions(smeared)
    view = region(smeared, quad, 0.2, 640)
    assert view is not None
    found = motion_psf(view.image)

    assert found is not None
    # Levelling turns the frame back by the smear's direction (mod 180); the length is
    # in region pixels.
    assert abs((-found.angle - 30.0 + 90) % 180 - 90) < 8
    assert 0.7 * 9 * view.scale < found.length < 1.3 * 9 * view.scale


def smeared_region(length: int, degrees: float) -> View:
    rng = np.random.default_rng(3)
    frame = noisy(smear(place(scene(rng), qr_image(PASS, 4), QUAD), length, degrees), rng)
    view = region(frame, np.array(QUAD, np.float32), 0.2, 640)
    assert view is not None
    return view


@pytest.mark.parametrize(("length", "degrees"), [(16, 30.0), (14, 115.0)])
def test_the_cepstrum_measures_a_long_smear(length: int, degrees: float) -> None:
    # A second opinion, not a better first one: on short smears (9 px here) it is often
    # off, and the tensor's smear goes first (docs/benchmarks.md).
    view = smeared_region(length, degrees)
    found = cepstral_psf(view.image)

    assert abs((-found.angle - degrees + 90) % 180 - 90) < 8
    assert 0.7 * length * view.scale < found.length < 1.3 * length * view.scale


def test_the_cepstrum_adds_views_only_where_it_differs() -> None:
    agreeing = smeared_region(16, 30.0)  # both measure the same smear
    frame = agreeing.image
    whole = np.array(
        [[0, 0], [frame.shape[1], 0], [frame.shape[1], frame.shape[0]], [0, frame.shape[0]]],
        np.float32,
    )
    assert len(list(views(frame, whole))) == len(NOISE)
    differing = smeared_region(9, 30.0)  # the cepstrum is off here: its views are added
    frame = differing.image
    assert len(list(views(frame, whole))) == 2 * len(NOISE)


def test_a_sharp_code_is_not_taken_for_a_smeared_one() -> None:
    rng = np.random.default_rng(4)
    sharp = noisy(place(scene(rng), qr_image(PASS, 4), QUAD), rng)
    view = region(sharp, np.array(QUAD, np.float32), 0.2, 640)

    assert view is not None and motion_psf(view.image) is None


def test_plain_shapes_are_no_texture() -> None:
    rng = np.random.default_rng(5)
    assert texture_regions(noisy(smear(scene(rng), 9, 30.0), rng)) == []


def test_a_deblurred_view_maps_codes_back_through_its_rotation() -> None:
    square = np.full((200, 200), 255, np.uint8)
    image, back = deblurred(square, Smear(angle=90.0, length=4), 0.01)
    view = View(image, scale=2.0, offset=(100, 50), back=back)
    h, w = image.shape
    corner = view.to_frame(Decoded(PASS, ((0, 0), (w, 0), (w, h), (0, h))))

    # Rotated by 90 degrees about the centre: the view's corners are the region's.
    got = sorted(corner.polygon)
    assert got == sorted([(100, 50), (200, 50), (200, 150), (100, 150)])
    assert math.isclose(float(np.abs(back[:, :2]).sum()), 2.0, abs_tol=1e-6)


def test_a_code_smeared_past_reading_is_still_seen_for_the_hold_still_hint() -> None:
    rng = np.random.default_rng(6)
    sharp = place(scene(rng), qr_image(PASS, 4), QUAD)
    pipeline = DecodePipeline(BOTH) if _has_zxing() else DecodePipeline(PYZBAR_ONLY)

    assert pipeline(noisy(smear(sharp, 41, 30.0), rng)) == []
    assert pipeline.code_seen  # scanner/worker.py's Steadiness then asks to hold still

    assert pipeline(noisy(scene(rng), rng)) == []
    assert not pipeline.code_seen
    assert pipeline.stats.idle_frames == 1


def _has_zxing() -> bool:
    try:
        make_decoder("zxing-cpp")
    except DecoderUnavailable:
        return False
    return True
