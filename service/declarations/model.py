"""Input model of a health declaration (khai báo y tế). Pure: no I/O.

Names, organisation, purpose and travel areas follow the text rules of service.web.text
(NFC, no control or invisible characters, whitespace collapsed; phone and national ID have
their own formats, below); an optional field left blank ("" or only spaces, as HTML forms
send it) is None.

HTML such as ``<b>`` in a name is kept as plain text: pages and exports must escape it.

Answers (symptoms, contacts, travel, doses) have no defaults: a declaration that skips a
question is rejected rather than read as "no".

Checks against the clock ("test taken in the future") use ``context={"now": aware_datetime}``
when given to ``model_validate``, else the current time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo

import pydantic
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from service.people.fields import (
    NATIONAL_ID_PATTERN,
    PHONE_PATTERN,
    Name,
    Organisation,
    national_id_field,
    phone_field,
)
from service.web.text import Secret, Text, blank_to_none

DeclarantKind = Literal["staff", "visitor"]
Symptom = Literal[
    "fever", "cough", "shortness_of_breath", "loss_of_taste_or_smell", "sore_throat", "fatigue"
]
SYMPTOMS: frozenset[str] = frozenset(get_args(Symptom))
TestKind = Literal["rapid_antigen", "pcr"]
TestOutcome = Literal["negative", "positive"]

PURPOSE_MAX = 300
AREA_MAX = 100
TRAVEL_AREAS_MAX = 30
VACCINATION_DOSES_MAX = 5
MAX_TEST_AGE = timedelta(days=60)
# A datetime a few minutes ahead of the server is a phone with a fast clock, not a lie.
CLOCK_SKEW = timedelta(minutes=5)
# Dates without a time are read as calendar days in Vietnam.
DECLARATION_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


# Limits apply to the text as sent; the rules are service.web.text's.
Purpose = Annotated[str, Text(PURPOSE_MAX)]
Area = Annotated[str, Text(AREA_MAX)]
RedeclareKey = Annotated[str, Secret(1, 100)]


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Whole:
    """A strict int within bounds (``Annotated[int, Whole(ge=0)]``): never True or "2",
    but 2.0 is 2, as JSON Schema counts it."""

    gt: int | None = None
    ge: int | None = None
    le: int | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            _integral, core_schema.int_schema(strict=True, gt=self.gt, ge=self.ge, le=self.le)
        )


# The rules across fields, stated for the OpenAPI document: a phone or a national ID;
# host and purpose for a visitor, neither for staff.
_CROSS_FIELD_SCHEMA: dict[str, Any] = {
    "allOf": [
        {
            "anyOf": [
                {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
                {"required": ["national_id"], "properties": {"national_id": {"type": "string"}}},
            ]
        },
        {
            "anyOf": [
                {
                    "required": ["kind", "host_name", "purpose"],
                    "properties": {
                        "kind": {"const": "visitor"},
                        "host_name": {"type": "string"},
                        "purpose": {"type": "string"},
                    },
                },
                {
                    "required": ["kind"],
                    "properties": {
                        "kind": {"const": "staff"},
                        "host_name": {"type": "null"},
                        "purpose": {"type": "null"},
                    },
                },
            ]
        },
    ]
}


def _now(info: ValidationInfo) -> datetime:
    context = info.context
    if isinstance(context, dict) and isinstance(context.get("now"), datetime):
        now: datetime = context["now"]
        if now.tzinfo is None:
            raise TypeError("context['now'] must be timezone-aware")
        return now
    return datetime.now(UTC)


def _parse_when(value: Any) -> date | datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise PydanticCustomError(
                "date_format",
                "Expected a date (2021-10-08) or a date and time with an offset "
                "(2021-10-08T09:30:00+07:00)",
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError(
                "timezone_required", "A time needs its UTC offset, e.g. +07:00"
            )
        return value
    if isinstance(value, date):
        return value
    raise PydanticCustomError(
        "date_type", "Expected a date (2021-10-08) or a date and time with an offset"
    )


TakenAt = Annotated[
    date | datetime,
    pydantic.PlainValidator(_parse_when),
    pydantic.PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]


class LastTest(BaseModel):
    """The most recent COVID-19 test the person declares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TestKind
    result: TestOutcome
    taken_at: TakenAt

    @field_validator("taken_at")
    @classmethod
    def _plausible(cls, value: date | datetime, info: ValidationInfo) -> date | datetime:
        now = _now(info)
        if isinstance(value, datetime):
            future = value > now + CLOCK_SKEW
            too_old = value < now - MAX_TEST_AGE
        else:
            today = now.astimezone(DECLARATION_TZ).date()
            future = value > today
            too_old = value < today - MAX_TEST_AGE
        if future:
            raise PydanticCustomError("date_in_future", "The test date is in the future")
        if too_old:
            raise PydanticCustomError(
                "date_too_old",
                "The test is more than {days} days old",
                {"days": MAX_TEST_AGE.days},
            )
        return value

    def taken_on(self, tz: ZoneInfo) -> date:
        """The calendar day of the test in ``tz`` (a bare date is taken as is)."""
        if isinstance(self.taken_at, datetime):
            return self.taken_at.astimezone(tz).date()
        return self.taken_at


class Declaration(BaseModel):
    """One health declaration as submitted; ``site_id`` names the office it is for."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_CROSS_FIELD_SCHEMA)

    site_id: Annotated[int, Whole(gt=0)]
    kind: DeclarantKind
    full_name: Name
    national_id: Annotated[str | None, BeforeValidator(blank_to_none)] = Field(
        default=None,
        validate_default=True,
        strict=True,
        json_schema_extra={"pattern": NATIONAL_ID_PATTERN},
    )
    phone: Annotated[str | None, BeforeValidator(blank_to_none)] = Field(
        default=None,
        validate_default=True,
        strict=True,
        json_schema_extra={"pattern": PHONE_PATTERN},
    )
    organisation: Annotated[Organisation | None, BeforeValidator(blank_to_none)] = None
    host_name: Annotated[Name | None, BeforeValidator(blank_to_none)] = Field(
        default=None, validate_default=True
    )
    purpose: Annotated[Purpose | None, BeforeValidator(blank_to_none)] = Field(
        default=None, validate_default=True
    )
    symptoms: frozenset[Symptom]
    contact_f0: Annotated[bool, Field(strict=True)]
    contact_f1: Annotated[bool, Field(strict=True)]
    travel_areas: Annotated[list[Area], Field(max_length=TRAVEL_AREAS_MAX)]
    vaccination_doses: Annotated[int, Whole(ge=0, le=VACCINATION_DOSES_MAX)]
    last_test: LastTest | None = None
    # The key behind the "Declare again" link of an earlier result: proof that this
    # declaration comes from that person (service.declarations.identity_proof). Never
    # stored as answered.
    # A key as issued: never normalised, but held to the text rules like every field.
    redeclare_key: Annotated[RedeclareKey | None, BeforeValidator(blank_to_none)] = Field(
        default=None, exclude=True
    )

    _national_id = field_validator("national_id")(national_id_field)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            # Only when national_id was valid and absent; an invalid one is reported itself.
            if "national_id" in info.data and info.data["national_id"] is None:
                raise PydanticCustomError(
                    "phone_or_national_id_required",
                    "Give a phone number or a national ID (CMND/CCCD)",
                )
            return None
        return phone_field(value)

    @field_validator("host_name", "purpose")
    @classmethod
    def _visitor_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "visitor" and value is None:
            raise PydanticCustomError("required_for_visitor", "Required for visitors")
        if kind == "staff" and value is not None:
            raise PydanticCustomError("visitor_only", "Only visitors fill in this field")
        return value
