"""checkin_core.reasons: the words of every verdict fit the way the person goes."""

from __future__ import annotations

import pytest

from checkin_core.reasons import REASONS, headline, label, message, words_by_direction

# What a person leaving must never be told: to come in, or to declare again.
ENTERING_VI = ("mời vào", "cho phép vào", "khai báo lại", "cho vào")
ENTERING_EN = ("welcome", "let in", "declare again")


# "welcome" is only ever given coming in, as "goodbye" only going out.
@pytest.mark.parametrize("code", sorted(set(REASONS) - {"welcome"}))
def test_no_code_welcomes_someone_leaving(code: str) -> None:
    vi, en = message(code, "out")
    assert vi and en
    assert not any(word in vi.lower() for word in ENTERING_VI), (code, vi)
    assert not any(word in en.lower() for word in ENTERING_EN), (code, en)


@pytest.mark.parametrize("code", sorted(REASONS))
def test_no_code_says_goodbye_to_someone_coming_in(code: str) -> None:
    vi, en = message(code, "in")
    assert "tạm biệt" not in vi.lower() or code == "goodbye", (code, vi)
    assert "goodbye" not in en.lower() or code == "goodbye", (code, en)
    # Without a known direction (a gate used both ways, judged offline): neither.
    if code not in ("welcome", "goodbye"):
        vi, en = message(code)
        assert not any(w in vi.lower() for w in ("mời vào", "tạm biệt", "cho phép vào")), vi
        assert not any(w in en.lower() for w in ("welcome", "goodbye", "let in")), en


def test_exit_words() -> None:
    assert headline("allow", "out") == ("TẠM BIỆT", "GOODBYE")
    assert headline("allow", "in") == ("MỜI VÀO", "WELCOME")
    assert headline("deny", "out") == ("TỪ CHỐI", "DENIED")
    assert label("allow", "out") == ("CHO RA", "LET OUT")
    assert label("allow", "in") == ("CHO VÀO", "LET IN")
    assert message("override_allowed", "out") == ("Bảo vệ đã cho phép ra", "Let out by the guard")
    assert message("offline_allowed", "out")[1] == "Goodbye (checked offline)"
    assert message("expired", "out")[1] == "Pass expired; please see the guard"
    assert message("expired", "in")[1] == "Pass expired; please declare again"
    # A wrong-way scan says which way the gate goes.
    assert message("wrong_direction", "in")[1] == "This gate is for leaving only"
    assert message("wrong_direction", "out")[1] == "This gate is for entering only"


def test_the_pages_get_every_word_by_direction() -> None:
    words = words_by_direction()
    reasons = words["reasons"]
    assert isinstance(reasons, dict) and set(reasons) == set(REASONS)
    assert reasons["offline_allowed"]["out"] == list(message("offline_allowed", "out"))
    assert reasons["offline_allowed"][""] == list(message("offline_allowed"))
    labels = words["labels"]
    assert isinstance(labels, dict) and labels["allow"]["out"] == ["CHO RA", "LET OUT"]
