"""Declaration + site rules -> status, reasons and how long the result holds. Pure: no I/O.

Every rule that fires adds a ``Reason`` carrying the action the site set for it; the worst
action decides the status (reject > review > allow; no reason at all means cleared). A rule
set to "allow" still adds its reason, so the console shows what was declared.

Calendar days are counted in the site's time zone. A test "within N days" means taken on
today or one of the N days before (N = 0: today only); it then holds until the end of day
``taken + N``, and a pass issued on it never outlives it.

Flagged areas: a declaration lists the areas visited in the last 14 days, without dates, so
an area counts when its flagged period overlaps those 14 days (today included). Names and
codes match ignoring case, spacing and Vietnamese diacritics ("Đông Triều" = "dong trieu").

``valid_until`` is exclusive and in UTC: the result holds while ``now < valid_until``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, Self, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from service.declarations.model import Area, Declaration, LastTest, Whole

Action = Literal["allow", "review", "reject"]
Status = Literal["cleared", "review", "rejected"]
RiskLevel = Literal["very_high", "high", "medium", "low"]
RISK_LEVELS: frozenset[str] = frozenset(get_args(RiskLevel))
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
TRAVEL_WINDOW_DAYS = 14
MAX_TEST_DAYS = 30

_SEVERITY: dict[Action, int] = {"allow": 0, "review": 1, "reject": 2}
_STATUS: dict[Action, Status] = {"allow": "cleared", "review": "review", "reject": "rejected"}

# The one catalogue of reason codes: code -> (Vietnamese, English). Codes are stable: the
# console, exports and audit records store them. {days} and {areas} are filled in.
REASONS: dict[str, tuple[str, str]] = {
    "symptoms_reported": (
        "Bạn có triệu chứng trong 14 ngày qua",
        "You reported symptoms in the last 14 days",
    ),
    "contact_f0": (
        "Bạn có tiếp xúc gần với ca bệnh xác định (F0)",
        "You were in close contact with a confirmed case (F0)",
    ),
    "contact_f1": (
        "Bạn có tiếp xúc với trường hợp nghi nhiễm hoặc F1",
        "You were in contact with a suspected case or an F1 contact",
    ),
    "travel_flagged_area": (
        "Trong 14 ngày qua bạn đã đến khu vực có dịch: {areas}",
        "In the last 14 days you visited an area with cases: {areas}",
    ),
    "positive_test": (
        "Kết quả xét nghiệm gần nhất của bạn là dương tính",
        "Your latest test result is positive",
    ),
    "test_required": (
        "Cần có kết quả xét nghiệm âm tính {days_vi}",
        "A negative test {days_en} is required",
    ),
    "test_expired": (
        "Kết quả xét nghiệm âm tính của bạn đã hết hạn; cần xét nghiệm lại {days_vi}",
        "Your negative test has expired; a new test {days_en} is required",
    ),
    # The declaration contradicts an official test record (service.declarations.official_rank):
    # a declared negative over an official positive, or a test with no record where the
    # site requires official results.
    "declaration_mismatch": (
        "Khai báo xét nghiệm của bạn không khớp với kết quả xét nghiệm chính thức",
        "Your declared test does not match the official test record",
    ),
    # Not a health rule: a declaration that could not be shown to come from the person
    # it names (service.declarations.identity_proof). Worded alike whichever identifier matched.
    "identity_check": (
        "Cần đối chiếu giấy tờ tùy thân của bạn tại trụ sở",
        "Your identity papers need to be checked at the office",
    ),
}
# What the configured action means for the person, appended after "; ".
ACTION_MESSAGES: dict[Action, tuple[str, str]] = {
    "allow": ("đã ghi nhận", "noted"),
    "review": ("cần cán bộ y tế xem xét", "a health officer needs to review this"),
    "reject": ("chưa thể vào trụ sở", "entry is not permitted"),
}


# The validity's mode picks its kind (the discriminator), so a body must send it.
_MODE_REQUIRED: dict[str, Any] = {"required": ["mode"]}


class HoursValidity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_MODE_REQUIRED)

    mode: Literal["hours"] = "hours"
    hours: Annotated[int, Whole(ge=1, le=24 * 7)] = 24


class EndOfDayValidity(BaseModel):
    """Valid until midnight at the end of the day of the declaration, site time."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_MODE_REQUIRED)

    mode: Literal["end_of_day"] = "end_of_day"


TestDays = Annotated[int, Whole(ge=0, le=MAX_TEST_DAYS)]


class RuleActions(BaseModel):
    """The action for each answer; field names are the declaration's questions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symptoms: Action = "review"
    contact_f0: Action = "reject"
    contact_f1: Action = "review"
    travel_flagged_area: Action = "review"
    positive_test: Action = "reject"


class CadenceByRisk(BaseModel):
    """Days within which staff of each job risk level need a negative test; None: no test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    very_high: TestDays | None = 1
    high: TestDays | None = 7
    medium: TestDays | None = None
    low: TestDays | None = None


class SiteRules(BaseModel):
    """A site's rules as an admin sets them (stored as JSONB); ``SiteRules()`` is the default.

    The time zone is not here: it is the site's own (``sites.timezone``), given to evaluate.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    validity: Annotated[HoursValidity | EndOfDayValidity, Field(discriminator="mode")] = (
        HoursValidity()
    )
    actions: RuleActions = RuleActions()
    test_cadence_days: CadenceByRisk = CadenceByRisk()
    test_required_action: Action = "reject"
    visitor_test_required: Annotated[bool, Field(strict=True)] = False
    visitor_test_days: TestDays = 1
    # A confirmed case's infectious window starts this many days before onset (site
    # days); a traced contact needs an official negative taken this many days after
    # the exposure (service/health/cases.py).
    infectious_days_before_onset: Annotated[int, Whole(ge=0, le=14)] = 2
    quarantine_days: Annotated[int, Whole(ge=0, le=MAX_TEST_DAYS)] = 0
    # The test cadence counts official results only (service/declarations/official_rank.py): a
    # negative the person declares without a record does not meet it.
    official_tests_required: Annotated[bool, Field(strict=True)] = False


class FlaggedArea(BaseModel):
    """An area an admin flagged from ``flagged_from`` to ``flagged_until`` (inclusive; None:
    still flagged). Travel is matched against ``name`` and ``code``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Area
    code: Area | None = None
    flagged_from: date
    flagged_until: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.flagged_until is not None and self.flagged_until < self.flagged_from:
            raise PydanticCustomError("dates_out_of_order", "The end date is before the start date")
        return self

    def flagged_between(self, first: date, last: date) -> bool:
        return self.flagged_from <= last and (
            self.flagged_until is None or self.flagged_until >= first
        )


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    action: Action
    message_vi: str
    message_en: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    status: Status
    reasons: list[Reason]
    valid_until: datetime


def area_key(text: str) -> str:
    """Compare area names ignoring case, spacing and diacritics (đ counts as d)."""
    decomposed = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.split())


def reason(code: str, action: Action, **params: str) -> Reason:
    """A Reason from the catalogue; the message ends with what ``action`` means."""
    vi, en = REASONS[code]
    then_vi, then_en = ACTION_MESSAGES[action]
    return Reason(
        code=code,
        action=action,
        message_vi=f"{vi.format(**params)}; {then_vi}.",
        message_en=f"{en.format(**params)}; {then_en}.",
    )


def _days_params(days: int) -> dict[str, str]:
    if days == 0:
        return {"days_vi": "trong ngày hôm nay", "days_en": "taken today"}
    return {
        "days_vi": f"trong vòng {days} ngày gần nhất",
        "days_en": f"taken within the last {days} days",
    }


def _start_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _required_test_days(
    declaration: Declaration, rules: SiteRules, risk_level: str | None
) -> int | None:
    if declaration.kind == "visitor":
        if risk_level is not None:
            raise ValueError("risk_level applies to staff only")
        return rules.visitor_test_days if rules.visitor_test_required else None
    if risk_level is None:
        return None
    if risk_level not in RISK_LEVELS:
        raise ValueError(f"unknown risk_level {risk_level!r}")
    days: int | None = getattr(rules.test_cadence_days, risk_level)
    return days


def _flagged_visits(
    travel_areas: Iterable[str], flagged_areas: Iterable[FlaggedArea], today: date
) -> list[str]:
    first = today - timedelta(days=TRAVEL_WINDOW_DAYS)
    keys: set[str] = set()
    for area in flagged_areas:
        if area.flagged_between(first, today):
            keys.add(area_key(area.name))
            if area.code is not None:
                keys.add(area_key(area.code))
    hits: list[str] = []
    for visited in travel_areas:
        if area_key(visited) in keys and visited not in hits:
            hits.append(visited)
    return hits


def _check_test(
    last_test: LastTest | None, days: int, action: Action, today: date, zone: ZoneInfo
) -> tuple[Reason | None, datetime | None]:
    """The reason when the requirement is not met, else the test's own expiry."""
    if last_test is not None and last_test.result == "negative":
        taken_on = last_test.taken_on(zone)
        if taken_on >= today - timedelta(days=days):
            return None, _start_of_day(taken_on + timedelta(days=days + 1), zone)
        return reason("test_expired", action, **_days_params(days)), None
    return reason("test_required", action, **_days_params(days)), None


def evaluate(
    declaration: Declaration,
    rules: SiteRules,
    *,
    flagged_areas: Sequence[FlaggedArea],
    risk_level: str | None,
    now: datetime,
    site_timezone: str | ZoneInfo = DEFAULT_TIMEZONE,
    extra: Sequence[Reason] = (),
) -> Evaluation:
    """Apply ``rules`` to ``declaration`` at ``now`` (timezone-aware).

    ``risk_level`` is the staff member's job risk level (one of RISK_LEVELS) or None when not
    assessed, which means no test requirement; it must be None for visitors.
    ``site_timezone`` (``sites.timezone``) fixes calendar days and end of day.
    ``extra``: reasons found elsewhere (against the official record), judged alike.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    zone = site_timezone if isinstance(site_timezone, ZoneInfo) else ZoneInfo(site_timezone)
    today = now.astimezone(zone).date()
    actions = rules.actions
    reasons: list[Reason] = []

    if declaration.symptoms:
        reasons.append(reason("symptoms_reported", actions.symptoms))
    if declaration.contact_f0:
        reasons.append(reason("contact_f0", actions.contact_f0))
    if declaration.contact_f1:
        reasons.append(reason("contact_f1", actions.contact_f1))
    visited = _flagged_visits(declaration.travel_areas, flagged_areas, today)
    if visited:
        reasons.append(
            reason("travel_flagged_area", actions.travel_flagged_area, areas=", ".join(visited))
        )
    if declaration.last_test is not None and declaration.last_test.result == "positive":
        reasons.append(reason("positive_test", actions.positive_test))

    if isinstance(rules.validity, HoursValidity):
        valid_until = now.astimezone(UTC) + timedelta(hours=rules.validity.hours)
    else:
        valid_until = _start_of_day(today + timedelta(days=1), zone)

    days = _required_test_days(declaration, rules, risk_level)
    if days is not None:
        missing, test_expiry = _check_test(
            declaration.last_test, days, rules.test_required_action, today, zone
        )
        if missing is not None:
            reasons.append(missing)
        if test_expiry is not None:
            valid_until = min(valid_until, test_expiry)

    reasons += extra
    worst: Action = max((r.action for r in reasons), key=_SEVERITY.__getitem__, default="allow")
    return Evaluation(status=_STATUS[worst], reasons=reasons, valid_until=valid_until)
