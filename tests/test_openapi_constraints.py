"""The OpenAPI document states what the server enforces: requests generated to fit the
document (schemathesis, positive data only) are never refused for a reason it did not
state."""

from __future__ import annotations

import asyncio
from typing import Any

import requests
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings

from service.web.auth import Role
from tests.factory import bearer
from tests.test_console_browser import base_url

Client = TestClient[Any, Any]

# Rules that depend on the data, not on the request's shape: the document cannot state
# them (the site must exist, the staff list must know the person, a test date is judged
# against today, an opening time against its closing time).
DATA_RULES = {
    "site_not_found",
    "not_staff",
    "date_in_future",
    "date_too_old",
    "opens_after_closes",
    "dates_out_of_order",
    "onset_in_future",
    "onset_too_old",
    "known_at_several_sites",
}
# Whole-request refusals that depend on the data: the scan named nobody, so a person is
# needed; no such site.
DATA_CODES = {"person_required", "site_not_found"}
# Query parameters judged against another value: `to` after `from`, `to_seq` from
# `from_seq` on, `after` a token that an earlier page gave.
RELATIVE_PARAMETERS = {"to", "to_seq", "after"}


def refusals(spec: dict[str, Any], base: str, tokens: dict[Role, str]) -> list[str]:
    found: list[str] = []
    session = requests.Session()
    for result in schemathesis.openapi.from_dict(spec).get_all_operations():
        operation = result.ok()
        if "stream" in operation.path:
            continue  # WebSockets
        described = operation.definition.raw.get("description", "")
        roles = described.removeprefix("Roles: ").rstrip(".").split(", ") if described else []
        role = Role.ADMIN if "admin" in roles else (Role(roles[0]) if roles else None)
        check_operation(operation, base, bearer(tokens[role]) if role else {}, session, found)
    return found


def check_operation(
    operation: Any, base: str, headers: dict[str, str], session: requests.Session, found: list[str]
) -> None:
    """Schema-valid cases of one operation; what is refused for its shape goes to found."""

    @settings(
        max_examples=4,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        resp = case.call(base_url=base, headers=headers, session=session, timeout=30)
        try:
            answer = resp.json()
        except ValueError:  # a page, an image
            answer = None
        error = answer.get("error") if isinstance(answer, dict) else None
        where = f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}"
        if resp.status_code == 422 and error and error["code"] != "validation_failed":
            if error["code"] not in DATA_CODES:
                found.append(f"{where}: {error}")
        if resp.status_code == 422 and error:
            unstated = [f for f in error.get("fields", []) if f["code"] not in DATA_RULES]
            if unstated:
                found.append(f"{where}: {unstated}")
        if resp.status_code == 400 and error and error.get("code") == "bad_parameter":
            if error.get("parameter") not in RELATIVE_PARAMETERS:
                found.append(f"{where}: {error}")
        if resp.status_code >= 500:
            found.append(f"{where}: {resp.status_code}")

    check()


async def test_requests_the_document_allows_are_not_refused_for_their_shape(
    client: Client, tokens: dict[Role, str]
) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    found = await asyncio.to_thread(refusals, spec, base_url(client), tokens)
    assert found == []
