"""Per-field validation errors, as the API's 422 answers and the forms show them. Pure."""

from __future__ import annotations

from typing import Literal

import pydantic

# Vietnamese wording for the error codes people meet most; English (pydantic's) otherwise.


_VI_REASONS: dict[str, str] = {
    "missing": "Vui lòng điền thông tin này",
    "extra_forbidden": "Trường thông tin không hợp lệ",
    "string_type": "Cần nhập dạng chữ",
    "string_too_short": "Vui lòng điền thông tin này",
    "string_too_long": "Nội dung quá dài (tối đa {max_length} ký tự)",
    "too_long": "Quá nhiều mục (tối đa {max_length})",
    "literal_error": "Giá trị không hợp lệ; chọn một trong: {expected}",
    "bool_type": "Cần chọn Có hoặc Không",
    "int_type": "Cần nhập số nguyên",
    "greater_than": "Giá trị phải lớn hơn {gt}",
    "greater_than_equal": "Giá trị phải từ {ge} trở lên",
    "less_than_equal": "Giá trị tối đa là {le}",
    "invalid_unicode": "Nội dung có ký tự lỗi",
    "control_character": "Nội dung có ký tự điều khiển hoặc ký tự ẩn",
    "phone_format": "Số điện thoại di động gồm 10 chữ số, bắt đầu bằng 0 (hoặc +84)",
    "national_id_format": "Số CMND gồm 9 chữ số, số CCCD gồm 12 chữ số",
    "phone_or_national_id_required": "Vui lòng nhập số điện thoại hoặc số CMND/CCCD",
    "required_for_visitor": "Khách đến làm việc cần điền thông tin này",
    "visitor_only": "Thông tin này chỉ dành cho khách đến làm việc",
    "date_format": "Ngày không đúng định dạng (ví dụ 2021-10-08)",
    "date_type": "Ngày không đúng định dạng (ví dụ 2021-10-08)",
    "timezone_required": "Thời điểm cần kèm múi giờ (ví dụ +07:00)",
    "date_in_future": "Ngày xét nghiệm không được sau ngày hôm nay",
    "date_too_old": "Ngày xét nghiệm đã quá {days} ngày",
}


def field_errors(
    exc: pydantic.ValidationError, *, lang: Literal["en", "vi"] = "en"
) -> list[dict[str, str]]:
    """Errors as ``[{"field": "last_test.taken_at", "reason": ..., "code": ...}]`` for a 422.

    Same shape as ``service.validation.field_errors``: ``field`` joins the location with dots
    (list items by index, ``travel_areas.2``; "body" for the whole body); ``code`` is
    pydantic's error type or one of this module's own codes (``phone_format``, ...).
    ``lang="vi"`` gives Vietnamese reasons where known, English otherwise.
    """
    out: list[dict[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        code = error["type"]
        reason = error["msg"]
        template = _VI_REASONS.get(code) if lang == "vi" else None
        if template is not None:
            try:
                reason = template.format(**error.get("ctx", {}))
            except (KeyError, IndexError, ValueError):
                pass
        field = ".".join(str(part) for part in error["loc"]) or "body"
        out.append({"field": field, "reason": reason, "code": code})
    return out
