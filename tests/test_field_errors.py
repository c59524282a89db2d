"""Every field error has English and Vietnamese words from one catalogue, in the API's
422 answers and on the declaration form."""

from __future__ import annotations

import re
from typing import Any

import pydantic
import pytest
from aiohttp.test_utils import TestClient

from service.checkin.kiosk_stream import Heartbeat, ScanBatch
from service.declarations.policy import SiteRules
from service.door.actions import DenyListIn
from service.door.overrides import OverrideIn
from service.identity.accounts import AccountIn
from service.sites.gates import GateIn, SiteIn
from service.sites.rules import FlaggedAreaIn
from service.web.auth import Role
from service.web.field_errors import REASONS, field_errors
from tests.factory import bearer
from tests.test_declare_form import form, post

Client = TestClient[Any, Any]

# Bodies wrong in as many ways as the models can be, each model by itself.
BAD_BODIES: list[tuple[type[pydantic.BaseModel], Any]] = [
    (SiteIn, {"code": "Bad Code!", "name": 5, "timezone": "Mars/Base", "capacity": 0}),
    (SiteIn, []),
    (
        GateIn,
        {
            "name": "",
            "direction": "sideways",
            "opening_hours": [
                {"days": [0, 8], "opens": "9", "closes": "08:00"},
                {"days": [1], "opens": "10:00", "closes": "09:00"},
                {"days": [], "opens": "08:00", "closes": "09:00"},
            ],
            "offline_policy": 1,
        },
    ),
    (AccountIn, {"username": "x", "password": "short", "role": "boss", "site_id": -1}),
    (OverrideIn, {"event_id": "not-a-uuid", "reason": "a", "person_id": "x"}),
    (DenyListIn, {"person_id": 1.5, "reason": ["x"], "site_id": "1x"}),
    (Heartbeat, {"fps": "fast", "camera_up": "maybe", "queue_depth": -1, "x": 1}),
    (ScanBatch, {"scans": []}),
    (ScanBatch, {"scans": [{"event_id": 1, "payload": None, "seen_at": "2021-10-08T09:00"}]}),
    (ScanBatch, {"scans": "x"}),
    (SiteRules, {"validity": {"mode": "weeks"}, "visitor_test_days": 99, "actions": []}),
    (SiteRules, {"validity": {}, "test_cadence_days": {"high": "often"}}),
    (FlaggedAreaIn, {"name": "P1", "flagged_from": "2021-10-08", "flagged_until": "2021-10-01"}),
    (FlaggedAreaIn, {"name": "P1", "flagged_from": "yesterday"}),
]


@pytest.mark.parametrize(("model", "body"), BAD_BODIES)
def test_every_error_the_models_give_is_in_the_catalogue(
    model: type[pydantic.BaseModel], body: Any
) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        model.model_validate(body)
    errors = field_errors(info.value)
    assert errors
    for error in errors:
        assert error["code"] in REASONS, error
        assert error["reason"] == error["reason_en"] and error["reason_vi"], error
        assert "{" not in error["reason_en"] + error["reason_vi"], error
        # pydantic's own words never reach a person
        assert not error["reason_en"].startswith(("Input should", "Field required")), error


def test_choices_are_listed_in_each_language() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        GateIn.model_validate({"name": "A", "direction": "sideways"})
    [error] = field_errors(info.value, lang="vi")
    assert error["reason"] == error["reason_vi"]
    assert error["reason_en"] == "Choose one of: 'entrance', 'exit' or 'both'"
    assert error["reason_vi"] == "Chọn một trong: 'entrance', 'exit' hoặc 'both'"


async def test_api_422_names_the_field_with_its_code_and_both_languages(
    client: Client, site_id: int, tokens: dict[Role, str]
) -> None:
    resp = await client.post(
        f"/api/v1/sites/{site_id}/gates",
        json={"direction": "entrance", "name": "x" * 121},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "validation_failed" and error["message"]
    assert error["fields"] == [
        {
            "field": "name",
            "code": "string_too_long",
            "reason": "Too long (at most 120 characters)",
            "reason_en": "Too long (at most 120 characters)",
            "reason_vi": "Nội dung quá dài (tối đa 120 ký tự)",
        }
    ]


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("vi", "Chọn “Không có triệu chứng nào” hoặc các triệu chứng bạn có"),
        ("en", "Tick either “None of these” or the symptoms you have, not both"),
    ],
)
async def test_none_and_a_symptom_on_the_form_is_a_clear_message(
    client: Client, site_id: int, lang: str, words: str
) -> None:
    # The form sends ("symptoms", "none"); a symptom ticked as well, and one bad phone.
    pairs = [*form(site_id, lang=lang, phone="12345"), ("symptoms", "cough")]
    status, page = await post(client, pairs)
    assert status == 422
    shown = re.search(r'id="symptoms-error">(.*?)<', page)
    assert shown is not None and shown.group(1).startswith(words), page
    assert "'fever'" not in page  # not the raw list of values
    assert re.search(r'id="phone-error">', page)  # the other errors are shown at once
    assert 'value="cough" checked' in page and 'value="none" checked' in page
