"""scanner.screen: pixels of the composed screen, without a display.

Set KIOSK_SCREENSHOTS=docs/screenshots (`make screenshots`) to save the door screens.
(The window on a real X server: tests/test_scanner_xvfb.py.)"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from checkin_core.keys import SigningKey, TrustList
from checkin_core.reasons import message
from scanner.__main__ import build_parser
from scanner.screen import BAR, GREEN, ONLINE, RED, Renderer, Status
from scanner.screen import OFFLINE as OFFLINE_COLOR
from scanner.verdict import GateInfo, Verdict, judge_offline
from scanner.window import parse_size
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


# --- the full-screen door screen (issue: 400x300 in a corner, colour alone) ---------

EXIT = Verdict("allow", "goodbye", *message("goodbye"), "N. V. An")
OFFLINE = Verdict.of_reason("offline_denied", "offline")
SCREENSHOTS = os.environ.get("KIOSK_SCREENSHOTS")  # `make screenshots`: docs/screenshots
DOOR = (1280, 800)  # the screen of the report


def white_rows(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    return np.asarray((image > 240).all(axis=2).any(axis=1))


def first_line(rows: npt.NDArray[np.bool_], gap: int) -> int:
    """The height of the first line of text: rows holding white, where a gap shorter
    than `gap` (between an accent and its capital) does not end the line."""
    start = int(np.argmax(rows))
    end = blank = start
    for y in range(start, len(rows)):
        if rows[y]:
            end, blank = y + 1, 0
        else:
            blank += 1
            if blank >= gap:
                break
    return end - start


@pytest.mark.parametrize("size", [(640, 400), DOOR, (1920, 1080)])
def test_the_verdict_fills_the_screen_and_is_big_enough_for_two_metres(
    size: tuple[int, int],
) -> None:
    renderer = Renderer(size=size)
    screen = renderer.compose(np.full((720, 1280, 3), 90, np.uint8), verdict=WELCOME)
    assert screen.shape == (size[1], size[0], 3)
    banner = renderer.banner(WELCOME)
    assert banner.shape[0] >= 0.55 * size[1]  # the verdict takes most of the screen
    icon = min(int(banner.shape[0] * 0.6), size[0] // 4)
    text = banner[:, icon + 2 * (min(banner.shape[:2]) // 14) :]
    # The title's first line (capitals and their accents) at least 8 % of the screen's
    # height: 64 px at 800, about 16 mm on a 15" kiosk screen, where 2 m needs 10 mm
    # (letters of 1/200 of the reading distance).
    assert first_line(white_rows(text), gap=max(3, size[1] // 60)) >= 0.08 * size[1]


def glyph(banner: npt.NDArray[np.uint8], color: tuple[int, int, int]) -> npt.NDArray[np.bool_]:
    """Where the icon's mark (drawn in the banner's colour on its white disc) is."""
    size = min(int(banner.shape[0] * 0.6), banner.shape[1] // 4)
    margin = min(banner.shape[:2]) // 14
    top = (banner.shape[0] - size) // 2
    square = banner[top : top + size, margin : margin + size].astype(int)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    inside = np.hypot(yy, xx) < size * 0.46  # the disc, not the banner around it
    return np.asarray((np.abs(square - bgr(color)).sum(axis=2) < 60) & inside)


def test_allow_and_deny_differ_in_shape_not_only_in_colour() -> None:
    renderer = Renderer(size=DOOR)
    tick = glyph(renderer.banner(WELCOME), GREEN)
    cross = glyph(renderer.banner(DENIED), RED)
    assert tick.sum() > 1000 and cross.sum() > 1000  # a tick and a cross are drawn
    overlap = (tick & cross).sum() / (tick | cross).sum()
    assert overlap < 0.3  # seen in grey (colour-blind), they are still two shapes
    # and the words say it too, in both languages
    assert not np.array_equal(renderer.banner(WELCOME)[:, 400:], renderer.banner(DENIED)[:, 400:])


def amber(image: npt.NDArray[np.uint8]) -> int:
    return int((np.abs(image.astype(int) - bgr(OFFLINE_COLOR)).sum(axis=2) < 30).sum())


def test_a_verdict_taken_offline_carries_a_warning_shape() -> None:
    renderer = Renderer(size=DOOR)
    assert amber(renderer.banner(OFFLINE)) > 100
    assert amber(renderer.banner(DENIED)) == 0


def test_the_status_bar_tells_connecting_online_and_offline_apart_by_shape() -> None:
    renderer = Renderer(size=DOOR)
    bars = {
        state: renderer.status_bar(
            Status(
                online=state == "online", connecting=state == "connecting", offline_policy="deny"
            )
        )
        for state in ("connecting", "online", "offline")
    }
    h = bars["online"].shape[0]
    mark = int(h * 0.6)
    centre = (h // 2, h // 5 + mark // 2)
    assert list(bars["online"][centre]) == bgr(ONLINE)  # a filled dot
    assert list(bars["connecting"][centre]) == bgr(BAR)  # a ring: hollow
    assert amber(bars["offline"][:, : h // 5 + mark + 2]) > 50  # a warning triangle
    assert len({b.tobytes() for b in bars.values()}) == 3


@pytest.mark.parametrize(
    ("name", "verdict", "status"),
    [
        (
            "kiosk-allow",
            WELCOME,
            Status(online=True, offline_policy="deny", gate_name="Cổng chính"),
        ),
        ("kiosk-deny", DENIED, Status(online=True, offline_policy="deny", gate_name="Cổng chính")),
        ("kiosk-exit", EXIT, Status(online=True, offline_policy="deny", gate_name="Cổng ra")),
        ("kiosk-offline", OFFLINE, Status(online=False, offline_policy="deny")),
    ],
)
def test_door_screens_render_full_size(
    name: str, verdict: Verdict, status: Status, tmp_path: Path
) -> None:
    """The screens of the README, rendered by the kiosk's own code at 1280x800."""
    renderer = Renderer(size=DOOR)
    camera = cv2.GaussianBlur(
        np.random.default_rng(7).integers(40, 120, (720, 1280, 3), np.uint8), (0, 0), 9
    )
    screen = renderer.compose(camera, verdict=verdict, status=status)
    assert screen.shape == (800, 1280, 3)
    out = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(out / f"{name}.png"), screen)
    assert cv2.imread(str(out / f"{name}.png")).shape == screen.shape


def test_window_sizes_are_read_as_width_by_height() -> None:
    assert parse_size("1280x800") == (1280, 800)
    assert parse_size(" 960 X 600 ") == (960, 600)
    for bad in ("1280", "x800", "0x0", "99999x10", "1280x800x24"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_the_kiosk_is_full_screen_unless_a_window_is_asked_for() -> None:
    parser = build_parser()
    base = ["--server", "http://s", "--source", "0"]
    assert parser.parse_args(base).window is None
    assert parser.parse_args([*base, "--fullscreen"]).window is None
    assert parser.parse_args([*base, "--window", "960x600"]).window == (960, 600)
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--window", "big"])
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--window", "960x600", "--fullscreen"])


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
    banner = screen[-renderer.banner_height() :]
    assert list(banner[-5, 5]) == bgr(GREEN)
    # What is drawn is the headline the verdict carries: the same verdict with the
    # entrance's headline looks different, and one given the exit's words explicitly at an
    # entrance looks the same as the exit's.
    welcomed = dataclasses.replace(leaving, direction="in", headline_vi="", headline_en="")
    assert welcomed.headline.startswith("MỜI VÀO")
    assert not np.array_equal(banner, renderer.banner(welcomed))
    told = dataclasses.replace(welcomed, headline_vi="TẠM BIỆT", headline_en="GOODBYE")
    assert np.array_equal(banner, renderer.banner(told))


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
