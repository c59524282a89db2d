"""`checkin-scanner decode` and the phone-screen generator, on images made here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench import phone_screens
from scanner import __main__ as scanner_main
from scanner import decode_cli
from scanner.decode import default_pipeline
from tests.frames import place, qr_image

PASS = "CHK1.7Q2M9XKD.visitor-0042.ZJ4W8T6P3R5N"


def write_pass(path: Path, *, dark: bool = False) -> None:
    frame = place(
        np.full((480, 640), 180, np.uint8),
        qr_image(PASS, 6),
        [(200, 100), (440, 100), (440, 340), (200, 340)],
    )
    cv2.imwrite(str(path), 255 - frame if dark else frame)


def test_decode_prints_codes_positions_and_views(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pass(tmp_path / "light.png")
    write_pass(tmp_path / "dark.png", dark=True)
    (tmp_path / "notes.txt").write_text("not an image")

    assert scanner_main.main(["decode", str(tmp_path), "--json"]) == 0

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["path"]).name for r in lines] == ["dark.png", "light.png"]
    for result in lines:
        assert result["size"] == [640, 480]
        [code] = result["codes"]
        assert code["text"] == PASS
        xs = [x for x, _ in code["polygon"]]
        assert 200 <= min(xs) and max(xs) <= 440
        assert code["view"]


def test_decode_in_words_and_an_unreadable_file(tmp_path: Path) -> None:
    write_pass(tmp_path / "pass.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    out = io.StringIO()

    code = decode_cli.main([str(tmp_path / "pass.png"), str(tmp_path / "broken.png")], out)

    assert code == 1
    text = out.getvalue()
    assert "pass.png (640x480): 1 code(s)" in text
    assert repr(PASS) in text and "read by" in text
    assert "broken.png: not a readable image" in text


def test_phone_screens_are_seeded() -> None:
    a, b = phone_screens.shots(8, seed=3), phone_screens.shots(8, seed=3)
    assert a == b
    one = phone_screens.render(a[1], np.random.default_rng(3))
    two = phone_screens.render(b[1], np.random.default_rng(3))
    assert np.array_equal(one, two)


def test_dark_mode_phone_screen_is_read() -> None:
    shot = next(s for s in phone_screens.shots(8) if s.dark and s.size == "large")
    frame = phone_screens.render(shot, np.random.default_rng(5))

    assert shot.text in {c.text for c in default_pipeline()(frame)}
