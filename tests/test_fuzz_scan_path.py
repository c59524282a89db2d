"""Hostile input on the scan path, fuzzed with hypothesis against the real service.

Whatever a kiosk sends, on its socket or over HTTP (``/api/v1/scans``, ``/batch``):

* any payload text in a well-formed scan is decided ``deny`` with a documented reason
  and recorded once as a scan attempt (payloads over 65,536 characters, or not valid
  Unicode, are refused as a bad message and recorded nowhere);
* any other message gets a clear 4xx (or ``invalid_message`` on the socket, which stays
  open), never a 500 or an ``internal_error``, and records nothing.

``make test`` runs a modest, reproducible number of examples per property. For a longer
hunt with fresh randomness each run::

    FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz_scan_path.py -q
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from checkin_core.keys import SigningKey
from checkin_core.passes import PAYLOAD_PREFIX, issue_pass
from checkin_core.reasons import REASONS
from service.checkin.wire import MAX_PAYLOAD_CHARS
from tests.checkin_helpers import Door, make_door, scan_body
from tests.factory import Factory, bearer

_EXAMPLES = os.environ.get("FUZZ_EXAMPLES")
fuzz = settings(
    max_examples=int(_EXAMPLES or 100),
    deadline=None,
    derandomize=_EXAMPLES is None,  # make test sees the same examples every run
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the service and its data serve every example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# What a pass can be refused for, before anything about the person is looked at.
PASS_REASONS = {
    "malformed",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_site",
    "pass_unknown",
}
B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
KIOSK_PATH = "/api/v1/kiosk/stream"
ANSWER_TIMEOUT_S = 30  # only so that a lost answer fails the test instead of hanging it

# Characters JSON text can carry (lone surrogates have their own property below), with
# the ones that tend to break things drawn more often.
_edge_char = st.sampled_from(
    ["\x00", "\x7f", "\ufeff", "\u202e", "\u2028", "\u0085", "\U0010ffff", "\U0001f600", "ệ"]
)
_char = st.one_of(
    st.characters(exclude_categories=["Cs"]), _edge_char, st.sampled_from(B45_ALPHABET)
)
_text = st.text(_char, max_size=200)
_long_text = st.builds(
    lambda unit, n: (unit * n)[:n],
    st.sampled_from(["A", "0", "\x00", "é", "\U0001f600", " ", "CG1:"]),
    st.integers(257, MAX_PAYLOAD_CHARS),
)
payload_text = st.one_of(
    _text,
    _text.map(PAYLOAD_PREFIX.__add__),
    st.text(st.sampled_from(B45_ALPHABET), min_size=140, max_size=160).map(PAYLOAD_PREFIX.__add__),
    _long_text,
)

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(),  # NaN and infinities too: json.dumps writes them, json.loads reads them
    _text,
)
json_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def scan_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A scan with some fields dropped, replaced by anything, or added."""
    body: dict[str, Any] = scan_body("CG1:" + draw(_text)) | {
        "direction": draw(st.sampled_from([None, "in", "out"])),
    }
    fields = ["event_id", "payload", "seen_at", "direction", "offline", "gate_id", "type"]
    for name in draw(st.lists(st.sampled_from(fields), max_size=3)):
        if draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = draw(
                st.one_of(
                    json_value,
                    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
                    st.just({"verdict": "allow", "reason": draw(_text)}),
                    st.uuids().map(str),
                )
            )
    return body


any_message = st.one_of(json_value, scan_shaped(), st.dictionaries(_text, json_value, max_size=6))


@pytest.fixture
async def door(factory: Factory) -> Door:
    return await make_door(factory)


@pytest.fixture
async def kiosk_ws(
    client: TestClient[Any, Any], door: Door
) -> AsyncIterator[ClientWebSocketResponse]:
    """One kiosk socket for the whole test: a bad message must never cost it."""
    async with client.ws_connect(KIOSK_PATH, headers=bearer(door.kiosk[door.entrance])) as ws:
        assert (await ws.receive_json())["type"] == "hello"
        yield ws
        assert not ws.closed


async def scan_rows(conn: asyncpg.Connection, event_id: Any) -> list[asyncpg.Record]:
    try:
        key = uuid.UUID(str(event_id))
    except ValueError:
        return []
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT kind, gate_id, decision, reason, detail FROM events WHERE event_id = $1", key
    )
    return rows


async def receive(ws: ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=ANSWER_TIMEOUT_S)
    assert msg.type == WSMsgType.TEXT, msg
    answer: dict[str, Any] = json.loads(msg.data)
    return answer


def assert_error_shape(body: Any) -> None:
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)


# --- any payload text: a recorded deny ------------------------------------------------


@st.composite
def signed_pass(draw: st.DrawFn, key: SigningKey, site_id: int) -> str:
    """A genuinely signed pass that is still not good here: unknown pass, another
    site, outside its window, or an unknown key."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + draw(
        st.sampled_from([-timedelta(days=30), -timedelta(hours=1), timedelta(days=2)])
    )
    return issue_pass(
        draw(st.sampled_from([key, SigningKey.from_bytes(bytes(32))])),
        pass_id=draw(st.uuids()),
        site_id=draw(st.sampled_from([site_id, site_id + 1, 2**32 - 1])),
        not_before=start,
        not_after=start + timedelta(hours=draw(st.integers(1, 72))),
    )


async def send_scan(
    client: TestClient[Any, Any], token: str, body: dict[str, Any], transport: str
) -> tuple[int, dict[str, Any]]:
    """One scan over the given road; (HTTP-like status, answer)."""
    if transport == "ws":
        async with client.ws_connect(KIOSK_PATH, headers=bearer(token)) as ws:
            await ws.receive_json()
            await ws.send_json({"type": "scan", **body})
            answer = await receive(ws)
            return (200 if answer["type"] == "decision" else 422), answer
    path, data = ("/api/v1/scans", body)
    if transport == "batch":
        path, data = "/api/v1/scans/batch", {"scans": [body]}
    resp = await client.post(path, json=data, headers=bearer(token))
    answer = await resp.json()
    if resp.status == 200 and transport == "batch":
        (answer,) = answer["decisions"]
    return resp.status, answer


@fuzz
@given(data=st.data(), transport=st.sampled_from(["http", "batch", "ws"]))
async def test_any_payload_text_is_a_recorded_deny(
    client: TestClient[Any, Any],
    door: Door,
    conn: asyncpg.Connection,
    data: st.DataObject,
    transport: str,
) -> None:
    payload = data.draw(st.one_of(payload_text, signed_pass(door.key, door.site_id)))
    await assert_recorded_deny(client, door, conn, payload, transport)


async def assert_recorded_deny(
    client: TestClient[Any, Any],
    door: Door,
    conn: asyncpg.Connection,
    payload: str,
    transport: str,
) -> None:
    body = scan_body(payload)
    status, answer = await send_scan(client, door.kiosk[door.entrance], body, transport)
    assert status == 200, answer
    assert answer["event_id"] == body["event_id"] and answer["duplicate"] is False
    assert answer["decision"] == "deny" and answer["reason"] in PASS_REASONS, answer
    assert answer["message_en"] == REASONS[answer["reason"]][2]
    ((kind, gate_id, decision, reason, detail),) = await scan_rows(conn, body["event_id"])
    assert (kind, gate_id, decision, reason) == ("scan", door.entrance, "deny", answer["reason"])
    assert detail["payload_len"] == len(payload)


@pytest.mark.parametrize("transport", ["http", "batch", "ws"])
async def test_nul_characters_in_a_payload_are_recorded(
    client: TestClient[Any, Any], door: Door, conn: asyncpg.Connection, transport: str
) -> None:
    """A QR code may hold NUL bytes; PostgreSQL's jsonb cannot (found by the fuzzer)."""
    await assert_recorded_deny(client, door, conn, "CG1:\x00" + "A\x00" * 200, transport)


def has_lone_surrogate(text: str) -> bool:
    """Still so once sent: a high and a low surrogate in a row make one character."""
    return any(0xD800 <= ord(c) <= 0xDFFF for c in json.loads(json.dumps(text)))


@fuzz
@given(
    payload=st.one_of(
        st.one_of(
            st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
            st.tuples(_text, st.characters(categories=["Cs"]), _text).map("".join),
        ).filter(has_lone_surrogate),
        st.integers(MAX_PAYLOAD_CHARS + 1, 3 * MAX_PAYLOAD_CHARS).map("0".__mul__),
    ),
    transport=st.sampled_from(["http", "batch", "ws"]),
)
async def test_a_payload_no_kiosk_can_send_is_refused_and_not_recorded(
    client: TestClient[Any, Any],
    door: Door,
    conn: asyncpg.Connection,
    payload: str,
    transport: str,
) -> None:
    """Lone surrogates (the kiosk decodes with errors="replace") and payloads beyond
    the 65,536 characters no QR code holds are a bad message, not a scan attempt."""
    body = scan_body(payload)
    status, answer = await send_scan(client, door.kiosk[door.entrance], body, transport)
    if transport == "ws":
        assert (answer["type"], answer["code"]) == ("error", "invalid_message"), answer
        assert answer["event_id"] == body["event_id"]
        fields = answer["fields"]
    else:
        assert status == 422, answer
        assert answer["error"]["code"] == "validation_failed"
        fields = answer["error"]["fields"]
    assert [f["field"].rsplit(".", 1)[-1] for f in fields] == ["payload"]
    assert await scan_rows(conn, body["event_id"]) == []


# --- any message: a clear refusal, the socket stays open -------------------------------


def is_valid_heartbeat(message: Any) -> bool:
    from service.checkin.kiosk_stream import Heartbeat

    if not isinstance(message, dict) or message.get("type") != "heartbeat":
        return False
    try:
        Heartbeat.model_validate({k: v for k, v in message.items() if k != "type"})
    except ValueError:
        return False
    return True


@fuzz
@given(
    message=st.one_of(
        any_message.map(json.dumps),
        scan_shaped().map(lambda m: json.dumps({"type": "scan", **m})),
        st.dictionaries(_text, json_value, max_size=4).map(
            lambda m: json.dumps({"type": "heartbeat", **m})
        ),
        _text,  # mostly not JSON at all
    )
)
@example(message="[" * 50_000 + "]" * 50_000)  # nested deeper than the parser recurses
@example(message='{"type": "scan", "event_id": ' + "9" * 5000 + "}")  # too many digits
@example(message='{"type": "scan", "payload": "\\u0000", "event_id": NaN}')
@example(message='{"type": "heartbeat", "fps": Infinity}')
async def test_any_message_on_the_kiosk_socket_is_answered_and_it_stays_open(
    kiosk_ws: ClientWebSocketResponse, conn: asyncpg.Connection, message: str
) -> None:
    try:
        parsed: Any = json.loads(message)
    except (ValueError, RecursionError):
        parsed = None
    await kiosk_ws.send_str(message)
    # A probe after it: the socket must still serve, and every message gets its answer.
    probe = scan_body("probe")
    await kiosk_ws.send_json({"type": "scan", **probe})
    expected = 1 if is_valid_heartbeat(parsed) else 2
    answers = [await receive(kiosk_ws) for _ in range(expected)]
    by_id = {a.get("event_id"): a for a in answers}
    assert by_id[probe["event_id"]]["reason"] == "malformed"
    if expected == 1:
        return
    (answer,) = [a for a in answers if a is not by_id[probe["event_id"]]]
    if answer["type"] == "decision":
        assert isinstance(parsed, dict) and parsed["type"] == "scan"
        (row,) = await scan_rows(conn, parsed["event_id"])
        assert row["decision"] == answer["decision"]
    else:
        assert answer["type"] == "error" and answer["code"] == "invalid_message", answer
        assert isinstance(answer["message"], str) and answer["message"]
        if (
            isinstance(parsed, dict)
            and parsed.get("type") == "scan"
            and isinstance(parsed.get("event_id"), str)
        ):  # the kiosk parks the scan the error names: it would fail again
            assert answer["event_id"] == parsed["event_id"]
            assert await scan_rows(conn, parsed["event_id"]) == []


@fuzz
@given(
    path=st.sampled_from(["/api/v1/scans", "/api/v1/scans/batch"]),
    body=st.one_of(
        any_message.map(lambda m: json.dumps(m).encode()),
        st.lists(scan_shaped(), min_size=1, max_size=3).map(
            lambda scans: json.dumps({"scans": scans}).encode()
        ),
        st.binary(max_size=200),
    ),
)
@example(path="/api/v1/scans", body=b"[" * 200_000 + b"]" * 200_000)
@example(path="/api/v1/scans/batch", body=b'{"scans": ' + b"1" * 5000 + b"}")
@example(path="/api/v1/scans", body=b"\xef\xbb\xbf{}")  # a UTF-8 byte order mark
@example(path="/api/v1/scans", body=b'{"payload": "\xed\xa0\x80"}')  # a surrogate in UTF-8
async def test_any_body_on_the_scan_routes_gets_a_clear_answer(
    client: TestClient[Any, Any], door: Door, conn: asyncpg.Connection, path: str, body: bytes
) -> None:
    before = await conn.fetchval("SELECT count(*) FROM events")
    resp = await client.post(
        path,
        data=body,
        headers=bearer(door.kiosk[door.entrance]) | {"Content-Type": "application/json"},
    )
    answer = await resp.json()
    assert resp.status in (200, 400, 422), answer
    if resp.status != 200:
        assert_error_shape(answer)
        assert answer["error"]["code"] in ("invalid_json", "validation_failed")
        assert await conn.fetchval("SELECT count(*) FROM events") == before
        return
    decisions = answer["decisions"] if path.endswith("batch") else [answer]
    for decision in decisions:
        assert decision["decision"] in ("allow", "deny") and decision["reason"] in REASONS
        assert len(await scan_rows(conn, decision["event_id"])) == 1
