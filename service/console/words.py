"""The guard console's words (login, the console page's shell, the printed roll call):
one catalogue, key -> (Vietnamese, English). What console.js draws has its words there,
beside the code that draws it.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["vi", "en"]

WORDS: dict[str, tuple[str, str]] = {
    "title": ("Bảng điều khiển bảo vệ", "Guard console"),
    "login": ("Đăng nhập", "Log in"),
    "username": ("Tên đăng nhập", "Username"),
    "password": ("Mật khẩu", "Password"),
    "bad_login": (
        "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang bị khoá tạm thời.",
        "Wrong username or password, or the account is locked for a while.",
    ),
    "too_many_logins": (
        "Quá nhiều lần đăng nhập; vui lòng đợi một phút rồi thử lại.",
        "Too many login attempts; wait a minute and try again.",
    ),
    "login_busy": (
        "Hệ thống đang bận; vui lòng thử lại sau giây lát.",
        "The service is busy; try again in a moment.",
    ),
    "session_ended": (
        "Phiên đăng nhập đã kết thúc; vui lòng đăng nhập lại.",
        "Your session has ended; please log in again.",
    ),
    "stale_form": (
        "Biểu mẫu đã cũ; vui lòng tải lại trang và đăng nhập lại.",
        "The form is stale; reload the page and log in again.",
    ),
    "switch": ("English", "Tiếng Việt"),
    "rollcall": ("Điểm danh sơ tán", "Evacuation roll call"),
    "inside": ("Đang ở trong", "Inside now"),
    "name": ("Họ tên", "Name"),
    "kind": ("Loại", "Kind"),
    "organisation": ("Đơn vị", "Organisation"),
    "since": ("Vào lúc", "Since"),
    "gate": ("Cổng", "Gate"),
    "present": ("Có mặt", "Present"),
    "print": ("In danh sách", "Print"),
    "printed_at": ("Lập lúc", "Printed at"),
    "back": ("Quay lại", "Back"),
    "no_site": ("Chưa có địa điểm nào.", "There is no site yet."),
    # the printed roll call
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


def t(key: str, lang: Lang) -> str:
    vi, en = WORDS[key]
    return vi if lang == "vi" else en
