"""The declaration web form (/declare), its result page and the printable pass.

Vietnamese by default, English with ``?lang=en``. Plain HTML forms, no scripts: the
form posts application/x-www-form-urlencoded and is shown again with per-field errors
and the values kept. Every value is escaped (``service.web.pages``).
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from service.declarations.filing import (
    MAX_DECLARATION_BYTES,
    PASS_SQL,
    UUID_PATTERN,
    DeclarationFieldError,
    Outcome,
    file_declaration,
    parse_declaration,
    pass_urls,
)
from service.declarations.model import SYMPTOMS, VACCINATION_DOSES_MAX, Declaration
from service.passes.keys import KEYS_KEY
from service.passes.links import PASS_LINKS_KEY
from service.passes.state import pass_state
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import public
from service.web.field_errors import field_error
from service.web.openapi import Q_LANG, documented, q_id
from service.web.pages import STATIC_DIR, Markup, esc, join, page, render, tag, void
from service.web.public_limit import limit_public
from service.web.validation import invalid

Lang = Literal["vi", "en"]
SITES_SQL = "SELECT id, name FROM sites ORDER BY name, id LIMIT 500"
MAX_FORM_FIELDS = 100
REFRESH_S = 20  # how often a result waiting for review asks again (no script: a meta refresh)

# Every text of the pages: key -> (Vietnamese, English).
T: dict[str, tuple[str, str]] = {
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
}


def t(key: str, lang: Lang) -> str:
    vi, en = T[key]
    return vi if lang == "vi" else en


def lang_of(value: str | None) -> Lang:
    return "en" if value == "en" else "vi"


def _switch(lang: Lang, params: Mapping[str, str]) -> Markup:
    other = "en" if lang == "vi" else "vi"
    query = urlencode({**{k: v for k, v in params.items() if k != "lang" and v}, "lang": other})
    return tag("a", t("switch", lang), href=f"/declare?{query}", hreflang=other)


# --- the form ------------------------------------------------------------------------

Values = dict[str, Any]  # field name -> the text (or list of texts) as posted
Errors = dict[str, list[str]]  # form field name -> messages


def _errors_html(name: str, errors: Errors) -> Markup:
    return join(
        [tag("p", message, class_="error", id=f"{name}-error") for message in errors.get(name, [])]
    )


def _field(
    name: str, label: Markup | str, control: Markup, errors: Errors, hint: str = ""
) -> Markup:
    parts = [tag("label", label, for_=name), control]
    if hint:
        parts.append(tag("p", hint, class_="hint"))
    parts.append(_errors_html(name, errors))
    return tag("div", join(parts), class_="field invalid" if name in errors else "field")


def _group(name: str, label: str, choices: Markup, errors: Errors, hint: str = "") -> Markup:
    parts = [tag("span", label, class_="label", id=f"{name}-label"), choices]
    if hint:
        parts.append(tag("p", hint, class_="hint"))
    parts.append(_errors_html(name, errors))
    return tag(
        "div",
        join(parts),
        class_="field choices invalid" if name in errors else "field choices",
        role="group",
        aria_labelledby=f"{name}-label",
    )


def _text_input(
    name: str, values: Values, errors: Errors, *, kind: str = "text", **attrs: object
) -> Markup:
    return void(
        "input",
        type=kind,
        id=name,
        name=name,
        value=_first(values.get(name)),
        aria_invalid="true" if name in errors else None,
        aria_describedby=f"{name}-error" if name in errors else None,
        **attrs,
    )


def _radios(name: str, options: list[tuple[str, str]], values: Values) -> Markup:
    chosen = _first(values.get(name))
    return join(
        [
            tag(
                "label",
                join(
                    [
                        void("input", type="radio", name=name, value=v, checked=chosen == v),
                        esc(text),
                    ]
                ),
            )
            for v, text in options
        ]
    )


def _select(name: str, options: list[tuple[str, str]], values: Values, errors: Errors) -> Markup:
    chosen = _first(values.get(name))
    return tag(
        "select",
        join([tag("option", text, value=v, selected=chosen == v) for v, text in options]),
        id=name,
        name=name,
        aria_invalid="true" if name in errors else None,
    )


def _first(value: Any) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def form_html(
    lang: Lang,
    sites: list[tuple[int, str]],
    values: Values,
    errors: Errors,
    summary: list[str],
) -> Markup:
    yes_no = [("yes", t("yes", lang)), ("no", t("no", lang))]
    summary_html = Markup("")
    if summary:
        summary_html = tag(
            "div", join([tag("p", line) for line in summary]), class_="summary", role="alert"
        )
    fields: dict[str, Markup] = {
        "site_field": _field(
            "site_id",
            t("site_id", lang),
            _select(
                "site_id",
                [("", t("choose", lang))] + [(str(i), name) for i, name in sites],
                values,
                errors,
            ),
            errors,
            hint="" if sites else t("no_sites", lang),
        ),
        "kind_field": _group(
            "kind",
            t("kind", lang),
            _radios(
                "kind",
                [("staff", t("kind_staff", lang)), ("visitor", t("kind_visitor", lang))],
                values,
            ),
            errors,
        ),
        "full_name_field": _field(
            "full_name",
            t("full_name", lang),
            _text_input("full_name", values, errors, autocomplete="name", maxlength=120),
            errors,
        ),
        "phone_field": _field(
            "phone",
            t("phone", lang),
            _text_input("phone", values, errors, kind="tel", autocomplete="tel", inputmode="tel"),
            errors,
            hint=t("id_hint", lang),
        ),
        "national_id_field": _field(
            "national_id",
            t("national_id", lang),
            _text_input("national_id", values, errors, inputmode="numeric", maxlength=20),
            errors,
        ),
        "organisation_field": _field(
            "organisation",
            t("organisation", lang),
            _text_input("organisation", values, errors, autocomplete="organization", maxlength=200),
            errors,
        ),
        "host_name_field": _field(
            "host_name",
            t("host_name", lang),
            _text_input("host_name", values, errors, maxlength=120),
            errors,
        ),
        "purpose_field": _field(
            "purpose",
            t("purpose", lang),
            _text_input("purpose", values, errors, maxlength=300),
            errors,
        ),
        "symptoms_field": _group("symptoms", t("symptoms", lang), _symptoms(lang, values), errors),
        "contact_f0_field": _group(
            "contact_f0", t("contact_f0", lang), _radios("contact_f0", yes_no, values), errors
        ),
        "contact_f1_field": _group(
            "contact_f1", t("contact_f1", lang), _radios("contact_f1", yes_no, values), errors
        ),
        "travel_areas_field": _field(
            "travel_areas",
            t("travel_areas", lang),
            tag(
                "textarea",
                _first(values.get("travel_areas")),
                id="travel_areas",
                name="travel_areas",
                rows=3,
            ),
            errors,
            hint=t("travel_hint", lang),
        ),
        "vaccination_doses_field": _field(
            "vaccination_doses",
            t("vaccination_doses", lang),
            _select(
                "vaccination_doses",
                [("", t("choose", lang))]
                + [(str(n), str(n)) for n in range(VACCINATION_DOSES_MAX + 1)],
                values,
                errors,
            ),
            errors,
        ),
        "last_test_kind_field": _field(
            "last_test_kind",
            t("last_test_kind", lang),
            _select(
                "last_test_kind",
                [
                    ("none", t("test_none", lang)),
                    ("rapid_antigen", t("rapid_antigen", lang)),
                    ("pcr", t("pcr", lang)),
                ],
                values,
                errors,
            ),
            errors,
        ),
        "last_test_result_field": _group(
            "last_test_result",
            t("last_test_result", lang),
            _radios(
                "last_test_result",
                [("negative", t("negative", lang)), ("positive", t("positive", lang))],
                values,
            ),
            errors,
        ),
        "last_test_taken_at_field": _field(
            "last_test_taken_at",
            t("last_test_taken_at", lang),
            _text_input("last_test_taken_at", values, errors, kind="date"),
            errors,
        ),
    }
    texts = {
        key: t(key, lang)
        for key in (
            "intro",
            "legend_who",
            "legend_visitor",
            "visitor_hint",
            "legend_health",
            "legend_test",
            "pledge",
            "submit",
        )
    }
    return Markup(
        render(
            "declare.html",
            heading=t("title", lang),
            lang_switch=_switch(
                lang,
                {"site": _first(values.get("site_id")), "redeclare": _redeclare_key(values)},
            ),
            lang=lang,
            redeclare=_redeclare_input(values),
            summary=summary_html,
            **texts,
            **fields,
        )
    )


def _redeclare_key(values: Values) -> str:
    return _first(values.get("redeclare_key"))


def _redeclare_input(values: Values) -> Markup:
    """The re-declare key of the link the form was opened with, posted back with it."""
    key = _redeclare_key(values)
    if not key:
        return Markup("")
    return void("input", type="hidden", name="redeclare_key", value=key)


def _symptoms(lang: Lang, values: Values) -> Markup:
    chosen = values.get("symptoms") or []
    options = [(s, t(s, lang)) for s in sorted(SYMPTOMS)] + [("none", t("symptom_none", lang))]
    return join(
        [
            tag(
                "label",
                join(
                    [
                        void(
                            "input", type="checkbox", name="symptoms", value=v, checked=v in chosen
                        ),
                        esc(text),
                    ]
                ),
            )
            for v, text in options
        ]
    )


# --- from the posted form to a declaration ----------------------------------------------

_FORM_TEXT_FIELDS = (
    "kind",
    "full_name",
    "phone",
    "national_id",
    "organisation",
    "host_name",
    "purpose",
    "redeclare_key",
)
_BOOLS = {"yes": True, "no": False}


def form_values(pairs: list[tuple[str, str]]) -> Values:
    values: Values = {}
    for key, value in pairs:
        if key == "symptoms":
            values.setdefault("symptoms", []).append(value)
        elif key not in values:
            values[key] = value
    return values


def declaration_data(values: Values) -> dict[str, Any]:
    """The form's texts as the declaration model's input; a skipped answer stays missing."""
    data: dict[str, Any] = {}
    site = _first(values.get("site_id")).strip()
    if site:
        data["site_id"] = int(site) if site.isdigit() and len(site) <= 18 else site
    for name in _FORM_TEXT_FIELDS:
        if name in values:
            data[name] = values[name]
    if data.get("kind") == "":
        del data["kind"]
    symptoms = values.get("symptoms")
    if symptoms:  # "none" with a symptom as well is form_errors' to report
        data["symptoms"] = [s for s in symptoms if s != "none"]
    for name in ("contact_f0", "contact_f1"):
        answer = values.get(name)
        if answer:
            data[name] = _BOOLS.get(answer, answer)
    data["travel_areas"] = [
        line for line in _first(values.get("travel_areas")).splitlines() if line.strip()
    ]
    doses = _first(values.get("vaccination_doses")).strip()
    if doses:
        data["vaccination_doses"] = int(doses) if doses.isdigit() and len(doses) < 4 else doses
    test_kind = _first(values.get("last_test_kind")).strip()
    if test_kind and test_kind != "none":
        test: dict[str, Any] = {"kind": test_kind}
        for part in ("result", "taken_at"):
            value = _first(values.get(f"last_test_{part}")).strip()
            if value:
                test[part] = value
        data["last_test"] = test
    return data


def form_errors(values: Values, lang: Lang) -> list[dict[str, str]]:
    """What only the form can get wrong: "None of these" ticked with a symptom."""
    chosen = values.get("symptoms") or []
    if "none" in chosen and len(set(chosen)) > 1:
        return [field_error("symptoms", "none_with_symptoms", lang=lang)]
    return []


def parse_form(values: Values, *, now: datetime, lang: Lang) -> Declaration:
    """The declaration of a posted form, or the 422 with every field error at once."""
    conflicts = form_errors(values, lang)
    try:
        decl = parse_declaration(declaration_data(values), now=now, lang=lang)
    except ApiError as e:
        if e.code != "validation_failed":
            raise
        raise invalid(conflicts + e.details["fields"]) from None
    if conflicts:
        raise invalid(conflicts)
    return decl


_FIELD_ALIASES = {"last_test": "last_test_kind"}


def form_field(api_field: str) -> str:
    """Where a field error is shown: "last_test.taken_at" -> last_test_taken_at."""
    if api_field.startswith("last_test."):
        return "last_test_" + api_field.split(".")[1]
    head = api_field.split(".")[0]
    return _FIELD_ALIASES.get(head, head)


def errors_by_field(fields: list[dict[str, str]]) -> Errors:
    out: Errors = {}
    for f in fields:
        out.setdefault(form_field(f["field"]), []).append(f["reason"])
    return out


# --- handlers ------------------------------------------------------------------------


async def _sites(request: web.Request) -> list[tuple[int, str]]:
    async with request.app[DB_KEY].connection() as conn:
        return [(r["id"], r["name"]) for r in await conn.fetch(SITES_SQL)]


@public
@documented(query={"lang": Q_LANG, "site": q_id()})
async def declare_form(request: web.Request) -> web.Response:
    limit_public(request)
    lang = lang_of(request.query.get("lang"))
    sites = await _sites(request)
    site = request.query.get("site", "")
    if not site and len(sites) == 1:
        site = str(sites[0][0])
    values: Values = {
        "site_id": site,
        "last_test_kind": "none",
        "redeclare_key": request.query.get("redeclare", ""),
    }
    body = form_html(lang, sites, values, {}, [])
    return page(lang=lang, title=t("title", lang), body=body)


async def _read_form(request: web.Request) -> list[tuple[str, str]]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise ApiError(
            415, "unsupported_media_type", "Send the form as application/x-www-form-urlencoded."
        )
    if request.content_length is not None and request.content_length > MAX_DECLARATION_BYTES:
        raise ApiError(413, "payload_too_large", "The form is too large.")
    raw = await request.read()
    if len(raw) > MAX_DECLARATION_BYTES:
        raise ApiError(413, "payload_too_large", "The form is too large.")
    try:
        # Bad UTF-8 becomes lone surrogates, which the text rules report per field.
        return parse_qsl(
            raw.decode("utf-8", "surrogateescape"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="surrogateescape",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:
        raise ApiError(413, "payload_too_large", "The form has too many fields.") from None


@public
async def declare_submit(request: web.Request) -> web.Response:
    limit_public(request)
    pairs = await _read_form(request)
    values = form_values(pairs)
    lang = lang_of(_first(values.get("lang")) or request.query.get("lang"))
    now = datetime.now(UTC)
    try:
        decl = parse_form(values, now=now, lang=lang)
        async with request.app[DB_KEY].connection() as conn:
            outcome = await file_declaration(conn, request.app[KEYS_KEY], decl, now=now)
    except DeclarationFieldError as e:
        return await _form_again(request, lang, values, errors_by_field([e.as_field(lang)]))
    except ApiError as e:
        if e.code == "validation_failed":
            return await _form_again(request, lang, values, errors_by_field(e.details["fields"]))
        if e.code == "signing_key_unavailable":
            return message_page(lang, t("unavailable", lang), status=503)
        raise
    return result_page(request, lang, outcome)


def result_page(request: web.Request, lang: Lang, outcome: Outcome) -> web.Response:
    """A result; one in review reloads itself as the declarer's own result page
    (GET, service.declarations.result_page), which shows the pass once approved."""
    head = Markup("")
    if outcome.status == "review" and outcome.valid_until > datetime.now(UTC):
        url = esc(follow_url(outcome, lang))
        head = Markup(f'<meta http-equiv="refresh" content="{REFRESH_S};url={url}">')
    body = result_html(request, lang, outcome)
    return page(lang=lang, title=t("result_title", lang), body=body, head=head)


def follow_url(outcome: Outcome, lang: Lang) -> str:
    return "/declare/result?" + urlencode({"key": outcome.redeclare_key, "lang": lang})


async def _form_again(
    request: web.Request, lang: Lang, values: Values, errors: Errors
) -> web.Response:
    sites = await _sites(request)
    body = form_html(lang, sites, values, errors, [t("fix_errors", lang)])
    return page(lang=lang, title=t("title", lang), body=body, status=422)


def _local(value: datetime, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%H:%M %d/%m/%Y")


def result_html(request: web.Request, lang: Lang, outcome: Outcome) -> Markup:
    key = "message_vi" if lang == "vi" else "message_en"
    reasons = Markup("")
    if outcome.reasons:
        reasons = join(
            [
                tag("h2", t("reasons", lang)),
                tag("ul", join([tag("li", r[key]) for r in outcome.reasons]), class_="reasons"),
            ]
        )
    pass_block = Markup("")
    if outcome.pass_ is not None:
        urls = pass_urls(request.app, outcome.pass_.id)
        pass_block = Markup(
            render(
                "pass.html",
                heading=t("pass_heading", lang),
                png_url=urls["qr_png_url"],
                alt=t("pass_alt", lang),
                hint=t("pass_hint", lang),
                download_name=f"pass-{outcome.pass_.id}.png",
                download=t("download", lang),
                print_url=_with_lang(urls["print_url"], lang),
                print=t("print", lang),
                phone_url=_with_lang(urls["phone_url"], lang),
                phone=t("phone_pass", lang),
                phone_hint=t("phone_pass_hint", lang),
            )
        )
    validity, no_pass = _validity_html(lang, outcome)
    follow = Markup("")
    if outcome.status == "review":
        follow = tag(
            "p",
            join(
                [
                    tag("a", t("follow", lang), href=follow_url(outcome, lang), class_="follow"),
                    tag("span", t("follow_hint", lang), class_="hint"),
                ],
                " ",
            ),
            class_="follow",
        )
    return Markup(
        render(
            "result.html",
            heading=t("result_title", lang),
            lang_switch=Markup(""),
            status=outcome.status,
            verdict=t(outcome.status, lang),
            label_name=t("label_name", lang),
            full_name=outcome.full_name,
            label_site=t("label_site", lang),
            site_name=outcome.site_name,
            validity=validity,
            no_pass=no_pass,
            follow=follow,
            reasons=reasons,
            pass_block=pass_block,
            again_url="/declare?"
            + urlencode(
                {"site": outcome.site_id, "lang": lang, "redeclare": outcome.redeclare_key}
            ),
            again=t("again", lang),
            again_hint=t("again_hint", lang),
        )
    )


def _with_lang(url: str, lang: Lang) -> str:
    return f"{url}&{urlencode({'lang': lang})}"


def _validity_html(lang: Lang, outcome: Outcome) -> tuple[Markup, Markup]:
    """What the time on a result means, and why there is no pass: only a cleared result
    is valid until a time; one in review may be approved until then; a rejected one has
    no time at all."""
    until = _local(outcome.valid_until, outcome.site_timezone)
    if outcome.status == "cleared":
        term = join([tag("dt", t("label_valid_until", lang)), tag("dd", until, class_="valid")])
        return term, Markup("")
    note = tag("p", t(f"no_pass_{outcome.status}", lang), class_="no-pass")
    if outcome.status == "review":
        term = join(
            [tag("dt", t("label_review_until", lang)), tag("dd", until, class_="review-until")]
        )
        return term, note
    return Markup(""), note


def message_page(lang: Lang, message: str, *, status: int) -> web.Response:
    body = Markup(
        render(
            "message.html",
            heading=t("title", lang),
            message=message,
            back_url=f"/declare?lang={lang}",
            back=t("back", lang),
        )
    )
    return page(lang=lang, title=t("title", lang), body=body, status=status)


@public
@documented(query={"lang": Q_LANG})
async def print_pass(request: web.Request) -> web.Response:
    limit_public(request)
    lang = lang_of(request.query.get("lang"))
    pass_id = uuid.UUID(request.match_info["pass_id"])
    row = None
    # The pass id is in every photo of the QR: only the link's key shows the holder.
    if request.app[PASS_LINKS_KEY].valid(pass_id, request.query.get("key")):
        async with request.app[DB_KEY].connection() as conn:
            row = await conn.fetchrow(PASS_SQL, pass_id)
    if row is None:
        return message_page(lang, t("not_found", lang), status=404)
    state = pass_state(row, datetime.now(UTC))
    urls = pass_urls(request.app, pass_id)
    if state in ("revoked", "expired"):
        qr = tag("p", t(state, lang), class_="revoked")
    else:
        qr = void("img", class_="qr", src=urls["qr_svg_url"], alt=t("pass_alt", lang))
    body = Markup(
        render(
            "print.html",
            heading=t("print_title", lang),
            full_name=row["full_name"],
            site_name=row["site_name"],
            qr=qr,
            label_valid_from=t("label_valid_from", lang),
            valid_from=_local(row["not_before"], row["site_timezone"]),
            label_valid_until=t("label_valid_until", lang),
            valid_until=_local(row["not_after"], row["site_timezone"]),
            label_pass_id=t("label_pass_id", lang),
            pass_id=str(pass_id),
            hint=t("print_hint", lang),
            png_url=urls["qr_png_url"],
            download_name=f"pass-{pass_id}.png",
            download=t("download", lang),
        )
    )
    return page(lang=lang, title=t("print_title", lang), body=body)


_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
_STATIC_NAME = re.compile(r"[a-z0-9-]{1,40}\.(css|js)")


@functools.cache
def _static_bytes(name: str) -> bytes | None:
    path = STATIC_DIR / name
    if not _STATIC_NAME.fullmatch(name) or not path.is_file():
        return None
    return path.read_bytes()


@functools.cache
def _static_etag(name: str) -> str:
    return '"' + hashlib.sha256(_static_bytes(name) or b"").hexdigest()[:16] + '"'


@public
async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["filename"]
    body = _static_bytes(name)
    if body is None:
        raise ApiError(404, "not_found", "No such file.")
    # A page names its files with their hash (?v=): kept an hour. A console module
    # imports the others without one, so those are checked again (304 when unchanged)
    # and a new version never runs beside an old one.
    etag = _static_etag(name)
    headers = {
        "Cache-Control": "public, max-age=3600" if "v" in request.query else "no-cache",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=body,
        content_type=_STATIC_TYPES[name[name.rindex(".") :]],
        charset="utf-8",
        headers=headers,
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/declare", declare_form, name="declare_form"),
        web.post("/declare", declare_submit, name="declare_submit"),
        web.get("/passes/{pass_id:" + UUID_PATTERN + "}/print", print_pass, name="pass_print"),
        web.get(r"/static/{filename:[a-z0-9-]{1,40}\.(?:css|js)}", static_file, name="static"),
    ]
