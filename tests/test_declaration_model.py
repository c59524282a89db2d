import json
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.declarations.model import Declaration
from service.people.fields import NAME_MAX, normalize_national_id, normalize_phone
from service.web.field_errors import field_errors

# 10:00 in Hà Nội on 9 October 2021.
NOW = datetime(2021, 10, 9, 3, 0, tzinfo=UTC)
TODAY_VN = date(2021, 10, 9)


def data(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "site_id": 1,
        "kind": "visitor",
        "full_name": "Nguyễn Văn An",
        "phone": "0912345678",
        "organisation": "Công ty TNHH Texhong",
        "host_name": "Trần Thị Lan",
        "purpose": "Làm thủ tục hải quan",
        "symptoms": [],
        "contact_f0": False,
        "contact_f1": False,
        "travel_areas": [],
        "vaccination_doses": 2,
        "last_test": {"kind": "rapid_antigen", "result": "negative", "taken_at": "2021-10-08"},
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not ...}


def validate(raw: Any, now: datetime = NOW) -> Declaration:
    return Declaration.model_validate(raw, context={"now": now})


def errors_of(raw: Any, now: datetime = NOW) -> list[dict[str, str]]:
    with pytest.raises(pydantic.ValidationError) as info:
        validate(raw, now)
    return field_errors(info.value)


def single_error(raw: Any) -> tuple[str, str]:
    errors = errors_of(raw)
    assert len(errors) == 1, errors
    return errors[0]["field"], errors[0]["code"]


# --- accepted input ---------------------------------------------------------------------


def test_valid_visitor() -> None:
    declaration = validate(data())
    assert declaration.kind == "visitor"
    assert declaration.phone == "+84912345678"
    assert declaration.national_id is None
    assert declaration.last_test is not None
    assert declaration.last_test.taken_at == date(2021, 10, 8)


def test_valid_staff_without_visitor_fields() -> None:
    declaration = validate(data(kind="staff", host_name=..., purpose=..., last_test=...))
    assert declaration.host_name is None
    assert declaration.purpose is None
    assert declaration.last_test is None


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "091 234 5678",
        "091.234.5678",
        "091-234-5678",
        "+84912345678",
        "+84 91 234 5678",
        "(+84) 912-345-678",
    ],
)
def test_phone_normalised_to_e164(raw: str) -> None:
    assert validate(data(phone=raw)).phone == "+84912345678"
    assert normalize_phone(raw) == "+84912345678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456789", "123456789"),
        ("001099001234", "001099001234"),
        ("0010 9900 1234", "001099001234"),
    ],
)
def test_national_id_accepted(raw: str, expected: str) -> None:
    declaration = validate(data(phone=None, national_id=raw))
    assert declaration.national_id == expected
    assert normalize_national_id(raw) == expected


def test_blank_optional_fields_are_none() -> None:
    declaration = validate(data(phone="  ", national_id="123456789", organisation=""))
    assert declaration.phone is None
    assert declaration.organisation is None


def test_text_is_nfc_trimmed_and_spaces_collapsed() -> None:
    decomposed = unicodedata.normalize("NFD", "  Nguyễn\u00a0  Văn   An ")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    assert validate(data(full_name=decomposed)).full_name == "Nguyễn Văn An"


def test_name_length_is_counted_after_nfc() -> None:
    name = "ễ" * NAME_MAX
    decomposed = unicodedata.normalize("NFD", name)
    assert len(decomposed) > NAME_MAX
    assert validate(data(full_name=decomposed)).full_name == name


def test_html_in_names_is_kept_as_text() -> None:
    # Escaping is the renderer's job: pages and exports escape every declared string.
    name = "<script>alert(1)</script> & Co"
    assert validate(data(full_name=name, organisation=name)).full_name == name


def test_name_at_max_length() -> None:
    assert validate(data(full_name="A" * NAME_MAX)).full_name == "A" * NAME_MAX


def test_duplicate_symptoms_collapse() -> None:
    declaration = validate(data(symptoms=["fever", "cough", "fever"]))
    assert declaration.symptoms == frozenset({"fever", "cough"})


@pytest.mark.parametrize(
    "taken_at",
    [
        "2021-10-09",  # today in Vietnam
        (TODAY_VN - timedelta(days=60)).isoformat(),  # oldest accepted day
        "2021-10-09T09:30:00+07:00",
        "2021-10-09T03:04:00+00:00",  # 4 minutes ahead: clock skew tolerated
    ],
)
def test_test_date_accepted(taken_at: str) -> None:
    assert validate(data(last_test={"kind": "pcr", "result": "negative", "taken_at": taken_at}))


def test_test_date_today_in_vietnam_while_yesterday_in_utc() -> None:
    # 03:00 on 9 October in Hà Nội is still 8 October in UTC.
    now = datetime(2021, 10, 8, 20, 0, tzinfo=UTC)
    last_test = {"kind": "pcr", "result": "negative", "taken_at": "2021-10-09"}
    assert validate(data(last_test=last_test), now=now).last_test is not None


def test_json_round_trip() -> None:
    declaration = validate(
        data(
            last_test={
                "kind": "pcr",
                "result": "positive",
                "taken_at": "2021-10-08T09:30:00+07:00",
            },
            travel_areas=["Đông Triều"],
            symptoms=["fever"],
        )
    )
    dumped = declaration.model_dump(mode="json")
    assert dumped["last_test"]["taken_at"] == "2021-10-08T09:30:00+07:00"
    assert validate(dumped) == declaration
    text = json.dumps(dumped, ensure_ascii=False)
    assert Declaration.model_validate_json(text, context={"now": NOW}) == declaration


def test_json_schema_forbids_extra_fields() -> None:
    schema = Declaration.model_json_schema()
    assert schema["additionalProperties"] is False
    assert "contact_f0" in schema["required"]
    assert schema["properties"]["full_name"]["maxLength"] == NAME_MAX


# --- rejections: one per rule -------------------------------------------------------------


def test_rejects_missing_phone_and_national_id() -> None:
    assert single_error(data(phone=..., national_id=...)) == (
        "phone",
        "phone_or_national_id_required",
    )


def test_rejects_blank_phone_and_national_id() -> None:
    assert single_error(data(phone="", national_id=" ")) == (
        "phone",
        "phone_or_national_id_required",
    )


@pytest.mark.parametrize(
    "phone",
    [
        "091234567",  # 9 digits
        "09123456789",  # 11 digits
        "0212345678",  # not a mobile prefix
        "912345678",  # no leading 0
        "+84 0912345678",  # +84 and the trunk 0
        "+14155550100",
        "0912a45678",
        "０９１２３４５６７８",  # full-width digits
        "0912\x00345678",
    ],
)
def test_rejects_bad_phone(phone: str) -> None:
    assert single_error(data(phone=phone)) == ("phone", "phone_format")


def test_invalid_phone_does_not_also_report_missing_identity() -> None:
    assert single_error(data(phone="123", national_id=...)) == ("phone", "phone_format")


@pytest.mark.parametrize(
    "national_id",
    ["12345678", "1234567890", "12345678901", "1234567890123", "12345678a", "١٢٣٤٥٦٧٨٩"],
)
def test_rejects_bad_national_id(national_id: str) -> None:
    assert single_error(data(national_id=national_id)) == ("national_id", "national_id_format")


def test_rejects_phone_of_wrong_type() -> None:
    assert single_error(data(phone=912345678)) == ("phone", "string_type")


def test_rejects_oversized_name() -> None:
    assert single_error(data(full_name="A" * (NAME_MAX + 1))) == ("full_name", "string_too_long")


def test_rejects_blank_name() -> None:
    assert single_error(data(full_name="   ")) == ("full_name", "string_too_short")


def test_rejects_missing_name() -> None:
    assert single_error(data(full_name=...)) == ("full_name", "missing")


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x07", "\n", "\t", "\x7f", "\u0085", "\u200b", "\u202e", "\u2028", "\ue000"],
    ids=lambda char: f"U+{ord(char):04X}",
)
def test_rejects_control_and_invisible_characters(char: str) -> None:
    assert single_error(data(full_name=f"Nguyễn{char}An")) == ("full_name", "control_character")


def test_rejects_lone_surrogate() -> None:
    assert single_error(data(full_name="Nguy\ud800n")) == ("full_name", "invalid_unicode")


def test_rejects_control_character_in_travel_area() -> None:
    assert single_error(data(travel_areas=["Hà Nội", "Đông\x1bTriều"])) == (
        "travel_areas.1",
        "control_character",
    )


def test_rejects_too_many_travel_areas() -> None:
    assert single_error(data(travel_areas=[f"Khu {n}" for n in range(31)])) == (
        "travel_areas",
        "too_long",
    )


def test_rejects_future_test_date() -> None:
    last_test = {"kind": "pcr", "result": "negative", "taken_at": "2021-10-10"}
    assert single_error(data(last_test=last_test)) == ("last_test.taken_at", "date_in_future")


def test_rejects_future_test_time_beyond_clock_skew() -> None:
    last_test = {"kind": "pcr", "result": "negative", "taken_at": "2021-10-09T10:10:00+07:00"}
    assert single_error(data(last_test=last_test)) == ("last_test.taken_at", "date_in_future")


def test_rejects_test_older_than_60_days() -> None:
    taken_at = (TODAY_VN - timedelta(days=61)).isoformat()
    last_test = {"kind": "pcr", "result": "negative", "taken_at": taken_at}
    assert single_error(data(last_test=last_test)) == ("last_test.taken_at", "date_too_old")


def test_rejects_absurdly_old_test_time() -> None:
    last_test = {"kind": "pcr", "result": "negative", "taken_at": "0001-01-01T00:00:00+05:00"}
    assert single_error(data(last_test=last_test)) == ("last_test.taken_at", "date_too_old")


def test_rejects_test_time_without_offset() -> None:
    last_test = {"kind": "pcr", "result": "negative", "taken_at": "2021-10-08T09:00:00"}
    assert single_error(data(last_test=last_test)) == ("last_test.taken_at", "timezone_required")


@pytest.mark.parametrize("taken_at", ["8/10/2021", "2021-13-01", "yesterday", ""])
def test_rejects_unparseable_test_date(taken_at: str) -> None:
    last_test = {"kind": "pcr", "result": "negative", "taken_at": taken_at}
    assert single_error(data(last_test=last_test)) == ("last_test.taken_at", "date_format")


def test_rejects_timestamp_as_test_date() -> None:
    last_test = {"kind": "pcr", "result": "negative", "taken_at": 1633737600}
    assert single_error(data(last_test=last_test)) == ("last_test.taken_at", "date_type")


def test_rejects_unknown_test_kind() -> None:
    last_test = {"kind": "antibody", "result": "negative", "taken_at": "2021-10-08"}
    assert single_error(data(last_test=last_test)) == ("last_test.kind", "literal_error")


def test_rejects_unknown_field() -> None:
    assert single_error(data(nickname="An")) == ("nickname", "extra_forbidden")


def test_rejects_unknown_field_in_last_test() -> None:
    last_test = {"kind": "pcr", "result": "negative", "taken_at": "2021-10-08", "lab": "X"}
    assert single_error(data(last_test=last_test)) == ("last_test.lab", "extra_forbidden")


def test_rejects_visitor_without_host() -> None:
    assert single_error(data(host_name=...)) == ("host_name", "required_for_visitor")


def test_rejects_visitor_with_blank_purpose() -> None:
    assert single_error(data(purpose="  ")) == ("purpose", "required_for_visitor")


def test_rejects_staff_with_host() -> None:
    assert single_error(data(kind="staff", purpose=...)) == ("host_name", "visitor_only")


def test_rejects_unknown_kind() -> None:
    assert single_error(data(kind="contractor")) == ("kind", "literal_error")


@pytest.mark.parametrize(
    ("site_id", "code"), [(0, "greater_than"), ("1", "int_type"), (True, "int_type")]
)
def test_rejects_bad_site_id(site_id: object, code: str) -> None:
    assert single_error(data(site_id=site_id)) == ("site_id", code)


def test_rejects_unknown_symptom() -> None:
    assert single_error(data(symptoms=["fever", "headache"])) == ("symptoms.1", "literal_error")


@pytest.mark.parametrize("answer", ["no", 0, None])
def test_rejects_non_boolean_contact_answer(answer: object) -> None:
    assert single_error(data(contact_f0=answer)) == ("contact_f0", "bool_type")


def test_rejects_unanswered_question() -> None:
    assert single_error(data(contact_f1=...)) == ("contact_f1", "missing")


@pytest.mark.parametrize(("doses", "code"), [(-1, "greater_than_equal"), (6, "less_than_equal")])
def test_rejects_vaccination_doses_out_of_range(doses: int, code: str) -> None:
    assert single_error(data(vaccination_doses=doses)) == ("vaccination_doses", code)


def test_rejects_non_object_body() -> None:
    assert single_error(["not", "an", "object"]) == ("body", "model_type")


# --- field_errors -------------------------------------------------------------------------


def test_field_errors_shape() -> None:
    raw = data(
        full_name="A" * 121,
        nickname="An",
        last_test={"kind": "pcr", "result": "negative", "taken_at": "2021-10-10"},
    )
    assert errors_of(raw) == [
        {
            "field": "full_name",
            "reason": "Too long (at most 120 characters)",
            "code": "string_too_long",
            "reason_en": "Too long (at most 120 characters)",
            "reason_vi": "Nội dung quá dài (tối đa 120 ký tự)",
        },
        {
            "field": "last_test.taken_at",
            "reason": "The test date is in the future",
            "code": "date_in_future",
            "reason_en": "The test date is in the future",
            "reason_vi": "Ngày xét nghiệm không được sau ngày hôm nay",
        },
        {
            "field": "nickname",
            "reason": "This field is not expected here",
            "code": "extra_forbidden",
            "reason_en": "This field is not expected here",
            "reason_vi": "Trường thông tin không hợp lệ",
        },
    ]


def test_field_errors_in_vietnamese() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        validate(data(full_name="A" * 121, phone="123", unknown=1))
    assert [
        {k: e[k] for k in ("field", "reason", "code")} for e in field_errors(info.value, lang="vi")
    ] == [
        {
            "field": "full_name",
            "reason": "Nội dung quá dài (tối đa 120 ký tự)",
            "code": "string_too_long",
        },
        {
            "field": "phone",
            "reason": "Số điện thoại di động gồm 10 chữ số, bắt đầu bằng 0 (hoặc +84)",
            "code": "phone_format",
        },
        {"field": "unknown", "reason": "Trường thông tin không hợp lệ", "code": "extra_forbidden"},
    ]


# --- any JSON-ish input either validates or raises ValidationError -------------------------

_text = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.dates().map(date.isoformat),
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    st.sampled_from(["0912345678", "+84912345678", "123456789", "visitor", "staff", "pcr"]),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_FIELDS = [*data(), "national_id"]


_PLAUSIBLE = st.sampled_from(
    [
        None, "", "  ", 0, 1, 5, 6, True, False, [], ["fever"], ["Đông Triều"],
        "0912345678", "+84 912 345 678", "001099001234", "staff", "visitor",
        "Nguyễn Văn An", "2021-10-08", "2021-10-09T09:00:00+07:00", "2021-10-10",
        {"kind": "pcr", "result": "positive", "taken_at": "2021-10-01"},
    ]
)  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid declaration with a few fields dropped or replaced."""
    raw = data()
    for key in draw(st.lists(st.sampled_from(["kind", "result", "taken_at", "x"]), max_size=2)):
        raw["last_test"][key] = draw(st.one_of(_PLAUSIBLE, _json))
    for key in draw(st.lists(st.sampled_from(_FIELDS), max_size=3)):
        if draw(st.integers(0, 3)) == 0:
            raw.pop(key, None)
        else:
            raw[key] = draw(st.one_of(_PLAUSIBLE, _json))
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_mutated(), st.dictionaries(_text, _json, max_size=6), _json))
@example(data(last_test={"kind": "pcr", "result": "negative", "taken_at": "0001-01-01T00:00+05"}))
@example(data(last_test={"kind": "pcr", "result": "negative", "taken_at": "9999-12-31T23:59-05"}))
@example(data(full_name="\ud800", phone="\udfff"))
def test_any_input_validates_or_raises_validation_error(raw: Any) -> None:
    for as_json in (False, True):
        try:
            if as_json:
                Declaration.model_validate_json(json.dumps(raw), context={"now": NOW})
            else:
                Declaration.model_validate(raw, context={"now": NOW})
        except pydantic.ValidationError as exc:
            errors = field_errors(exc, lang="vi")
            assert errors
            assert all(
                set(error) == {"field", "reason", "code", "reason_en", "reason_vi"}
                for error in errors
            )
