"""From the posted /declare form to a declaration, or to the errors the form shows. Pure.

The form posts texts: "yes"/"no" for the contact questions, one line per place visited,
"none" among the symptoms, a test kind of "none", and a visitor's expected departure
as a time today ("17:30") or a date and time ("2026-12-07 17:30"), both in the site's
time. Everything else the declaration model checks, as it does for the API.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from service.declarations.filing import parse_declaration
from service.declarations.model import CLOCK_SKEW, Declaration
from service.declarations.words import Lang
from service.platform.errors import ApiError
from service.web.field_errors import field_error
from service.web.validation import invalid

Values = dict[str, Any]  # field name -> the text (or list of texts) as posted
Errors = dict[str, list[str]]  # form field name -> messages

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
_TIME_OF_DAY = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_LOCAL_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?")
MAX_DEPARTURE_CHARS = 25


def first(value: Any) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def form_values(pairs: list[tuple[str, str]]) -> Values:
    values: Values = {}
    for key, value in pairs:
        if key == "symptoms":
            values.setdefault("symptoms", []).append(value)
        elif key not in values:
            values[key] = value
    return values


def departure(text: str, zone: ZoneInfo, now: datetime) -> datetime | str:
    """The expected departure as an aware time, or the code of what is wrong with it."""
    text = text.strip()
    when: datetime | None = None
    if len(text) <= MAX_DEPARTURE_CHARS:
        if match := _TIME_OF_DAY.fullmatch(text):
            at = time(int(match[1]), int(match[2]))
            when = datetime.combine(now.astimezone(zone).date(), at, tzinfo=zone)
        else:
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                when = None
            if when is not None and when.tzinfo is None:
                when = when.replace(tzinfo=zone) if _LOCAL_DATETIME.fullmatch(text) else None
    if when is None:
        return "departure_format"
    if when < now - CLOCK_SKEW:
        return "departure_past"
    return when


def declaration_data(values: Values, departs: datetime | None = None) -> dict[str, Any]:
    """The form's texts as the declaration model's input; a skipped answer stays missing."""
    data: dict[str, Any] = {}
    site = first(values.get("site_id")).strip()
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
        line for line in first(values.get("travel_areas")).splitlines() if line.strip()
    ]
    doses = first(values.get("vaccination_doses")).strip()
    if doses:
        data["vaccination_doses"] = int(doses) if doses.isdigit() and len(doses) < 4 else doses
    test_kind = first(values.get("last_test_kind")).strip()
    if test_kind and test_kind != "none":
        test: dict[str, Any] = {"kind": test_kind}
        for part in ("result", "taken_at"):
            value = first(values.get(f"last_test_{part}")).strip()
            if value:
                test[part] = value
        data["last_test"] = test
    if departs is not None:
        data["expected_departure"] = departs.isoformat()
    return data


def parse_form(values: Values, *, now: datetime, lang: Lang, zone: ZoneInfo) -> Declaration:
    """The declaration of a posted form, or the 422 with every field error at once.

    What only the form can get wrong is reported beside the model's errors: "None of
    these" ticked with a symptom, an expected departure the form cannot read."""
    conflicts: list[dict[str, str]] = []
    chosen = values.get("symptoms") or []
    if "none" in chosen and len(set(chosen)) > 1:
        conflicts.append(field_error("symptoms", "none_with_symptoms", lang=lang))
    departs = None
    text = first(values.get("expected_departure"))
    if text.strip():
        read = departure(text, zone, now)
        if isinstance(read, str):
            conflicts.append(field_error("expected_departure", read, lang=lang))
        else:
            departs = read
    try:
        decl = parse_declaration(declaration_data(values, departs), now=now, lang=lang)
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
