"""Per-field validation errors, as the API's 422 answers and the forms show them. Pure.

One catalogue gives every field error code its English and Vietnamese words, so no
library text reaches a person. Each error is ``{"field", "code", "reason", "reason_en",
"reason_vi"}``: ``code`` is stable for machines, ``reason`` is in the language asked for
(English for the API), ``reason_en`` and ``reason_vi`` are both always there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pydantic

Lang = Literal["en", "vi"]

# code -> (English, Vietnamese); {names} come from the error's context.
REASONS: dict[str, tuple[str, str]] = {
    # presence and shape
    "missing": ("This field is required", "Vui lòng điền thông tin này"),
    "extra_forbidden": ("This field is not expected here", "Trường thông tin không hợp lệ"),
    "model_type": ("Expected an object", "Cần một đối tượng JSON"),
    "model_attributes_type": ("Expected an object", "Cần một đối tượng JSON"),
    "dict_type": ("Expected an object", "Cần một đối tượng JSON"),
    "list_type": ("Expected a list", "Cần một danh sách"),
    "set_type": ("Expected a list", "Cần một danh sách"),
    "frozen_set_type": ("Expected a list", "Cần một danh sách"),
    "too_short": ("Give at least {min_length} items", "Cần ít nhất {min_length} mục"),
    "too_long": ("At most {max_length} items", "Quá nhiều mục (tối đa {max_length})"),
    "union_tag_invalid": ("Choose one of: {expected_tags}", "Chọn một trong: {expected_tags}"),
    "union_tag_not_found": ("The field {discriminator} is required", "Cần trường {discriminator}"),
    # text
    "string_type": ("Expected text", "Cần nhập dạng chữ"),
    "string_too_short": ("This field is required", "Vui lòng điền thông tin này"),
    "string_too_long": (
        "Too long (at most {max_length} characters)",
        "Nội dung quá dài (tối đa {max_length} ký tự)",
    ),
    "string_pattern_mismatch": ("The format is not valid", "Không đúng định dạng"),
    "invalid_unicode": ("The text contains broken characters", "Nội dung có ký tự lỗi"),
    "control_character": (
        "The text contains a control or invisible character (U+{codepoint})",
        "Nội dung có ký tự điều khiển hoặc ký tự ẩn (U+{codepoint})",
    ),
    # choices
    "literal_error": (
        "Choose one of: {expected}",
        "Chọn một trong: {expected}",
    ),
    "enum": ("Choose one of: {expected}", "Chọn một trong: {expected}"),
    "bool_type": ("Expected true or false", "Cần chọn Có hoặc Không"),
    "bool_parsing": ("Expected true or false", "Cần chọn Có hoặc Không"),
    # numbers
    "int_type": ("Expected a whole number", "Cần nhập số nguyên"),
    "int_parsing": ("Expected a whole number", "Cần nhập số nguyên"),
    "int_from_float": ("Expected a whole number", "Cần nhập số nguyên"),
    "float_type": ("Expected a number", "Cần nhập một số"),
    "float_parsing": ("Expected a number", "Cần nhập một số"),
    "finite_number": ("Expected a finite number", "Cần nhập một số hữu hạn"),
    "greater_than": ("Must be greater than {gt}", "Giá trị phải lớn hơn {gt}"),
    "greater_than_equal": ("Must be {ge} or more", "Giá trị phải từ {ge} trở lên"),
    "less_than": ("Must be less than {lt}", "Giá trị phải nhỏ hơn {lt}"),
    "less_than_equal": ("Must be at most {le}", "Giá trị tối đa là {le}"),
    # identifiers, dates and times
    "uuid_type": ("Expected a UUID", "Cần một mã UUID"),
    "uuid_parsing": ("Expected a UUID", "Cần một mã UUID"),
    "uuid_version": ("Expected a UUID", "Cần một mã UUID"),
    "datetime_type": (
        "Expected a date and time, e.g. 2021-10-08T09:30:00+07:00",
        "Cần ngày giờ, ví dụ 2021-10-08T09:30:00+07:00",
    ),
    "datetime_parsing": (
        "Expected a date and time, e.g. 2021-10-08T09:30:00+07:00",
        "Cần ngày giờ, ví dụ 2021-10-08T09:30:00+07:00",
    ),
    "datetime_from_date_parsing": (
        "Expected a date and time, e.g. 2021-10-08T09:30:00+07:00",
        "Cần ngày giờ, ví dụ 2021-10-08T09:30:00+07:00",
    ),
    "timezone_aware": (
        "A time needs its UTC offset, e.g. +07:00",
        "Thời điểm cần kèm múi giờ (ví dụ +07:00)",
    ),
    "timezone_required": (
        "A time needs its UTC offset, e.g. +07:00",
        "Thời điểm cần kèm múi giờ (ví dụ +07:00)",
    ),
    "time_type": ("Expected a time, e.g. 08:00", "Cần giờ, ví dụ 08:00"),
    "time_parsing": ("Expected a time, e.g. 08:00", "Cần giờ, ví dụ 08:00"),
    "date_type": (
        "Expected a date, e.g. 2021-10-08",
        "Ngày không đúng định dạng (ví dụ 2021-10-08)",
    ),
    "date_parsing": (
        "Expected a date, e.g. 2021-10-08",
        "Ngày không đúng định dạng (ví dụ 2021-10-08)",
    ),
    "date_from_datetime_parsing": (
        "Expected a date, e.g. 2021-10-08",
        "Ngày không đúng định dạng (ví dụ 2021-10-08)",
    ),
    "date_from_datetime_inexact": (
        "Expected a date, e.g. 2021-10-08",
        "Ngày không đúng định dạng (ví dụ 2021-10-08)",
    ),
    "date_format": (
        "Expected a date (2021-10-08) or a date and time with an offset "
        "(2021-10-08T09:30:00+07:00)",
        "Ngày không đúng định dạng (ví dụ 2021-10-08)",
    ),
    # the declaration
    "phone_format": (
        "A Vietnamese mobile number has 10 digits starting with 0, or +84 and 9 digits",
        "Số điện thoại di động gồm 10 chữ số, bắt đầu bằng 0 (hoặc +84)",
    ),
    "national_id_format": (
        "A national ID has 9 digits (CMND) or 12 digits (CCCD)",
        "Số CMND gồm 9 chữ số, số CCCD gồm 12 chữ số",
    ),
    "phone_or_national_id_required": (
        "Give a phone number or a national ID (CMND/CCCD)",
        "Vui lòng nhập số điện thoại hoặc số CMND/CCCD",
    ),
    "required_for_visitor": ("Required for visitors", "Khách đến làm việc cần điền thông tin này"),
    "visitor_only": (
        "Only visitors fill in this field",
        "Thông tin này chỉ dành cho khách đến làm việc",
    ),
    "date_in_future": (
        "The test date is in the future",
        "Ngày xét nghiệm không được sau ngày hôm nay",
    ),
    "date_too_old": ("The test is more than {days} days old", "Ngày xét nghiệm đã quá {days} ngày"),
    "none_with_symptoms": (
        "Tick either “None of these” or the symptoms you have, not both",
        "Chọn “Không có triệu chứng nào” hoặc các triệu chứng bạn có, không chọn cả hai",
    ),
    "departure_format": (
        "The expected departure is a time (17:30) or a date and time (2026-12-07 17:30)",
        "Giờ dự kiến về cần là giờ (17:30) hoặc ngày và giờ (2026-12-07 17:30)",
    ),
    "departure_past": (
        "The expected departure has already passed",
        "Giờ dự kiến về đã qua",
    ),
    "site_not_found": ("No such site", "Không tìm thấy trụ sở này"),
    "not_staff": (
        "Not in the staff list with this phone or national ID; declare as a visitor",
        "Không có trong danh sách cán bộ với số điện thoại hoặc CMND/CCCD này; "
        "vui lòng khai báo là khách",
    ),
    # sites, gates, rules, staff
    "unknown_timezone": (
        "Unknown time zone; use a name such as Asia/Ho_Chi_Minh",
        "Múi giờ không hợp lệ; dùng tên như Asia/Ho_Chi_Minh",
    ),
    "opens_after_closes": (
        "The opening time must be before the closing time",
        "Giờ mở cửa phải trước giờ đóng cửa",
    ),
    "dates_out_of_order": (
        "The end date is before the start date",
        "Ngày kết thúc ở trước ngày bắt đầu",
    ),
    "staff_only": ("Applies to staff only", "Chỉ áp dụng cho cán bộ"),
    "onset_in_future": (
        "The onset date is in the future",
        "Ngày khởi phát không được sau ngày hôm nay",
    ),
    "onset_too_old": (
        "The onset is more than {days} days ago",
        "Ngày khởi phát đã quá {days} ngày",
    ),
    "person_ids_or_all": (
        "Give either person_ids or all: true",
        "Cần chọn person_ids hoặc all: true",
    ),
    "area_needs_area_flagged": (
        "area_id goes with the cause area_flagged",
        "area_id chỉ đi cùng lý do area_flagged",
    ),
    "known_at_several_sites": (
        "The person is known at several sites ({sites}): give site_id",
        "Người này có ở nhiều trụ sở ({sites}): cần chọn site_id",
    ),
    # the import of official test results (service/health/test_import.py)
    "report_date": (
        "Expected a date YYYY-MM-DD from 1900 to 2099",
        "Cần ngày dạng YYYY-MM-DD, từ năm 1900 đến 2099",
    ),
    "blank": ("This field is blank", "Vui lòng điền thông tin này"),
    "person_required": (
        "Give a person_id, a phone number or a national ID",
        "Cần mã người (person_id), số điện thoại hoặc số CMND/CCCD",
    ),
    "person_not_found": ("No person has this {column}", "Không có người nào có {column} này"),
    "not_known_at_site": (
        "This person is not known at site {site_id}",
        "Người này chưa khai báo hoặc ra vào trụ sở {site_id}",
    ),
    "identity_conflict": (
        "The identifiers of this row belong to different people",
        "Các thông tin nhận dạng của dòng này thuộc về những người khác nhau",
    ),
    "duplicate_row": (
        "The same result as row {first} of this file",
        "Trùng kết quả với dòng {first} của tệp",
    ),
    "bad_columns": (
        "The columns must be {columns}",
        "Các cột phải là {columns}",
    ),
    "column_count": ("Expected {expected} cells, got {got}", "Cần {expected} ô, có {got} ô"),
    "csv_error": ("The CSV cannot be read: {detail}", "Không đọc được tệp CSV: {detail}"),
    "empty_file": ("The file is empty", "Tệp trống"),
    "too_many_rows": ("At most {max_rows} rows", "Tối đa {max_rows} dòng"),
    "not_recorded": (
        "The result could not be recorded: {detail}",
        "Không ghi được kết quả: {detail}",
    ),
}
# A code missing from the catalogue still gets words people can read, in both languages.
UNKNOWN_REASON = ("This value is not valid", "Giá trị không hợp lệ")

_VI_WORDS = {" or ": " hoặc ", " and ": " và "}


def _filled(template: str, ctx: Mapping[str, Any], lang: Lang) -> str:
    values = {key: str(value) for key, value in ctx.items()}
    if lang == "vi":
        for en, vi in _VI_WORDS.items():
            values = {key: value.replace(en, vi) for key, value in values.items()}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template.split("{", 1)[0].rstrip(" :(")


def field_error(
    field: str, code: str, ctx: Mapping[str, Any] | None = None, *, lang: Lang = "en"
) -> dict[str, str]:
    """One field's error, with its words in both languages from the catalogue."""
    en_template, vi_template = REASONS.get(code, UNKNOWN_REASON)
    en = _filled(en_template, ctx or {}, "en")
    vi = _filled(vi_template, ctx or {}, "vi")
    return {
        "field": field,
        "code": code,
        "reason": vi if lang == "vi" else en,
        "reason_en": en,
        "reason_vi": vi,
    }


def field_errors(exc: pydantic.ValidationError, *, lang: Lang = "en") -> list[dict[str, str]]:
    """Errors as ``[{"field": "last_test.taken_at", "code": ..., "reason": ...}]``.

    ``field`` joins the location with dots (list items by index, ``travel_areas.2``;
    "body" for the whole body); ``code`` is pydantic's error type or one of our own
    (``phone_format``, ``control_character``, ...)."""
    return [
        field_error(
            ".".join(str(part) for part in error["loc"]) or "body",
            error["type"],
            error.get("ctx"),
            lang=lang,
        )
        for error in exc.errors(include_url=False, include_input=False)
    ]
