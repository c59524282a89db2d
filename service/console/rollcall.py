"""The printed evacuation roll call: the three groups of service.door.roll_call on paper,
with the site's name and when it was printed, and a box to tick per person
(templates/rollcall.html; the words are the console's, service.console.words)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from service.console.words import WORDS, Lang, t
from service.door.roll_call import RollCall

OPEN_COLUMNS = ("name", "organisation", "last_seen", "why")
CLOSED_COLUMNS = ("name", "organisation", "checked_out_at", "rule")


def groups(call: RollCall, lang: Lang) -> list[dict[str, Any]]:
    """The three groups, each its key, its columns (catalogue keys) and its rows."""
    zone = ZoneInfo(call.site["timezone"])

    def when(text: str | None) -> str:
        if text is None:
            return ""
        return datetime.fromisoformat(text).astimezone(zone).strftime("%H:%M %d/%m")

    def open_row(p: dict[str, Any]) -> list[str]:
        seen_at = p["last_gate"] or (t("by_guard", lang) if p["last_seen_by"] == "guard" else "")
        return [
            p["full_name"],
            p["organisation"] or "",
            f"{when(p['last_seen_at'])} · {seen_at}".rstrip(" ·"),
            ", ".join(t(reason, lang) for reason in p["why"]),
        ]

    def closed_row(p: dict[str, Any]) -> list[str]:
        rule = f"rule_{p['rule']}"
        return [
            p["full_name"],
            p["organisation"] or "",
            when(p["exited_at"]),
            t(rule, lang) if rule in WORDS else "",
        ]

    return [
        {"key": "inside", "columns": OPEN_COLUMNS, "rows": [open_row(p) for p in call.inside]},
        {
            "key": "probably_gone",
            "columns": OPEN_COLUMNS,
            "rows": [open_row(p) for p in call.probably_gone],
        },
        {
            "key": "checked_out_today",
            "columns": CLOSED_COLUMNS,
            "rows": [closed_row(p) for p in call.checked_out_today],
        },
    ]
