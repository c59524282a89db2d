"""scanner.debounce: sightings per frame -> scans. Pure; time is passed in."""

from __future__ import annotations

import pytest

from scanner.debounce import Debouncer


def run(debouncer: Debouncer, frames: list[tuple[float, list[str]]]) -> list[tuple[float, str]]:
    return [(t, s) for t, texts in frames for s in debouncer.feed(texts, t)]


def test_a_code_that_stays_in_view_is_one_scan() -> None:
    d = Debouncer(cooldown=3.0)
    frames = [(i / 30, ["A"]) for i in range(30 * 20)]  # 20 s at 30 fps
    assert run(d, frames) == [(0.0, "A")]


def test_missed_frames_while_in_view_do_not_make_a_new_scan() -> None:
    d = Debouncer(cooldown=3.0, gap=1.0)
    # seen every third frame (decode misses), for 10 s
    frames = [(i / 30, ["A"] if i % 3 == 0 else []) for i in range(300)]
    assert run(d, frames) == [(0.0, "A")]


def test_the_same_code_after_the_cooldown_is_a_new_scan() -> None:
    d = Debouncer(cooldown=3.0, gap=1.0)
    frames = [(0.0, ["A"]), (0.5, ["A"]), (4.0, ["A"]), (4.1, ["A"])]
    assert run(d, frames) == [(0.0, "A"), (4.0, "A")]


def test_shown_again_within_the_cooldown_waits_for_it() -> None:
    d = Debouncer(cooldown=3.0, gap=1.0)
    # away from 0.1 to 1.5 (gone), back and held: a new scan once the cooldown is over
    frames = [(0.0, ["A"]), (0.1, ["A"])] + [(1.5 + i / 10, ["A"]) for i in range(30)]
    assert run(d, frames) == [(0.0, "A"), (3.0, "A")]


def test_codes_are_debounced_independently() -> None:
    d = Debouncer(cooldown=2.0)
    frames = [(0.0, ["A"]), (0.1, ["A", "B"]), (0.2, ["B", "A", "B"]), (0.3, ["C"])]
    assert run(d, frames) == [(0.0, "A"), (0.1, "B"), (0.3, "C")]


def test_zero_cooldown_still_merges_a_code_in_view() -> None:
    d = Debouncer(cooldown=0.0, gap=0.5)
    frames = [(0.0, ["A"]), (0.1, ["A"]), (1.0, ["A"]), (1.1, ["A"])]
    assert run(d, frames) == [(0.0, "A"), (1.0, "A")]


def test_forgets_codes_long_gone() -> None:
    d = Debouncer(cooldown=3.0)
    for i in range(100):
        d.feed([f"code-{i}"], float(i))
    assert len(d) <= 5


@pytest.mark.parametrize(("cooldown", "gap"), [(-1.0, 1.0), (3.0, 0.0)])
def test_rejects_bad_windows(cooldown: float, gap: float) -> None:
    with pytest.raises(ValueError):
        Debouncer(cooldown=cooldown, gap=gap)
