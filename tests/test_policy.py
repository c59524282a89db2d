from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import pytest

from service.declarations.model import Declaration
from service.declarations.policy import (
    ACTION_MESSAGES,
    REASONS,
    Evaluation,
    FlaggedArea,
    SiteRules,
    area_key,
    evaluate,
    reason,
)

# 10:00 in Hà Nội on Saturday 9 October 2021.
NOW = datetime(2021, 10, 9, 3, 0, tzinfo=UTC)
TODAY = date(2021, 10, 9)
MIDNIGHT_VN = datetime(2021, 10, 9, 17, 0, tzinfo=UTC)  # start of 10 October in Hà Nội
DONG_TRIEU = FlaggedArea(name="Đông Triều", code="QN-DT", flagged_from=date(2021, 9, 20))


def declaration(**overrides: Any) -> Declaration:
    raw: dict[str, Any] = {
        "site_id": 1,
        "kind": "staff",
        "full_name": "Nguyễn Văn An",
        "phone": "0912345678",
        "symptoms": [],
        "contact_f0": False,
        "contact_f1": False,
        "travel_areas": [],
        "vaccination_doses": 2,
    }
    if overrides.get("kind") == "visitor":
        raw |= {"host_name": "Trần Thị Lan", "purpose": "Họp"}
    raw |= overrides
    return Declaration.model_validate(raw, context={"now": NOW})


def rules(**overrides: Any) -> SiteRules:
    return SiteRules.model_validate(overrides)


def last_test_taken(days_ago: int, result: str = "negative") -> dict[str, str]:
    return {
        "kind": "rapid_antigen",
        "result": result,
        "taken_at": (TODAY - timedelta(days=days_ago)).isoformat(),
    }


def run(
    decl: Declaration,
    site_rules: SiteRules | None = None,
    *,
    flagged: list[FlaggedArea] | None = None,
    risk_level: str | None = None,
    now: datetime = NOW,
    site_timezone: str | ZoneInfo = "Asia/Ho_Chi_Minh",
) -> Evaluation:
    return evaluate(
        decl,
        site_rules or SiteRules(),
        flagged_areas=[DONG_TRIEU] if flagged is None else flagged,
        risk_level=risk_level,
        now=now,
        site_timezone=site_timezone,
    )


def codes(evaluation: Evaluation) -> list[tuple[str, str]]:
    return [(r.code, r.action) for r in evaluation.reasons]


# One declaration per rule, each firing exactly that rule.
RULE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "symptoms": ("symptoms_reported", {"symptoms": ["cough"]}),
    "contact_f0": ("contact_f0", {"contact_f0": True}),
    "contact_f1": ("contact_f1", {"contact_f1": True}),
    "travel_flagged_area": ("travel_flagged_area", {"travel_areas": ["Đông Triều"]}),
    "positive_test": ("positive_test", {"last_test": last_test_taken(0, "positive")}),
}


def test_clean_declaration_is_cleared() -> None:
    evaluation = run(declaration())
    assert evaluation == Evaluation(
        status="cleared", reasons=[], valid_until=NOW + timedelta(hours=24)
    )


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        ("symptoms", "review"),
        ("contact_f0", "rejected"),
        ("contact_f1", "review"),
        ("travel_flagged_area", "review"),
        ("positive_test", "rejected"),
    ],
)
def test_each_rule_with_default_action(rule: str, status: str) -> None:
    code, overrides = RULE_CASES[rule]
    evaluation = run(declaration(**overrides))
    assert evaluation.status == status
    assert [r.code for r in evaluation.reasons] == [code]


@pytest.mark.parametrize(
    ("action", "status"), [("allow", "cleared"), ("review", "review"), ("reject", "rejected")]
)
@pytest.mark.parametrize("rule", list(RULE_CASES))
def test_each_rule_with_each_action(rule: str, action: str, status: str) -> None:
    code, overrides = RULE_CASES[rule]
    evaluation = run(declaration(**overrides), rules(actions={rule: action}))
    assert evaluation.status == status
    # The reason is listed even when allowed, so the console shows what was declared.
    assert codes(evaluation) == [(code, action)]


@pytest.mark.parametrize(
    ("overrides", "actions", "status", "expected"),
    [
        pytest.param(
            {"symptoms": ["fever"], "contact_f0": True},
            {},
            "rejected",
            [("symptoms_reported", "review"), ("contact_f0", "reject")],
            id="review+reject",
        ),
        pytest.param(
            {"symptoms": ["fever"], "contact_f1": True},
            {"symptoms": "allow"},
            "review",
            [("symptoms_reported", "allow"), ("contact_f1", "review")],
            id="allow+review",
        ),
        pytest.param(
            {"contact_f1": True, "travel_areas": ["Hà Nội", "Đông Triều"]},
            {},
            "review",
            [("contact_f1", "review"), ("travel_flagged_area", "review")],
            id="review+review",
        ),
        pytest.param(
            {"contact_f0": True, "contact_f1": True},
            {"contact_f0": "allow", "contact_f1": "allow"},
            "cleared",
            [("contact_f0", "allow"), ("contact_f1", "allow")],
            id="allow+allow",
        ),
        pytest.param(
            {
                "symptoms": ["fever", "cough"],
                "contact_f0": True,
                "contact_f1": True,
                "travel_areas": ["QN-DT"],
                "last_test": last_test_taken(1, "positive"),
            },
            {},
            "rejected",
            [
                ("symptoms_reported", "review"),
                ("contact_f0", "reject"),
                ("contact_f1", "review"),
                ("travel_flagged_area", "review"),
                ("positive_test", "reject"),
            ],
            id="everything",
        ),
        pytest.param(
            {"symptoms": ["fatigue"], "contact_f0": True},
            {"symptoms": "reject", "contact_f0": "review"},
            "rejected",
            [("symptoms_reported", "reject"), ("contact_f0", "review")],
            id="reconfigured",
        ),
    ],
)
def test_worst_action_wins(
    overrides: dict[str, Any],
    actions: dict[str, str],
    status: str,
    expected: list[tuple[str, str]],
) -> None:
    evaluation = run(declaration(**overrides), rules(actions=actions))
    assert evaluation.status == status
    assert codes(evaluation) == expected


def test_reason_messages() -> None:
    evaluation = run(declaration(symptoms=["fever"], travel_areas=["Hà Nội", "dong trieu"]))
    assert [(r.message_vi, r.message_en) for r in evaluation.reasons] == [
        (
            "Bạn có triệu chứng trong 14 ngày qua; cần cán bộ y tế xem xét.",
            "You reported symptoms in the last 14 days; a health officer needs to review this.",
        ),
        (
            "Trong 14 ngày qua bạn đã đến khu vực có dịch: dong trieu; cần cán bộ y tế xem xét.",
            "In the last 14 days you visited an area with cases: dong trieu; "
            "a health officer needs to review this.",
        ),
    ]


# --- validity -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validity", "now", "valid_until"),
    [
        ({"mode": "hours", "hours": 24}, NOW, NOW + timedelta(hours=24)),
        ({"mode": "hours", "hours": 1}, NOW, NOW + timedelta(hours=1)),
        ({"mode": "hours"}, NOW, NOW + timedelta(hours=24)),
        # end_of_day: midnight in Hà Nội (UTC+7) is 17:00 UTC the day before.
        ({"mode": "end_of_day"}, NOW, MIDNIGHT_VN),
        ({"mode": "end_of_day"}, datetime(2021, 10, 8, 17, 0, tzinfo=UTC), MIDNIGHT_VN),
        ({"mode": "end_of_day"}, datetime(2021, 10, 8, 20, 0, tzinfo=UTC), MIDNIGHT_VN),
        ({"mode": "end_of_day"}, MIDNIGHT_VN - timedelta(seconds=1), MIDNIGHT_VN),
        ({"mode": "end_of_day"}, MIDNIGHT_VN, MIDNIGHT_VN + timedelta(days=1)),
        (
            {"mode": "end_of_day"},
            datetime(2021, 10, 8, 16, 59, tzinfo=UTC),
            MIDNIGHT_VN - timedelta(days=1),
        ),
        (
            {"mode": "end_of_day"},
            datetime(2021, 10, 9, 23, 30, tzinfo=timezone(timedelta(hours=7))),
            MIDNIGHT_VN,
        ),
    ],
    ids=[
        "24h",
        "1h",
        "hours-default",
        "eod-10am",
        "eod-00:00",
        "eod-03:00-utc-yesterday",
        "eod-23:59:59",
        "eod-next-day",
        "eod-23:59-day-before",
        "eod-offset-input",
    ],
)
def test_validity(validity: dict[str, Any], now: datetime, valid_until: datetime) -> None:
    evaluation = run(declaration(), rules(validity=validity), now=now)
    assert evaluation.valid_until == valid_until
    assert evaluation.valid_until.tzinfo == UTC


@pytest.mark.parametrize("zone", ["UTC", ZoneInfo("UTC")])
def test_end_of_day_in_another_time_zone(zone: str | ZoneInfo) -> None:
    evaluation = run(declaration(), rules(validity={"mode": "end_of_day"}), site_timezone=zone)
    assert evaluation.valid_until == datetime(2021, 10, 10, tzinfo=UTC)


# --- test cadence by risk level -----------------------------------------------------------


@pytest.mark.parametrize(
    ("risk_level", "last_test", "expected", "valid_until"),
    [
        ("very_high", last_test_taken(0), [], NOW + timedelta(hours=24)),
        ("very_high", last_test_taken(1), [], MIDNIGHT_VN),  # the test's day is over at midnight
        ("very_high", last_test_taken(2), [("test_expired", "reject")], NOW + timedelta(hours=24)),
        ("very_high", None, [("test_required", "reject")], NOW + timedelta(hours=24)),
        (
            "very_high",
            last_test_taken(0, "positive"),
            [("positive_test", "reject"), ("test_required", "reject")],
            NOW + timedelta(hours=24),
        ),
        ("high", last_test_taken(6), [], NOW + timedelta(hours=24)),  # expires after the pass
        ("high", last_test_taken(7), [], MIDNIGHT_VN),
        ("high", last_test_taken(8), [("test_expired", "reject")], NOW + timedelta(hours=24)),
        ("high", None, [("test_required", "reject")], NOW + timedelta(hours=24)),
        ("medium", None, [], NOW + timedelta(hours=24)),
        ("low", None, [], NOW + timedelta(hours=24)),
        (None, None, [], NOW + timedelta(hours=24)),  # risk not assessed
    ],
)
def test_cadence_defaults(
    risk_level: str | None,
    last_test: dict[str, str] | None,
    expected: list[tuple[str, str]],
    valid_until: datetime,
) -> None:
    evaluation = run(declaration(last_test=last_test), risk_level=risk_level)
    assert codes(evaluation) == expected
    assert evaluation.status == ("rejected" if expected else "cleared")
    assert evaluation.valid_until == valid_until


@pytest.mark.parametrize(
    ("cadence", "risk_level", "days_ago", "met"),
    [
        ({"medium": 3}, "medium", 3, True),
        ({"medium": 3}, "medium", 4, False),
        ({"very_high": 0}, "very_high", 0, True),
        ({"very_high": 0}, "very_high", 1, False),
        ({"high": None}, "high", 30, True),
        ({"low": 14}, "low", 14, True),
        ({"low": 14}, "low", 15, False),
    ],
)
def test_cadence_configured(
    cadence: dict[str, int | None], risk_level: str, days_ago: int, met: bool
) -> None:
    evaluation = run(
        declaration(last_test=last_test_taken(days_ago)),
        rules(test_cadence_days=cadence),
        risk_level=risk_level,
    )
    assert codes(evaluation) == ([] if met else [("test_expired", "reject")])


def test_cadence_counts_days_in_site_time_zone() -> None:
    # 00:30 on 8 October in Hà Nội is still 7 October in UTC: the test is from yesterday.
    taken_at = "2021-10-07T17:30:00+00:00"
    decl = declaration(last_test={"kind": "pcr", "result": "negative", "taken_at": taken_at})
    assert run(decl, risk_level="very_high").status == "cleared"
    assert run(decl, risk_level="very_high", site_timezone="UTC").status == "rejected"


def test_required_test_caps_validity() -> None:
    evaluation = run(
        declaration(last_test=last_test_taken(0)),
        rules(validity={"mode": "hours", "hours": 72}, test_cadence_days={"very_high": 0}),
        risk_level="very_high",
    )
    assert evaluation.valid_until == MIDNIGHT_VN


@pytest.mark.parametrize(
    ("action", "status"), [("allow", "cleared"), ("review", "review"), ("reject", "rejected")]
)
def test_test_required_action(action: str, status: str) -> None:
    evaluation = run(declaration(), rules(test_required_action=action), risk_level="very_high")
    assert evaluation.status == status
    assert codes(evaluation) == [("test_required", action)]


def test_test_required_message() -> None:
    (only,) = run(declaration(), risk_level="high").reasons
    assert only.message_vi == (
        "Cần có kết quả xét nghiệm âm tính trong vòng 7 ngày gần nhất; chưa thể vào trụ sở."
    )
    assert only.message_en == (
        "A negative test taken within the last 7 days is required; entry is not permitted."
    )


@pytest.mark.parametrize(
    ("visitor_rules", "last_test", "expected"),
    [
        ({}, None, []),
        ({"visitor_test_required": True}, None, [("test_required", "reject")]),
        ({"visitor_test_required": True}, last_test_taken(1), []),
        ({"visitor_test_required": True}, last_test_taken(2), [("test_expired", "reject")]),
        ({"visitor_test_required": True, "visitor_test_days": 3}, last_test_taken(3), []),
    ],
)
def test_visitor_test(
    visitor_rules: dict[str, Any],
    last_test: dict[str, str] | None,
    expected: list[tuple[str, str]],
) -> None:
    evaluation = run(declaration(kind="visitor", last_test=last_test), rules(**visitor_rules))
    assert codes(evaluation) == expected


def test_visitor_with_risk_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="staff only"):
        run(declaration(kind="visitor"), risk_level="high")


def test_unknown_risk_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown risk_level"):
        run(declaration(), risk_level="extreme")


def test_naive_now_is_an_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(declaration(), now=datetime(2021, 10, 9, 10, 0))


# --- flagged areas ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flagged_from", "flagged_until", "flagged"),
    [
        (TODAY - timedelta(days=30), None, True),
        (TODAY - timedelta(days=30), TODAY - timedelta(days=14), True),
        (TODAY - timedelta(days=30), TODAY - timedelta(days=15), False),
        (TODAY, None, True),
        (TODAY, TODAY, True),
        (TODAY + timedelta(days=1), None, False),
    ],
    ids=[
        "open",
        "ended-14-days-ago",
        "ended-15-days-ago",
        "from-today",
        "today-only",
        "from-tomorrow",
    ],
)
def test_flagged_period_overlaps_last_14_days(
    flagged_from: date, flagged_until: date | None, flagged: bool
) -> None:
    area = FlaggedArea(name="Uông Bí", flagged_from=flagged_from, flagged_until=flagged_until)
    evaluation = run(declaration(travel_areas=["Uông Bí"]), flagged=[area])
    assert [r.code for r in evaluation.reasons] == (["travel_flagged_area"] if flagged else [])


@pytest.mark.parametrize(
    ("visited", "flagged"),
    [
        (["Đông Triều"], True),
        (["đông triều"], True),
        (["DONG TRIEU"], True),
        (["Dong  Trieu"], True),
        (["qn-dt"], True),
        (["Hà Nội", "Quảng Yên"], False),
        (["Đông"], False),
        ([], False),
    ],
)
def test_flagged_area_matching(visited: list[str], flagged: bool) -> None:
    evaluation = run(declaration(travel_areas=visited))
    assert [r.code for r in evaluation.reasons] == (["travel_flagged_area"] if flagged else [])


def test_flagged_areas_listed_once_in_declared_spelling() -> None:
    areas = [DONG_TRIEU, FlaggedArea(name="Uông Bí", flagged_from=date(2021, 10, 1))]
    decl = declaration(travel_areas=["Uông Bí", "Hà Nội", "QN-DT", "Uông Bí"])
    (only,) = run(decl, flagged=areas).reasons
    assert only.message_en.startswith(
        "In the last 14 days you visited an area with cases: Uông Bí, QN-DT;"
    )


def test_area_key() -> None:
    assert area_key("  Đông   TRIỀU ") == area_key("dong trieu") == "dong trieu"


# --- rules and areas as an admin sends them -------------------------------------------------


def test_default_rules() -> None:
    assert SiteRules().model_dump(mode="json") == {
        "validity": {"mode": "hours", "hours": 24},
        "actions": {
            "symptoms": "review",
            "contact_f0": "reject",
            "contact_f1": "review",
            "travel_flagged_area": "review",
            "positive_test": "reject",
        },
        "test_cadence_days": {"very_high": 1, "high": 7, "medium": None, "low": None},
        "test_required_action": "reject",
        "visitor_test_required": False,
        "visitor_test_days": 1,
        "infectious_days_before_onset": 2,
        "quarantine_days": 0,
        "official_tests_required": False,
    }


def test_rules_round_trip_through_json() -> None:
    site_rules = rules(
        validity={"mode": "end_of_day"},
        actions={"symptoms": "reject"},
        test_cadence_days={"medium": 3},
        visitor_test_required=True,
    )
    assert SiteRules.model_validate_json(site_rules.model_dump_json()) == site_rules
    assert SiteRules.model_validate(site_rules.model_dump(mode="json")) == site_rules


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"unknown": 1}, "unknown"),
        ({"validity": {"mode": "weekly"}}, "validity"),
        ({"validity": {"mode": "hours", "hours": 0}}, "validity.hours.hours"),
        ({"validity": {"mode": "hours", "hours": "24"}}, "validity.hours.hours"),
        ({"validity": {"mode": "end_of_day", "hours": 4}}, "validity.end_of_day.hours"),
        ({"timezone": "UTC"}, "timezone"),  # the site's own, not a rule
        ({"actions": {"symptoms": "ignore"}}, "actions.symptoms"),
        ({"actions": {"fever": "allow"}}, "actions.fever"),
        ({"test_cadence_days": {"high": 31}}, "test_cadence_days.high"),
        ({"test_cadence_days": {"high": -1}}, "test_cadence_days.high"),
        ({"test_cadence_days": {"extreme": 1}}, "test_cadence_days.extreme"),
        ({"test_required_action": "block"}, "test_required_action"),
        ({"visitor_test_required": "true"}, "visitor_test_required"),
        ({"visitor_test_days": 1.5}, "visitor_test_days"),
    ],
)
def test_rules_rejected(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        rules(**overrides)
    assert [".".join(map(str, e["loc"])) for e in info.value.errors()] == [field]


def test_flagged_area_from_json() -> None:
    area = FlaggedArea.model_validate(
        {"name": " Đông  Triều ", "code": "QN-DT", "flagged_from": "2021-09-20"}
    )
    assert area == DONG_TRIEU


def test_flagged_area_until_before_from_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match="The end date is before the start date"):
        FlaggedArea(name="Uông Bí", flagged_from=TODAY, flagged_until=TODAY - timedelta(days=1))


# --- the catalogue ------------------------------------------------------------------------


def test_reason_codes_are_stable() -> None:
    assert sorted(REASONS) == [
        "contact_f0",
        "contact_f1",
        "declaration_mismatch",  # against the official record (19.3)
        "identity_check",  # not a health rule: a claim on a known identity (16.2)
        "positive_test",
        "symptoms_reported",
        "test_expired",
        "test_required",
        "travel_flagged_area",
    ]


@pytest.mark.parametrize("action", list(ACTION_MESSAGES))
@pytest.mark.parametrize("code", list(REASONS))
def test_every_reason_renders(code: str, action: Any) -> None:
    rendered = reason(code, action, areas="Hà Nội", days_vi="trong ngày", days_en="today")
    assert rendered.code == code
    assert rendered.action == action
    for message in (rendered.message_vi, rendered.message_en):
        assert message.endswith(".")
        assert "{" not in message
