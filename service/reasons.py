"""The door's reason codes: a stable, documented list, with the words for the screen.

The kiosk shows message_vi in large type and message_en below it, to a queue of people:
short, plain, no personal data. Codes are stored in the event log and exported; never
rename one, only add.
"""

from __future__ import annotations

from typing import Literal

Verdict = Literal["allow", "deny"]

# code -> (verdict it goes with, Vietnamese, English)
REASONS: dict[str, tuple[Verdict, str, str]] = {
    # allowed
    "welcome": ("allow", "Mời vào", "Welcome"),
    "goodbye": ("allow", "Tạm biệt, hẹn gặp lại", "Goodbye"),
    "override_allowed": ("allow", "Bảo vệ đã cho phép vào", "Let in by the guard"),
    "offline_allowed": ("allow", "Mời vào (kiểm tra ngoại tuyến)", "Welcome (checked offline)"),
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
    # health suspensions (service/health_suspensions.py): lifted by a health officer or an
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
}

# The door reasons of a health suspension, gravest first (the door shows the gravest).
SUSPENSION_REASONS: tuple[str, ...] = ("case_confirmed", "contact_traced", "area_flagged")


def message(code: str) -> tuple[str, str]:
    """(Vietnamese, English) for a reason code."""
    _, vi, en = REASONS[code]
    return vi, en


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
