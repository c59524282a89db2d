"""The text rules of every text field and text query parameter. Pure.

One place, so a NUL in a gate name is refused like a NUL in a visitor's name:

- a lone surrogate (broken Unicode) is refused: ``invalid_unicode``;
- control, format (bidi overrides, zero-width), private-use and line/paragraph separator
  characters of the Basic Multilingual Plane are refused: ``control_character``. Only
  multi-line text (reasons and notes a guard or admin writes) may hold line breaks
  (``\\n``; ``\\r\\n`` and ``\\r`` become ``\\n``). Tabs are refused everywhere: a
  field is typed, not pasted from a spreadsheet. Characters beyond the BMP (emoji,
  flags with their tag characters) are allowed;
- the text is normalised to NFC (decomposed Vietnamese from some keyboards is
  recomposed), leading and trailing whitespace is removed and inner runs become one
  space (per line, for multi-line text);
- the maximum length counts the normalised text, as it is stored (the columns check
  it): decomposed Vietnamese counts as composed. NFC never lengthens a text except for
  a few characters it expands (U+0958 and the like), so a text the schema's maxLength
  allows fits. The minimum counts visible (non-space) characters as sent, so three
  spaces are not a reason.

The JSON Schema of each text type states exactly these rules (``maxLength`` and a
``pattern``), so a request the OpenAPI document allows is never refused for its text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

# Categories Cc, Cf, Co, Zl and Zp within the BMP, without the surrogates (Cs): what
# `unicodedata.category` says for Unicode 14 (a test compares them with the running
# Python). As ranges, so the same table is the validator's regex and the schema's pattern.
REJECTED_BMP_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F),
    (0x007F, 0x009F),
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xE000, 0xF8FF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
)
# Whitespace that is not rejected: what str.split() removes.
SPACES = " \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_LINE_BREAKS = "\n\r"
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


def _char_class(ranges: tuple[tuple[int, int], ...], allowed: str = "") -> str:
    """The ranges less the `allowed` characters, as \\uXXXX escapes (ECMA-262 and
    Python's re read them alike)."""
    keep = {ord(c) for c in allowed}
    parts: list[str] = []
    for low, high in ranges:
        start = None
        for cp in range(low, high + 2):
            inside = cp <= high and cp not in keep
            if inside and start is None:
                start = cp
            elif not inside and start is not None:
                end = cp - 1
                parts.append(f"\\u{start:04x}" + (f"-\\u{end:04x}" if end > start else ""))
                start = None
    return "".join(parts)


_SINGLE_LINE_REJECTED = _char_class(REJECTED_BMP_RANGES)
_MULTI_LINE_REJECTED = _char_class(REJECTED_BMP_RANGES, _LINE_BREAKS)
_REJECTED_RE = {
    False: re.compile(f"[{_SINGLE_LINE_REJECTED}]"),
    True: re.compile(f"[{_MULTI_LINE_REJECTED}]"),
}


def text_pattern(*, min_visible: int, multiline: bool) -> str:
    """The JSON Schema pattern of a text field: no rejected character and at least
    `min_visible` characters that are not whitespace."""
    rejected = _MULTI_LINE_REJECTED if multiline else _SINGLE_LINE_REJECTED
    spaces = SPACES + ("\\n\\r" if multiline else "")
    anything = f"[^{rejected}]*"
    visible = f"[^{rejected}{spaces}]"
    return "^" + anything + (visible + anything) * min_visible + "$"


def _visible_length(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def _collapse(text: str, multiline: bool) -> str:
    if not multiline:
        return " ".join(text.split())
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(" ".join(line.split()) for line in lines).strip("\n")


def _refuse_characters(value: str, rejected: re.Pattern[str]) -> None:
    if _SURROGATE_RE.search(value):
        raise PydanticCustomError(
            "invalid_unicode", "Text contains broken Unicode (a lone surrogate)"
        )
    found = rejected.search(value)
    if found:
        raise PydanticCustomError(
            "control_character",
            "Text contains a control or invisible character (U+{codepoint})",
            {"codepoint": f"{ord(found.group()):04X}"},
        )


def check_text(value: str, *, max_length: int, multiline: bool = False) -> str:
    """`value` with the rules applied, or PydanticCustomError (invalid_unicode,
    control_character, string_too_long). The minimum is Text's."""
    _refuse_characters(value, _REJECTED_RE[multiline])
    text = _collapse(unicodedata.normalize("NFC", value), multiline)
    if len(text) > max_length:
        raise PydanticCustomError(
            "string_too_long",
            "String should have at most {max_length} characters",
            {"max_length": max_length},
        )
    return text


@dataclass(frozen=True)
class Text:
    """A text field's rules, as pydantic metadata: ``Annotated[str, Text(120)]``."""

    max_length: int
    min_visible: int = 1
    multiline: bool = False

    def apply(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the strict str validator reports the type error
        text = check_text(value, max_length=self.max_length, multiline=self.multiline)
        if _visible_length(value) < self.min_visible:  # as sent, as the schema counts
            raise PydanticCustomError(
                "string_too_short",
                "String should have at least {min_length} characters",
                {"min_length": self.min_visible},
            )
        return text

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "string",
            "maxLength": self.max_length,
            "pattern": text_pattern(min_visible=self.min_visible, multiline=self.multiline),
        }
        if self.min_visible:
            schema["minLength"] = self.min_visible
        return schema

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            self.apply, core_schema.str_schema(strict=True)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return self.json_schema()


@dataclass(frozen=True)
class Secret:
    """A password's rules: kept as typed (no normalising, no trimming), but no control
    characters or broken Unicode, which no keyboard types and argon2 cannot hash."""

    min_length: int
    max_length: int

    def apply(self, value: Any) -> Any:
        if isinstance(value, str):
            _refuse_characters(value, _CONTROL_RE)
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            self.apply,
            core_schema.str_schema(
                strict=True, min_length=self.min_length, max_length=self.max_length
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {
            "type": "string",
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
        }


def blank_to_none(value: Any) -> Any:
    """An optional field left blank ("" or only spaces, as HTML forms send it) is None."""
    if isinstance(value, str) and not value.strip():
        return None
    return value
