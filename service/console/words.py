"""The guard console's words, key -> (Vietnamese, English): one catalogue
(`words.json`) for the pages the server renders (login, the console's shell, the
printed roll call) and for what the console's modules draw, which read it from the
page's config (static/console-i18n.js).
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Literal

Lang = Literal["vi", "en"]

WORDS: dict[str, tuple[str, str]] = {
    key: (vi, en)
    for key, (vi, en) in json.loads(
        files("service.console").joinpath("words.json").read_text(encoding="utf-8")
    ).items()
}


def t(key: str, lang: Lang) -> str:
    vi, en = WORDS[key]
    return vi if lang == "vi" else en
