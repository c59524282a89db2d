"""The printed evacuation roll call: the three groups of service.door.roll_call on paper,
with the site's name and when it was printed, and a box to tick per person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from service.door.roll_call import RollCall
from service.web.html_strings import Markup, join, tag, void

Lang = Literal["vi", "en"]

WORDS: dict[str, tuple[str, str]] = {
    "group_inside": ("Đang ở trong", "Inside"),
    "group_probably_gone": ("Có thể đã ra về", "Probably gone"),
    "group_checked_out_today": (
        "Đã tự động ghi ra hôm nay",
        "Checked out automatically today",
    ),
    "last_seen": ("Lần cuối thấy", "Last seen"),
    "why": ("Vì sao", "Why"),
    "silent": ("lâu không quét", "silent"),
    "past_departure": ("quá giờ dự kiến về", "past expected departure"),
    "checked_out_at": ("Ghi ra lúc", "Checked out at"),
    "rule": ("Quy tắc", "Rule"),
    "rule_at": ("giờ cố định", "time of day"),
    "rule_after_minutes": ("quá thời lượng", "stay too long"),
    "rule_expected_departure": ("giờ dự kiến về", "expected departure"),
    "rule_daily_reset": ("đặt lại hằng ngày", "daily reset"),
    "rule_guard_gone": ("bảo vệ xác nhận đã về", "guard confirmed gone"),
    "by_guard": ("bảo vệ", "guard"),
    "nobody": ("Không có ai.", "Nobody."),
}


def w(key: str, lang: Lang) -> str:
    vi, en = WORDS[key]
    return vi if lang == "vi" else en


def _table(header: list[str], rows: list[list[Markup | str]], empty: str, present: str) -> Markup:
    if not rows:
        return tag("p", empty, class_="muted")
    head = tag(
        "tr", join([tag("th", "#"), tag("th", present)] + [tag("th", h) for h in header], "")
    )
    body = [
        tag(
            "tr",
            join(
                [tag("td", str(i)), tag("td", void("input", type="checkbox", aria_label=present))]
                + [tag("td", cell) for cell in row],
                "",
            ),
        )
        for i, row in enumerate(rows, 1)
    ]
    return tag("table", join([tag("thead", head), tag("tbody", join(body))]), class_="rollcall")


def groups(call: RollCall, lang: Lang, words: Callable[[str], str]) -> Markup:
    """The three groups as sections; `words` gives the console's own words (name, ...)."""
    zone = ZoneInfo(call.site["timezone"])

    def when(text: str | None) -> str:
        return (
            ""
            if text is None
            else datetime.fromisoformat(text).astimezone(zone).strftime("%H:%M %d/%m")
        )

    def open_row(p: dict[str, Any]) -> list[Markup | str]:
        seen_at = p["last_gate"] or (w("by_guard", lang) if p["last_seen_by"] == "guard" else "")
        return [
            p["full_name"],
            p["organisation"] or "",
            f"{when(p['last_seen_at'])} · {seen_at}".rstrip(" ·"),
            ", ".join(w(reason, lang) for reason in p["why"]),
        ]

    def closed_row(p: dict[str, Any]) -> list[Markup | str]:
        rule = f"rule_{p['rule']}" if f"rule_{p['rule']}" in WORDS else ""
        return [
            p["full_name"],
            p["organisation"] or "",
            when(p["exited_at"]),
            w(rule, lang) if rule else "",
        ]

    present, name, org = words("present"), words("name"), words("organisation")
    open_header = [name, org, w("last_seen", lang), w("why", lang)]
    sections = [
        ("inside", open_header, [open_row(p) for p in call.inside]),
        ("probably_gone", open_header, [open_row(p) for p in call.probably_gone]),
        (
            "checked_out_today",
            [name, org, w("checked_out_at", lang), w("rule", lang)],
            [closed_row(p) for p in call.checked_out_today],
        ),
    ]
    return join(
        [
            tag(
                "section",
                join(
                    [
                        tag("h2", f"{w('group_' + key, lang)} ({len(rows)})"),
                        _table(header, rows, w("nobody", lang), present),
                    ]
                ),
                class_=f"group group-{key}",
                data_group=key,
            )
            for key, header, rows in sections
        ]
    )
