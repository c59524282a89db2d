"""scanner.screen: pixels of the composed screen, without a display."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from scanner.screen import GREEN, RED, Renderer, Status
from scanner.verdict import GateInfo, Verdict, judge_offline
from service.passes import SigningKey, TrustList
from tests.kiosk_helpers import make_pass

WELCOME = Verdict("allow", "welcome", "Mời vào", "Welcome", "N. V. An")
DENIED = Verdict.of_reason("expired", "service")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(size=(640, 360))


def bgr(rgb: tuple[int, int, int]) -> list[int]:
    return list(rgb[::-1])


def test_vietnamese_diacritics_are_drawn(renderer: Renderer) -> None:
    accented = renderer.render_text("TỪ CHỐI", 60)
    plain = renderer.render_text("TU CHOI", 60)
    assert accented.shape[0] == plain.shape[0]
    width = min(accented.shape[1], plain.shape[1])
    # The horn and hook above Ừ and Ố sit above the capitals: that band differs, ...
    letters_top = int(np.argmax((plain > 128).any(axis=(1, 2))))
    above = slice(0, letters_top)
    assert (accented[above, :width] > 128).any()
    assert not (plain[above, :width] > 128).any()
    # ... and no glyph is the "missing character" box: OpenCV's fonts could not do this.
    assert not np.array_equal(accented[:, :width], plain[:, :width])


def test_dot_below_is_drawn(renderer: Renderer) -> None:
    # "Ạ" has its dot under the baseline; "A" has nothing there.
    dotted = renderer.render_text("Ạ", 80)
    plain = renderer.render_text("A", 80)
    bottom = slice(int(dotted.shape[0] * 0.85), None)
    assert (dotted[bottom] > 128).sum() > (plain[bottom] > 128).sum()


def test_allow_banner_is_green_and_deny_banner_is_red(renderer: Renderer) -> None:
    for verdict, color in ((WELCOME, GREEN), (DENIED, RED)):
        screen = renderer.compose(None, verdict=verdict)
        corner = screen[-5, 5]
        assert list(corner) == bgr(color)
        banner = screen[-renderer.banner_height() :]
        assert (banner == bgr(color)).all(axis=2).mean() > 0.6  # mostly its colour
        assert (banner == 255).all(axis=2).any()  # with white text on it


def test_banner_shows_the_reason_in_both_languages(renderer: Renderer) -> None:
    expired = renderer.banner(DENIED)
    other = renderer.banner(Verdict.of_reason("pass_revoked", "service"))
    assert not np.array_equal(expired, other)
    # English only differs: the second language line is drawn too
    en_only = renderer.banner(
        Verdict("deny", "expired", DENIED.message_vi, "Something else", None, "service")
    )
    assert not np.array_equal(expired, en_only)


def test_status_bar_says_online_or_offline(renderer: Renderer) -> None:
    online = renderer.status_bar(Status(online=True, offline_policy="deny"))
    offline = renderer.status_bar(Status(online=False, offline_policy="deny"))
    policy = renderer.status_bar(Status(online=False, offline_policy="verify-offline"))
    assert not np.array_equal(online, offline)
    assert not np.array_equal(offline, policy)  # the active policy is on screen


def test_preview_fits_the_frame_and_outlines_the_code(renderer: Renderer) -> None:
    frame = np.full((180, 240, 3), 128, np.uint8)  # 4:3 into 16:9: letterboxed
    polygon = ((60, 40), (180, 40), (180, 140), (60, 140))
    screen = renderer.compose(frame, [polygon])
    assert screen.shape == (360, 640, 3)
    assert (screen[180, 0] == 0).all()  # black bar at the side
    assert (screen[180, 320] == 128).all()  # the preview in the middle
    outline = np.array([0, 220, 255])
    assert (np.abs(screen.astype(int) - outline).sum(axis=2) < 60).sum() > 200


def test_no_banner_without_a_verdict(renderer: Renderer) -> None:
    screen = renderer.compose(None, status=Status(online=True, offline_policy="deny"))
    assert (screen[-renderer.banner_height() :] == 0).all()


# What the service sends for a scan at an exit gate (Decision.as_json).
LEAVING = {
    "type": "decision",
    "event_id": "x",
    "decision": "allow",
    "reason": "goodbye",
    "headline_vi": "TẠM BIỆT",
    "headline_en": "GOODBYE",
    "message_vi": "Tạm biệt, hẹn gặp lại",
    "message_en": "Goodbye, see you again",
    "name": "N. V. An",
    "direction": "out",
    "duplicate": False,
}


def saved(screen: np.ndarray, path: Path) -> np.ndarray:
    """The screen as a PNG file, read back: what a camera of the door would see."""
    assert cv2.imwrite(str(path), screen)
    image = cv2.imread(str(path))
    assert image is not None
    return np.asarray(image, np.uint8)


def test_the_exit_screen_says_goodbye_not_welcome(renderer: Renderer, tmp_path: Path) -> None:
    leaving = Verdict.from_decision(LEAVING)
    assert leaving.headline == "TẠM BIỆT / GOODBYE"
    status = Status(online=True, offline_policy="deny", gate_name="Cổng ra")
    preview = np.full((360, 480, 3), 90, np.uint8)
    screen = saved(renderer.compose(preview, verdict=leaving, status=status), tmp_path / "exit.png")
    if shots := os.environ.get("CONSOLE_SCREENSHOTS"):  # make screenshots
        saved(
            Renderer(size=(1280, 720)).compose(preview, verdict=leaving, status=status),
            Path(shots) / "kiosk-exit.png",
        )
    banner = screen[-renderer.banner_height() :]
    assert list(banner[-5, 5]) == bgr(GREEN)
    # The same verdict with the entrance's headline: only the headline's band differs,
    # so what is drawn there is the exit's words, and the rest (name, reason) is shared.
    welcomed = renderer.banner(
        dataclasses.replace(leaving, direction="in", headline_vi="", headline_en="")
    )
    assert Verdict.from_decision(
        {**LEAVING, "direction": "in", "headline_vi": ""}
    ).headline.startswith("MỜI VÀO")
    differs = np.flatnonzero((banner != welcomed).any(axis=(1, 2)))
    assert differs.size > 0
    half = banner.shape[0] // 2
    assert (banner[half:] == welcomed[half:]).all()


def test_an_offline_exit_verdict_says_goodbye(renderer: Renderer) -> None:
    key = SigningKey.generate()
    gate = GateInfo(3, "Cổng ra", "exit", "verify-offline", 1, "Trụ sở")
    verdict = judge_offline(
        make_pass(key, site_id=1),
        policy="verify-offline",
        trust=TrustList([key.trusted_key()]),
        site_id=1,
        now=datetime.now(UTC),
        direction=gate.way,
    )
    assert (verdict.decision, verdict.reason, verdict.offline) == ("allow", "offline_allowed", True)
    assert verdict.headline == "TẠM BIỆT / GOODBYE"
    assert verdict.message_en == "Goodbye (checked offline)"
    at_entrance = dataclasses.replace(
        verdict, direction="in", message_en="Welcome (checked offline)"
    )
    assert not np.array_equal(renderer.banner(verdict), renderer.banner(at_entrance))
    refused = judge_offline(
        "garbage",
        policy="deny",
        trust=TrustList([]),
        site_id=1,
        now=datetime.now(UTC),
        direction=gate.way,
    )
    assert refused.headline == "TỪ CHỐI / DENIED"
    assert refused.message_en == "Server unreachable; the guard will let you out"
