"""scanner.trust (the cached trust list) and scanner.verdict (the kiosk's own judgement)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from checkin_core.keys import SigningKey, TrustList
from scanner.trust import TrustCache, fetch_trust
from scanner.verdict import GateInfo, Verdict, certain_rejection, judge_offline
from tests.kiosk_helpers import forge, make_pass

KEY = SigningKey.generate()
OTHER = SigningKey.generate()
TRUST = TrustList([KEY.trusted_key()])
NOW = datetime.now(UTC)


def test_cache_starts_empty_then_persists(tmp_path: Path) -> None:
    cache = TrustCache(tmp_path / "trust.json")
    assert not cache.load()
    assert len(cache.trust) == 0
    assert cache.update(TRUST)
    assert not cache.update(TRUST)  # unchanged: not rewritten
    assert cache.is_fresh(60)
    again = TrustCache(tmp_path / "trust.json")
    assert again.load()
    assert again.trust == TRUST
    assert not again.is_fresh(60)  # loaded from disk, not fetched


def test_a_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_text('{"keys": [{"kid": "nope"}]}')
    cache = TrustCache(path)
    assert not cache.load()
    path.write_text("{not json")
    assert not cache.load()
    assert len(cache.trust) == 0


def test_the_cache_is_written_atomically(tmp_path: Path) -> None:
    cache = TrustCache(tmp_path / "trust.json")
    cache.update(TRUST)
    assert json.loads((tmp_path / "trust.json").read_text()) == TRUST.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["trust.json"]


async def test_fetch_trust_reads_the_keys_endpoint(aiohttp_server: Any) -> None:
    from aiohttp import web

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(TRUST.to_json())

    app = web.Application()
    app.router.add_get("/api/v1/keys", keys)
    server = await aiohttp_server(app)
    import aiohttp

    async with aiohttp.ClientSession() as session:
        assert await fetch_trust(session, str(server.make_url("/")), limit_s=5) == TRUST


def test_certain_rejections() -> None:
    good = make_pass(KEY)
    assert certain_rejection(good, TRUST) is None
    assert certain_rejection("https://example.com", TRUST) == "malformed"
    assert certain_rejection(forge(good), TRUST) == "bad_signature"
    # an unknown key may be a rotation the kiosk has not heard of: not certain
    assert certain_rejection(make_pass(OTHER), TRUST) is None
    # expired is for the service (or the offline policy) to say
    old = make_pass(KEY, start=NOW - timedelta(days=2), valid_for=timedelta(hours=1))
    assert certain_rejection(old, TRUST) is None


def judge(payload: str, policy: Any = "verify-offline", site_id: int | None = 1) -> Verdict:
    return judge_offline(payload, policy=policy, trust=TRUST, site_id=site_id, now=NOW)


def test_offline_deny_policy_denies_even_a_good_pass() -> None:
    v = judge(make_pass(KEY), policy="deny")
    assert (v.decision, v.reason, v.offline) == ("deny", "offline_denied", True)
    assert v.message_vi == "Mất kết nối máy chủ; vui lòng gặp bảo vệ"


@pytest.mark.parametrize(
    ("payload", "decision", "reason"),
    [
        (make_pass(KEY, site_id=1), "allow", "offline_allowed"),
        (make_pass(KEY, site_id=2), "deny", "wrong_site"),
        (
            make_pass(KEY, start=NOW - timedelta(days=2), valid_for=timedelta(hours=1)),
            "deny",
            "expired",
        ),
        (make_pass(KEY, start=NOW + timedelta(hours=1)), "deny", "not_yet_valid"),
        (make_pass(OTHER), "deny", "unknown_key"),
        (forge(make_pass(KEY)), "deny", "bad_signature"),
        ("garbage", "deny", "malformed"),
    ],
)
def test_verify_offline_policy(payload: str, decision: str, reason: str) -> None:
    v = judge(payload)
    assert (v.decision, v.reason, v.source) == (decision, reason, "offline")


def test_verify_offline_without_a_known_site_fails_secure() -> None:
    assert judge(make_pass(KEY), site_id=None).reason == "offline_denied"


def test_verdict_from_a_decision_message() -> None:
    v = Verdict.from_decision(
        {
            "type": "decision",
            "event_id": "x",
            "decision": "allow",
            "reason": "welcome",
            "message_vi": "Mời vào",
            "message_en": "Welcome",
            "name": "N. V. An",
            "duplicate": False,
        }
    )
    assert v == Verdict("allow", "welcome", "Mời vào", "Welcome", "N. V. An", "service")
    assert Verdict.from_decision({"decision": "maybe", "reason": "expired"}).decision == "deny"


def test_gate_info_round_trips_through_the_hello() -> None:
    hello = {
        "type": "hello",
        "gate": {"id": 3, "name": "Cổng", "direction": "entrance", "offline_policy": "deny"},
        "site": {"id": 1, "name": "Trụ sở"},
        "server_time": "2021-10-09T03:00:00+00:00",
    }
    gate = GateInfo.from_hello(hello)
    assert (gate.gate_id, gate.site_id, gate.offline_policy) == (3, 1, "deny")
    assert GateInfo.from_hello(gate.to_hello()) == gate
    with pytest.raises(ValueError):
        GateInfo.from_hello({"gate": {"id": 3}})
    with pytest.raises(ValueError):
        GateInfo.from_hello(hello | {"gate": hello["gate"] | {"offline_policy": "open"}})  # type: ignore[operator]
