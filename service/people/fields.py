"""How a person is written down: names, phone numbers and national IDs, as every
form, import and search reads them (so the same person always matches). Pure."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic_core import PydanticCustomError

from service.web.text import Text

NAME_MAX = 120
ORGANISATION_MAX = 200

# Since 2018 every Vietnamese mobile number is 0 + [3|5|7|8|9] + 8 digits.
_MOBILE_RE = re.compile(r"0[35789][0-9]{8}")
_PHONE_SEPARATORS_RE = re.compile(r"[\s.\-()]")
_NATIONAL_ID_RE = re.compile(r"[0-9]{9}|[0-9]{12}")

# Limits apply to the text as sent; the rules are service.web.text's.
Name = Annotated[str, Text(NAME_MAX)]
Organisation = Annotated[str, Text(ORGANISATION_MAX)]

# What normalize_phone and normalize_national_id accept, as JSON Schema patterns (with
# fewer separators than they take: what the schema allows, they must accept).
_SEP = "[ .()-]*"
PHONE_PATTERN = f"^{_SEP}(?:[+]{_SEP}8{_SEP}4|0){_SEP}[35789](?:{_SEP}[0-9]){{8}}{_SEP}$"
NATIONAL_ID_PATTERN = "^ *(?:[0-9] *){9}(?:(?:[0-9] *){3})?$"


def normalize_phone(raw: str) -> str:
    """A Vietnamese mobile number in E.164 (``+84912345678``), or ValueError.

    Accepts ``0912345678`` and ``+84912345678``, with spaces, dots, dashes or parentheses.
    Staff import and search must use this too, so the same person matches.
    """
    compact = _PHONE_SEPARATORS_RE.sub("", raw)
    if compact.startswith("+84"):
        compact = "0" + compact[3:]
    if not _MOBILE_RE.fullmatch(compact):
        raise ValueError(raw)
    return "+84" + compact[1:]


def normalize_national_id(raw: str) -> str:
    """9 digits (CMND) or 12 digits (CCCD), spaces removed; ValueError otherwise."""
    compact = "".join(raw.split())
    if not _NATIONAL_ID_RE.fullmatch(compact):
        raise ValueError(raw)
    return compact


def phone_field(value: str | None) -> str | None:
    """A model's phone field: normalised, or the error `phone_format`."""
    if value is None:
        return None
    try:
        return normalize_phone(value)
    except ValueError:
        raise PydanticCustomError(
            "phone_format",
            "A Vietnamese mobile number has 10 digits starting with 0, or +84 and 9 digits",
        ) from None


def national_id_field(value: str | None) -> str | None:
    """A model's national ID field: normalised, or the error `national_id_format`."""
    if value is None:
        return None
    try:
        return normalize_national_id(value)
    except ValueError:
        raise PydanticCustomError(
            "national_id_format", "A national ID has 9 digits (CMND) or 12 digits (CCCD)"
        ) from None
