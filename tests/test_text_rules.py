"""The text rules (service/web/text.py) on every text field and query parameter: a NUL, a
lone surrogate or an overlong text is a 422 naming the field, never a 500."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from service.door.actions import ReasonIn
from service.sites.gates import GateIn
from service.web.auth import Role
from service.web.text import REJECTED_BMP_RANGES, Text
from tests.factory import Factory, bearer
from tests.test_console_auth import login

Client = TestClient[Any, Any]
NOW = datetime.now(UTC).isoformat()

# --- the rules themselves -----------------------------------------------------------------


def test_the_rejected_table_is_what_unicodedata_says() -> None:
    rejected = {"Cc", "Cf", "Co", "Zl", "Zp"}
    expected = [cp for cp in range(0x10000) if unicodedata.category(chr(cp)) in rejected]
    table = [cp for low, high in REJECTED_BMP_RANGES for cp in range(low, high + 1)]
    assert table == expected


def test_names_are_nfc_and_trimmed_and_reasons_keep_their_lines() -> None:
    gate = GateIn(name="  Co\u0302\u0309ng   chi\u0301nh ", direction="entrance")
    assert gate.name == "Cổng chính"
    reason = ReasonIn(reason="  Đã gọi điện \r\n\r\n  cho   chị Lan  \n")
    assert reason.reason == "Đã gọi điện\n\ncho chị Lan"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Cổng\x00A", "control_character"),
        ("Cổng\ud800", "invalid_unicode"),
        ("Cổng\u202eA", "control_character"),
        ("Cổng\u200bA", "control_character"),
        ("Cổng\nA", "control_character"),
        ("x" * 121, "string_too_long"),
        ("   ", "string_too_short"),
    ],
)
def test_single_line_text_refusals(value: str, code: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        GateIn(name=value, direction="entrance")
    assert [e["type"] for e in info.value.errors()] == [code]


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    value=st.text(max_size=12),
    min_visible=st.integers(0, 3),
    multiline=st.booleans(),
)
def test_the_schema_pattern_says_exactly_what_the_validator_accepts(
    value: str, min_visible: int, multiline: bool
) -> None:
    rule = Text(10, min_visible=min_visible, multiline=multiline)
    schema = rule.json_schema()
    schema_valid = len(value) <= schema["maxLength"] and bool(
        re.fullmatch(schema["pattern"], value)
    )
    try:
        rule.apply(value)
        accepted = True
    except PydanticCustomError:
        accepted = False
    assert accepted == schema_valid


# --- the seven endpoints of issue 16.5 ------------------------------------------------------


async def _seed(client: Client, factory: Factory, site_id: int, tokens: dict[Role, str]) -> Any:
    declared = await client.post(
        "/api/v1/declarations", json=_fill(BODIES["Declaration"], {"site_id": site_id}, 0)
    )
    assert declared.status == 201, await declared.text()
    outcome = await declared.json()
    declaration = outcome["declaration_id"]  # the public answer names no person
    person = await factory.conn.fetchval(
        "SELECT person_id FROM declarations WHERE id = $1", declaration
    )
    pass_id = outcome["pass"]["id"]
    username, _ = await factory.account(Role.GUARD, site_id=site_id)
    admin = bearer(tokens[Role.ADMIN])
    scan = await client.post(
        "/api/v1/scans",
        json={"event_id": str(uuid.uuid4()), "payload": "not a pass", "seen_at": NOW},
        headers=bearer(tokens[Role.KIOSK]),
    )
    assert scan.status == 200, await scan.text()
    denied_event = (await scan.json())["event_id"]
    area = await client.post(
        f"/api/v1/sites/{site_id}/flagged-areas",
        json={"name": "Phường 9", "flagged_from": "2021-10-01"},
        headers=admin,
    )
    assert area.status == 201, await area.text()
    entry = await client.post(
        "/api/v1/deny-list", json={"person_id": person, "reason": "thử nghiệm"}, headers=admin
    )
    assert entry.status == 201, await entry.text()
    return {
        "person": person,
        "declaration": declaration,
        "pass_id": pass_id,
        "username": username,
        "denied_event": denied_event,
        "area_id": (await area.json())["id"],
        "entry_id": (await entry.json())["id"],
    }


async def test_a_nul_is_a_422_naming_the_field_on_each_endpoint_of_the_issue(
    client: Client, factory: Factory, site_id: int, tokens: dict[Role, str]
) -> None:
    seed = await _seed(client, factory, site_id, tokens)
    admin = bearer(tokens[Role.ADMIN])
    nul = "Lý do\x00 ẩn"
    calls = [
        ("GET", "/api/v1/audit/events", {"params": {"reason": nul}}, "reason"),
        (
            "POST",
            f"/api/v1/sites/{site_id}/presence/{seed['person']}/exit",
            {"json": {"reason": nul}},
            "reason",
        ),
        (
            "POST",
            "/api/v1/overrides",
            {"json": {"event_id": seed["denied_event"], "reason": nul}},
            "reason",
        ),
        (
            "POST",
            "/api/v1/deny-list",
            {"json": {"person_id": seed["person"], "reason": nul}},
            "reason",
        ),
        ("POST", "/api/v1/sites", {"json": {"code": "nul-site", "name": nul}}, "name"),
        (
            "POST",
            f"/api/v1/sites/{site_id}/gates",
            {"json": {"name": nul, "direction": "entrance"}},
            "name",
        ),
        (
            "POST",
            "/api/v1/accounts",
            {
                "json": {
                    "username": "nul.name",
                    "password": "long enough pass",
                    "role": "guard",
                    "full_name": nul,
                }
            },
            "full_name",
        ),
    ]
    for method, path, kwargs, field in calls:
        resp = await client.request(method, path, headers=admin, **kwargs)
        body = await resp.json()
        assert resp.status == 422, (path, body)
        assert body["error"]["code"] == "validation_failed"
        [error] = body["error"]["fields"]
        assert (error["field"], error["code"]) == (field, "control_character"), path
        assert error["reason_vi"].startswith("Nội dung có ký tự điều khiển"), path


# --- every text field and query parameter of the OpenAPI document ---------------------------

# Text fields that are not text a person typed: the scanned QR text is recorded as the
# door saw it, NUL and all (tests/test_fuzz_scan_path.py), so it is not refused.
RAW_FIELDS = {("ScanIn", "payload"), ("ScanBatch", "scans.0.payload")}
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# A valid body per request schema, so a hostile value in one field reaches the handler's
# database work (where a NUL used to be a 500) and not only the validator.
BODIES: dict[str, Any] = {
    "SiteIn": {"code": "s-{n}", "name": "Trụ sở", "timezone": "Asia/Ho_Chi_Minh"},
    "GateIn": {"name": "Cổng", "direction": "entrance"},
    "Declaration": {
        "site_id": "{site_id}",
        "kind": "visitor",
        "full_name": "Nguyễn Văn A",
        "phone": "0912345678",
        "host_name": "Chị Lan",
        "purpose": "Họp",
        "symptoms": [],
        "contact_f0": False,
        "contact_f1": False,
        "travel_areas": ["Quận 1"],
        "vaccination_doses": 2,
    },
    "ReviewIn": {"decision": "approve", "note": "ổn"},
    "RevokeIn": {"reason": "mất thẻ"},
    "SiteRules": {},
    "CheckinRules": {},
    "TestIn": {
        "person_id": "{person}",
        "kind": "pcr",
        "taken_at": NOW,
        "result": "negative",
        "source": "CDC {n}",
    },
    "CaseIn": {"person_id": "{person}", "onset_on": NOW[:10], "note": "ca {n}"},
    "SuspendIn": {"all": True},
    "ConfirmIn": {"status": "seen"},
    "WebhookIn": {"url": "https://example.org/hook"},
    "ClearIn": {"cause": "area_flagged", "note": "đã rà soát"},
    "FlaggedAreaIn": {"name": "Phường 1", "code": "p1", "flagged_from": "2021-10-01"},
    "ScanIn": {"event_id": "{uuid}", "payload": "CG1:x", "seen_at": NOW},
    "ScanBatch": {"scans": [{"event_id": "{uuid}", "payload": "CG1:x", "seen_at": NOW}]},
    "Heartbeat": {"fps": 10},
    "OverrideIn": {"event_id": "{denied_event}", "reason": "đã kiểm tra"},
    "IdCheckIn": {"event_id": "{denied_event}"},
    "BindIn": {"device_key": "A" * 43},
    "ReasonIn": {"reason": "đã kiểm tra"},
    "DenyListIn": {"person_id": "{person}", "reason": "đã kiểm tra"},
    "AccountIn": {"username": "u{n}", "password": "long enough pass", "role": "guard"},
}
VALID_QUERY = {
    "format": "json",
    "from": "2021-10-01T00:00:00+07:00",
    "to": "2030-10-01T00:00:00+07:00",
    "person": "{person}",
    "site_id": "{site_id}",
    "q": "Nguyễn",
}
ODD = [
    "\x00",
    "Tên\x00",
    "\ud800",
    "a\udfffb",
    "x" * 5000,
    "\u200fمرحبا\u200e",
    "A\u202eevil",
    "e" + "\u0301" * 40,
    "👨\u200d👩\u200d👧 🇻🇳",
    "\u200b\u2060\ufeff",
    "Tên\tđầy\u0085đủ",
    "\U0001f600" * 3,
]


def hostile_text() -> st.SearchStrategy[str]:
    # Mostly short strings from the awkward corners of Unicode, surrogates included.
    awkward = st.characters(
        codec=None, categories=("Cc", "Cf", "Cs", "Co", "Mn", "Zs", "Zl", "So", "Lo")
    )
    return st.text(awkward, min_size=1, max_size=30) | st.sampled_from(ODD)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def text_paths(
    spec: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """The location of every string in a request schema (list items as index 0)."""
    schema = _resolve(spec, schema)
    if schema.get("type") == "string" and "enum" not in schema and "const" not in schema:
        yield path
    for name, sub in schema.get("properties", {}).items():
        yield from text_paths(spec, sub, (*path, name))
    if "items" in schema:
        yield from text_paths(spec, schema["items"], (*path, 0))
    for sub in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from text_paths(spec, sub, path)


def _put(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = body if isinstance(body, list) and body else [{} if rest else ""]
        return [_put(items[0], rest, value)]
    out = dict(body) if isinstance(body, dict) else {}
    out[head] = _put(out.get(head, {}), rest, value)
    return out


def _fill(value: Any, seed: dict[str, Any], n: int) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, seed, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, seed, n) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        name = value[1:-1]
        return str(uuid.uuid4()) if name == "uuid" else seed[name]
    if isinstance(value, str):
        return value.replace("{n}", str(n))
    return value


def _role_for(op: dict[str, Any]) -> Role | None:
    if op.get("security") == []:
        return None
    roles = op["description"].removeprefix("Roles: ").rstrip(".").split(", ")
    return Role.ADMIN if "admin" in roles else Role(roles[0])


class Sender:
    """Plain blocking HTTP from a worker thread, so hypothesis drives it (and shrinks)
    while the test's event loop serves the app."""

    def __init__(self, base: str, tokens: dict[Role, str], seed: dict[str, Any]) -> None:
        self.base, self.tokens, self.seed, self.n = base, tokens, seed, 0
        self.server_errors: list[str] = []

    def send(
        self, method: str, path: str, role: Role | None, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any] | None]:
        self.n += 1
        url = self.base + path
        if query:
            url += "?" + "&".join(
                f"{urllib.parse.quote(k)}={urllib.parse.quote(v, errors='surrogatepass')}"
                for k, v in query.items()
            )
        data = None if body is None else json.dumps(body).encode()  # \ud800 stays escaped
        request = urllib.request.Request(url, data=data, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if role is not None:
            request.add_header("Authorization", f"Bearer {self.tokens[role]}")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        if status >= 500:
            self.server_errors.append(f"{method} {path} {query} {body!r:.300}: {status}")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        return status, parsed if isinstance(parsed, dict) else None


def _named(answer: dict[str, Any] | None, field: str) -> bool:
    fields = ((answer or {}).get("error") or {}).get("fields") or []
    return any(f["field"] == field or f["field"].startswith(field + ".") for f in fields)


def run_every_target(spec: dict[str, Any], sender: Sender, seed: dict[str, Any]) -> int:
    """Each text field of each body and each query parameter of each operation, fed odd
    text; returns how many targets were tried."""
    targets = 0
    for template, ops in spec["paths"].items():
        path = template
        for name, value in seed.items():
            path = path.replace("{" + name + "}", str(value))
        for method, op in ops.items():
            role = _role_for(op)
            if "stream" in template:
                continue  # WebSockets: tests/test_kiosk_stream.py and test_events.py
            query_names = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
            base_query = {
                k: str(_fill(v, seed, 0)) for k, v in VALID_QUERY.items() if k in query_names
            }
            schema_ref = next(iter(op.get("requestBody", {}).get("content", {}).values()), None)
            model = schema_ref["schema"]["$ref"].rsplit("/", 1)[1] if schema_ref else None
            fields: list[tuple[str, tuple[Any, ...]]] = [("query", (q,)) for q in query_names]
            if model is not None:
                assert model in BODIES, f"add a valid {model} to BODIES"
                schema = spec["components"]["schemas"][model]
                fields += [("body", p) for p in text_paths(spec, schema) if p]
            for where, location in fields:
                targets += 1
                check_target(sender, method.upper(), path, role, model, base_query, where, location)
    return targets


def check_target(
    sender: Sender,
    method: str,
    path: str,
    role: Role | None,
    model: str | None,
    base_query: dict[str, str],
    where: str,
    location: tuple[Any, ...],
) -> None:
    field = ".".join(str(part) for part in location)
    exempt = (model, field) in RAW_FIELDS

    @settings(
        max_examples=4,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(value=hostile_text())
    @example(value="Tên\x00")
    @example(value="\ud83d")
    @example(value="x" * 5000)
    @example(value="\u200fش\u0301👍\u200b")
    def one(value: str) -> None:
        body = _fill(BODIES[model], sender.seed, sender.n) if model else None
        query = dict(base_query)
        if where == "query":
            query[location[0]] = value
        else:
            body = _put(copy.deepcopy(body), location, value)
        status, answer = sender.send(method, path, role, query, body)
        assert status < 500, (method, path, field, value, status)
        if CONTROL.search(value) and not exempt:
            assert status == 422 and _named(answer, field), (method, path, field, answer)

    one()


async def test_odd_text_in_every_field_and_query_parameter_never_gives_a_500(
    client: Client, factory: Factory, site_id: int, tokens: dict[Role, str]
) -> None:
    seed = await _seed(client, factory, site_id, tokens) | {"site_id": site_id}
    seed |= {
        "declaration_id": seed["declaration"],
        "person_id": seed["person"],
        "filename": "console.css",
    }
    spec = await (await client.get("/api/v1/openapi.json")).json()
    sender = Sender(str(client.make_url("")).rstrip("/"), tokens, seed)
    targets = await asyncio.to_thread(run_every_target, spec, sender, seed)
    assert sender.server_errors == []
    assert targets > 60 and sender.n > 6 * targets  # every target, several values each


async def test_odd_text_in_the_login_form_is_a_wrong_login_not_a_500(
    client: Client, factory: Factory, site_id: int
) -> None:
    username, password = await factory.account(Role.GUARD, site_id=site_id)
    for name, secret in [
        (username + "\x00", password),
        ("\ud800", password),  # sent as the bytes of a surrogate, which is no UTF-8
        (username, password + "\x00"),
        (username, "\ud800" + password),
    ]:
        form = await (await client.get("/console/login")).text()  # a fresh CSRF token
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        fields = {"csrf_token": token.group(1), "username": name, "password": secret}
        body = "&".join(
            f"{k}={urllib.parse.quote(v, errors='surrogatepass')}" for k, v in fields.items()
        )
        resp = await client.post(
            "/console/login",
            data=body.encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )
        assert resp.status == 401, (name, secret, resp.status)
    assert (await login(client, username, password))[0] == 303
