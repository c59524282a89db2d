"""The door's reason codes: a stable, documented list, with the words for the screen.

The kiosk shows message_vi in large type and message_en below it, to a queue of people:
short, plain, no personal data. Codes are stored in the event log and exported; never
rename one, only add.

Words depend on the way the person is going: someone leaving is told goodbye, never
welcome, and is never asked to declare again. Every word the kiosk, the console and
the exports show for a verdict comes from here (``message``, ``headline``, ``label``),
so a renderer never picks words on its own.
"""

from __future__ import annotations

from typing import Literal

Verdict = Literal["allow", "deny"]
Direction = Literal["in", "out"]

# code -> (verdict it goes with, Vietnamese, English): the words when the way the
# person goes is not known (a gate used both ways, judged offline), or does not matter.
REASONS: dict[str, tuple[Verdict, str, str]] = {
    # allowed
    "welcome": ("allow", "Mời vào", "Welcome"),
    "goodbye": ("allow", "Tạm biệt, hẹn gặp lại", "Goodbye, see you again"),
    "override_allowed": ("allow", "Bảo vệ đã cho phép đi qua", "Allowed by the guard"),
    "id_checked": ("allow", "Bảo vệ đã kiểm tra giấy tờ", "ID checked by the guard"),
    "offline_allowed": (
        "allow",
        "Mã QR hợp lệ (kiểm tra ngoại tuyến)",
        "Valid pass (checked offline)",
    ),
    # the pass itself
    "malformed": ("deny", "Mã QR không hợp lệ", "Not a valid pass"),
    "unknown_key": ("deny", "Mã QR không do hệ thống cấp", "Pass not issued by this system"),
    "bad_signature": ("deny", "Mã QR giả mạo hoặc bị sửa", "Forged or altered pass"),
    "expired": (
        "deny",
        "Mã QR đã hết hạn; vui lòng khai báo lại",
        "Pass expired; please declare again",
    ),
    "not_yet_valid": ("deny", "Mã QR chưa đến thời gian hiệu lực", "Pass not valid yet"),
    "wrong_site": ("deny", "Mã QR không dùng cho trụ sở này", "Pass is for another site"),
    "code_expired": (
        "deny",
        "Mã đã hết hạn — mở lại trang mã QR",
        "Code expired — reopen your pass page",
    ),
    # a printed or saved pass (not a rotating one), by the site rule static_pass
    "guard_check": ("deny", "Kiểm tra giấy tờ", "Check ID"),
    "static_pass_refused": (
        "deny",
        "Trụ sở chỉ nhận mã QR trên điện thoại (trang mã QR)",
        "Only the phone pass page is accepted here",
    ),
    "pass_unknown": ("deny", "Không tìm thấy mã QR này", "Pass not found"),
    "pass_revoked": ("deny", "Mã QR đã bị thu hồi", "Pass revoked"),
    "pass_superseded": ("deny", "Mã QR cũ; hãy dùng mã mới nhất", "Old pass; show your newest one"),
    # the person
    "deny_listed": ("deny", "Vui lòng liên hệ bảo vệ", "Please see the guard"),
    "declaration_missing": ("deny", "Chưa khai báo y tế", "No health declaration"),
    "declaration_expired": (
        "deny",
        "Khai báo y tế đã hết hạn; vui lòng khai báo lại",
        "Declaration expired; please declare again",
    ),
    "declaration_review": (
        "deny",
        "Khai báo đang chờ cán bộ y tế xem xét",
        "Declaration awaiting review",
    ),
    "declaration_rejected": ("deny", "Khai báo y tế không đạt yêu cầu", "Declaration not accepted"),
    # health suspensions (service/health/suspensions.py): lifted by a health officer or an
    # official negative test, never by the guard at the door
    "case_confirmed": (
        "deny",
        "Tạm dừng ra vào theo yêu cầu của cán bộ y tế",
        "Entry suspended by the health officer",
    ),
    "contact_traced": (
        "deny",
        "Tạm dừng ra vào: cần kết quả xét nghiệm âm tính",
        "Entry suspended: a negative test is needed",
    ),
    "area_flagged": (
        "deny",
        "Tạm dừng ra vào: đã đến khu vực có dịch; gặp cán bộ y tế",
        "Entry suspended: travel to an area with cases; see the health officer",
    ),
    # the door
    "gate_closed": ("deny", "Cổng ngoài giờ mở cửa", "Gate closed at this hour"),
    "wrong_direction": (
        "deny",
        "Cổng này không dùng theo chiều này",
        "Wrong way through this gate",
    ),
    "shared_pass": ("deny", "Mã QR vừa được dùng ở cổng khác", "Pass just used at another gate"),
    "already_inside": (
        "deny",
        "Bạn đã vào rồi; hãy quét khi ra",
        "Already inside; scan when leaving",
    ),
    "site_full": ("deny", "Trụ sở đã đủ số người cho phép", "Building is at capacity"),
    "offline_denied": (
        "deny",
        "Mất kết nối máy chủ; vui lòng gặp bảo vệ",
        "Server unreachable; please see the guard",
    ),
    # The kiosk's copy of revocations, suspensions and the deny list is older than the
    # site's max_offline_age_s (or it has none): it cannot vouch for anyone offline.
    "offline_stale": (
        "deny",
        "Dữ liệu ngoại tuyến đã quá cũ; vui lòng gặp bảo vệ",
        "Offline data too old; please see the guard",
    ),
    # The same pass again at this door, offline, within the site's repeat window.
    "offline_repeat": (
        "deny",
        "Mã QR vừa được quét ở cổng này",
        "Pass just scanned at this gate",
    ),
}

# The door reasons of a health suspension, gravest first (the door shows the gravest).
SUSPENSION_REASONS: tuple[str, ...] = ("case_confirmed", "contact_traced", "area_flagged")


# Denials that only an admin may override (with a reason, as every override), never a
# guard: the pass was revoked, the person is on the deny list, a health officer
# rejected their declaration, or the health desk suspended them. Every other denial is
# the guard's call, at the door, within the site's override window.
ADMIN_ONLY_OVERRIDES: frozenset[str] = frozenset(
    {"pass_revoked", "deny_listed", "declaration_rejected", *SUSPENSION_REASONS}
)


_SEE_THE_GUARD = ("vui lòng gặp bảo vệ", "please see the guard")

# code -> direction -> (Vietnamese, English), where the way the person goes changes
# the words. A code not here, or a direction not under it, has the words of REASONS.
DIRECTED: dict[str, dict[Direction, tuple[str, str]]] = {
    "override_allowed": {
        "in": ("Bảo vệ đã cho phép vào", "Let in by the guard"),
        "out": ("Bảo vệ đã cho phép ra", "Let out by the guard"),
    },
    "offline_allowed": {
        "in": ("Mời vào (kiểm tra ngoại tuyến)", "Welcome (checked offline)"),
        "out": ("Tạm biệt (kiểm tra ngoại tuyến)", "Goodbye (checked offline)"),
    },
    # Someone leaving cannot declare their way out: the guard lets them out.
    "expired": {
        "out": (f"Mã QR đã hết hạn; {_SEE_THE_GUARD[0]}", f"Pass expired; {_SEE_THE_GUARD[1]}"),
    },
    "declaration_expired": {
        "out": (
            f"Khai báo y tế đã hết hạn; {_SEE_THE_GUARD[0]}",
            f"Declaration expired; {_SEE_THE_GUARD[1]}",
        ),
    },
    "not_yet_valid": {
        "out": (
            f"Mã QR chưa đến thời gian hiệu lực; {_SEE_THE_GUARD[0]}",
            f"Pass not valid yet; {_SEE_THE_GUARD[1]}",
        ),
    },
    "pass_superseded": {
        "out": ("Mã QR cũ; hãy dùng mã mới nhất để ra", "Old pass; show your newest one to leave"),
    },
    "gate_closed": {
        "out": (f"Cổng ngoài giờ mở cửa; {_SEE_THE_GUARD[0]}", f"Gate closed; {_SEE_THE_GUARD[1]}"),
    },
    # The direction of a wrong-way scan is the way the person tried to go.
    "wrong_direction": {
        "in": ("Cổng này chỉ dùng để ra", "This gate is for leaving only"),
        "out": ("Cổng này chỉ dùng để vào; hãy ra ở cổng ra", "This gate is for entering only"),
    },
    "shared_pass": {
        "out": ("Mã QR vừa được dùng để ra ở cổng khác", "Pass just used to leave at another gate"),
    },
    "offline_denied": {
        "out": (
            "Mất kết nối máy chủ; bảo vệ sẽ mở cửa cho bạn ra",
            "Server unreachable; the guard will let you out",
        ),
    },
}

# (verdict, direction) -> words: the kiosk's headline, in capitals over the reason ...
HEADLINES: dict[tuple[Verdict, Direction | None], tuple[str, str]] = {
    ("allow", "in"): ("MỜI VÀO", "WELCOME"),
    ("allow", "out"): ("TẠM BIỆT", "GOODBYE"),
    ("allow", None): ("XIN MỜI", "GO AHEAD"),
    ("deny", "in"): ("TỪ CHỐI", "DENIED"),
    ("deny", "out"): ("TỪ CHỐI", "DENIED"),
    ("deny", None): ("TỪ CHỐI", "DENIED"),
}
# ... and what the door did, as the guard console and the exports say it.
LABELS: dict[tuple[Verdict, Direction | None], tuple[str, str]] = {
    ("allow", "in"): ("CHO VÀO", "LET IN"),
    ("allow", "out"): ("CHO RA", "LET OUT"),
    ("allow", None): ("CHO QUA", "LET THROUGH"),
    ("deny", "in"): ("TỪ CHỐI", "DENIED"),
    ("deny", "out"): ("TỪ CHỐI", "DENIED"),
    ("deny", None): ("TỪ CHỐI", "DENIED"),
}


# Warnings on an allowed scan, for the guard: code -> (Vietnamese, English).
WARNINGS: dict[str, tuple[str, str]] = {
    "already_inside": ("đã ở trong, chưa quét ra", "already inside, no exit scanned"),
    "not_inside": ("không có lượt vào", "no entry on record"),
}


def _direction(value: str | None) -> Direction | None:
    return "in" if value == "in" else "out" if value == "out" else None


def message(code: str, direction: str | None = None) -> tuple[str, str]:
    """(Vietnamese, English) for a reason code, for a person going ``direction``."""
    way = _direction(direction)
    if way is not None and way in DIRECTED.get(code, {}):
        return DIRECTED[code][way]
    _, vi, en = REASONS[code]
    return vi, en


def _verdict(decision: str) -> Verdict:
    return "allow" if decision == "allow" else "deny"


def headline(decision: str, direction: str | None = None) -> tuple[str, str]:
    """(Vietnamese, English) headline of the kiosk's verdict screen."""
    return HEADLINES[_verdict(decision), _direction(direction)]


def label(decision: str, direction: str | None = None) -> tuple[str, str]:
    """(Vietnamese, English) of what the door did, for the console and exports."""
    return LABELS[_verdict(decision), _direction(direction)]


def words_by_direction() -> dict[str, object]:
    """Every word above, keyed by direction ("in", "out", "" for unknown), for a page."""
    ways: tuple[Direction | None, ...] = ("in", "out", None)
    return {
        "reasons": {
            code: {way or "": list(message(code, way)) for way in ways} for code in REASONS
        },
        "labels": {
            verdict: {way or "": list(label(verdict, way)) for way in ways}
            for verdict in ("allow", "deny")
        },
        "warnings": {code: list(words) for code, words in WARNINGS.items()},
    }


def short_name(full_name: str | None) -> str | None:
    """What the public door screen may show: initials and the given name.

    Vietnamese names put the family name first and the given name last, and people
    are addressed by the given name: "Nguyễn Văn An" -> "N. V. An".
    """
    if not full_name:
        return None
    parts = full_name.split()
    if len(parts) == 1:
        return parts[0]
    return " ".join(p[0] + "." for p in parts[:-1]) + " " + parts[-1]
