"""The words of the declaration pages (the form, its result, the printable pass and the
phone's pass): one catalogue, key -> (Vietnamese, English). Field errors have their own
(service.web.field_errors), shared with the API.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

Lang = Literal["vi", "en"]

WORDS: dict[str, tuple[str, str]] = {
    "title": ("Khai báo y tế", "Health declaration"),
    "intro": (
        "Vui lòng khai báo trung thực. Khai báo sai là vi phạm pháp luật.",
        "Please answer truthfully. A false declaration is an offence.",
    ),
    "switch": ("English", "Tiếng Việt"),
    "legend_who": ("Thông tin người khai", "About you"),
    "legend_visitor": ("Dành cho khách đến làm việc", "For visitors"),
    "visitor_hint": (
        "Cán bộ, nhân viên bỏ qua phần này.",
        "Staff leave this part empty.",
    ),
    "legend_health": ("Tình trạng sức khỏe (14 ngày qua)", "Health (last 14 days)"),
    "legend_test": ("Xét nghiệm COVID-19 gần nhất", "Latest COVID-19 test"),
    "site_id": ("Trụ sở", "Office"),
    "kind": ("Bạn là", "You are"),
    "kind_staff": ("Cán bộ, nhân viên", "Staff"),
    "kind_visitor": ("Khách đến làm việc", "Visitor"),
    "full_name": ("Họ và tên", "Full name"),
    "phone": ("Số điện thoại di động", "Mobile phone"),
    "national_id": ("Số CMND/CCCD", "National ID (CMND/CCCD)"),
    "id_hint": (
        "Cần ít nhất số điện thoại hoặc số CMND/CCCD.",
        "Give at least a phone number or a national ID.",
    ),
    "organisation": ("Cơ quan, đơn vị", "Organisation"),
    "host_name": ("Người cần gặp", "Person you visit"),
    "purpose": ("Nội dung làm việc", "Purpose of the visit"),
    "expected_departure": ("Giờ dự kiến về", "Expected departure"),
    "departure_hint": (
        "Giờ hôm nay (17:30) hoặc ngày và giờ (2026-12-07 17:30), theo giờ tại trụ sở. "
        "Có thể bỏ trống.",
        "A time today (17:30) or a date and time (2026-12-07 17:30), office time. Optional.",
    ),
    "symptoms": ("Triệu chứng", "Symptoms"),
    "symptom_none": ("Không có triệu chứng nào", "None of these"),
    "fever": ("Sốt", "Fever"),
    "cough": ("Ho", "Cough"),
    "shortness_of_breath": ("Khó thở", "Shortness of breath"),
    "loss_of_taste_or_smell": ("Mất vị giác hoặc khứu giác", "Loss of taste or smell"),
    "sore_throat": ("Đau họng", "Sore throat"),
    "fatigue": ("Mệt mỏi", "Fatigue"),
    "contact_f0": (
        "Bạn có tiếp xúc gần với ca bệnh xác định (F0)?",
        "Were you in close contact with a confirmed case (F0)?",
    ),
    "contact_f1": (
        "Bạn có tiếp xúc với trường hợp nghi nhiễm hoặc F1?",
        "Were you in contact with a suspected case or an F1 contact?",
    ),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "travel_areas": (
        "Nơi đã đến ngoài nơi ở (mỗi dòng một nơi)",
        "Places visited away from home (one per line)",
    ),
    "travel_hint": ("Để trống nếu không đi đâu.", "Leave empty if none."),
    "vaccination_doses": ("Số mũi vắc-xin đã tiêm", "Vaccine doses received"),
    "choose": ("— Chọn —", "— Choose —"),
    "last_test_kind": ("Loại xét nghiệm", "Test type"),
    "test_none": ("Chưa xét nghiệm", "No test"),
    "rapid_antigen": ("Test nhanh kháng nguyên", "Rapid antigen"),
    "pcr": ("RT-PCR", "RT-PCR"),
    "last_test_result": ("Kết quả", "Result"),
    "negative": ("Âm tính", "Negative"),
    "positive": ("Dương tính", "Positive"),
    "last_test_taken_at": ("Ngày xét nghiệm", "Test date"),
    "pledge": (
        "Tôi cam kết các thông tin trên là đúng sự thật.",
        "I confirm that the answers above are true.",
    ),
    "submit": ("Gửi khai báo", "Submit"),
    "fix_errors": ("Vui lòng sửa các mục được đánh dấu.", "Please correct the marked fields."),
    "result_title": ("Kết quả khai báo", "Declaration result"),
    "cleared": ("Đủ điều kiện vào trụ sở", "Cleared to enter"),
    "review": ("Cần cán bộ y tế xem xét", "A health officer needs to review this"),
    "rejected": ("Chưa thể vào trụ sở", "Entry is not permitted"),
    "label_name": ("Họ và tên", "Name"),
    "label_site": ("Trụ sở", "Office"),
    "label_valid_until": ("Có giá trị đến", "Valid until"),
    "label_review_until": ("Chờ duyệt đến", "Awaiting review until"),
    "no_pass_review": (
        "Chưa có mã QR: bạn chưa được vào cho đến khi cán bộ y tế duyệt khai báo này. "
        "Nếu chưa được duyệt trước thời hạn trên, vui lòng khai báo lại.",
        "No pass yet: you may not enter until a health officer approves this declaration. "
        "If it is not approved by the time above, please declare again.",
    ),
    "no_pass_rejected": (
        "Không có mã QR ra vào. Vui lòng liên hệ bảo vệ hoặc cán bộ y tế.",
        "No entry pass was issued. Please see the guard or a health officer.",
    ),
    "label_valid_from": ("Có giá trị từ", "Valid from"),
    "label_pass_id": ("Mã thẻ", "Pass ID"),
    "reasons": ("Lý do", "Reasons"),
    "pass_heading": ("Mã QR ra vào", "Your entry QR code"),
    "pass_alt": ("Mã QR ra vào của bạn", "Your entry QR code"),
    "pass_hint": (
        "Đưa mã này trước máy quét ở cổng. Có thể lưu ảnh hoặc in ra.",
        "Show this code to the scanner at the gate. Save the image or print it.",
    ),
    "download": ("Tải ảnh mã QR (PNG)", "Download QR (PNG)"),
    "print": ("Trang in", "Printable page"),
    "phone_pass": ("Mã QR trên điện thoại", "Pass on this phone"),
    "phone_pass_hint": (
        "Trên điện thoại, hãy mở mã QR xoay: ảnh chụp màn hình không dùng được thay bạn.",
        "On a phone, open the rotating pass: a screenshot cannot be used in your place.",
    ),
    "again": ("Khai báo lại", "Declare again"),
    "again_hint": (
        "Giữ liên kết này cho lần khai báo sau: chỉ người giữ nó mới khai báo lại thay cho "
        "khai báo này được. Không chia sẻ liên kết này.",
        "Keep this link for your next declaration: only its holder can declare again in "
        "place of this one. Do not share it.",
    ),
    "print_title": ("Thẻ ra vào", "Entry pass"),
    "print_hint": (
        "Xuất trình mã QR này tại cổng. Thẻ hết hiệu lực sau thời hạn trên.",
        "Show this QR code at the gate. The pass ends at the time above.",
    ),
    "revoked": ("Thẻ này đã bị thu hồi.", "This pass has been revoked."),
    "expired": ("Thẻ này đã hết hạn.", "This pass has expired."),
    "not_found": ("Không tìm thấy thẻ này.", "No such pass."),
    "unavailable": (
        "Hệ thống tạm thời chưa cấp được mã QR. Vui lòng thử lại sau ít phút.",
        "Passes cannot be issued right now. Please try again in a few minutes.",
    ),
    "back": ("Quay lại", "Back"),
    "result_not_found": (
        "Không tìm thấy khai báo này. Vui lòng khai báo lại.",
        "No such declaration. Please declare again.",
    ),
    "result_superseded": (
        "Khai báo này đã được thay bằng một khai báo mới hơn; hãy dùng liên kết của khai báo mới.",
        "A newer declaration replaced this one; use the link of the newer one.",
    ),
    "follow": ("Xem kết quả mới nhất", "See the latest result"),
    "follow_hint": (
        "Trang này tự cập nhật; khi cán bộ y tế duyệt, mã QR sẽ hiện ở đây.",
        "This page updates itself; once a health officer approves, your QR code shows here.",
    ),
    "no_sites": ("Chưa có trụ sở nào được cấu hình.", "No office is set up yet."),
    # the rotating pass on the holder's phone
    "phone_title": ("Mã QR vào cửa", "Entry pass"),
    "phone_brightness": (
        "Tăng độ sáng màn hình tối đa khi quét mã.",
        "Turn your screen brightness up when you scan.",
    ),
    "phone_qr_label": (
        "Mã QR vào cửa, tự đổi mỗi 15 giây",
        "Entry QR code, it changes every 15 seconds",
    ),
    "phone_rotating_hint": (
        "Mã đổi mỗi 15 giây; ảnh chụp màn hình sẽ không dùng được.",
        "The code changes every 15 seconds; a screenshot will not work.",
    ),
    "phone_starting": ("Đang chuẩn bị mã…", "Preparing your code…"),
    "phone_offline_ok": ("Không có mạng: mã vẫn dùng được.", "No network: the code still works."),
    "phone_unsupported": (
        "Trình duyệt này không tạo được mã xoay; hãy dùng mã in hoặc ảnh mã QR.",
        "This browser cannot make a rotating code; use the printed pass or its image.",
    ),
    "phone_home": (
        "Thêm trang này vào màn hình chính để mở nhanh.",
        "Add this page to your home screen.",
    ),
    "phone_not_found": ("Không tìm thấy mã QR này.", "Pass not found."),
}


def t(key: str, lang: Lang) -> str:
    vi, en = WORDS[key]
    return vi if lang == "vi" else en


@functools.cache
def catalogue(lang: Lang) -> Mapping[str, str]:
    """Every word in one language, as the templates read them (``t["title"]``): a
    lookup, not a call per word, on the most used page."""
    return MappingProxyType({key: t(key, lang) for key in WORDS})


def both(key: str) -> str:
    """Both languages at once, for what a page shows before it knows the reader's."""
    vi, en = WORDS[key]
    return f"{vi} / {en}"


def lang_of(value: str | None) -> Lang:
    return "en" if value == "en" else "vi"
