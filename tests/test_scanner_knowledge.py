"""What the kiosk knows offline (scanner/knowledge.py): the copy in its SQLite, pulled
from a service that follows docs/protocol.md, consulted by verify-offline."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest

from scanner.knowledge import Knowledge
from scanner.screen import copy_age_words
from tests.cli_helpers import free_port
from tests.kiosk_helpers import FakeService, make_pass
from tests.test_scanner_kiosk import KEY, TRUST, config, run, shots

NOW = datetime(2021, 10, 9, 3, 0, tzinfo=UTC)


def answer(cursor: str, changes: dict[str, str | None], **extra: Any) -> dict[str, Any]:
    rows = [
        {"pass_id": p, "reason": r, "not_after": "2099-01-01T00:00:00+00:00"}
        for p, r in changes.items()
    ]
    return {"cursor": cursor, "changes": rows, "rules": {"max_offline_age_s": 600}, **extra}


@pytest.fixture
def service() -> FakeService:
    return FakeService(trust=TRUST, offline_policy="verify-offline")


@pytest.fixture
async def server_url(aiohttp_server: Any, service: FakeService) -> str:
    server = await aiohttp_server(service.app())
    return str(server.make_url("")).rstrip("/")


def test_the_copy_survives_a_restart_and_changes_forget_what_is_cleared(tmp_path: Path) -> None:
    copy = Knowledge(tmp_path / "k.sqlite3")
    copy.apply(answer("5.1", {"a": "pass_revoked", "b": "contact_traced"}, snapshot=True), now=NOW)
    copy.apply(answer("9.1", {"b": None, "c": "deny_listed"}, **{"from": "5.1"}), now=NOW)
    copy.close()
    again = Knowledge(tmp_path / "k.sqlite3")
    assert again.refused == {"a": "pass_revoked", "c": "deny_listed"}
    assert str(again.cursor) == "9.1"
    assert again.max_age_s == 600
    assert again.age_s(NOW + timedelta(seconds=42)) == 42
    # a snapshot replaces the whole copy
    again.apply(answer("12.3", {"d": "case_confirmed"}, snapshot=True), now=NOW)
    assert again.refused == {"d": "case_confirmed"}


def test_a_push_applies_only_where_it_follows_on(tmp_path: Path) -> None:
    copy = Knowledge(tmp_path / "k.sqlite3")
    assert copy.fits(answer("3.0", {}, **{"from": "1.0"})) is False  # no copy: pull
    copy.apply(answer("5.2", {}, snapshot=True), now=NOW)
    assert copy.fits(answer("7.2", {}, **{"from": "4.2"})) is True  # covers (5.2, 7.2]
    assert copy.fits(answer("9.2", {}, **{"from": "6.2"})) is False  # (5.2, 6.2] missed
    assert copy.fits(answer("9.1", {}, **{"from": "3.0"})) is False  # not comparable
    assert copy.fits(answer("5.2", {}, **{"from": "4.2"})) is None  # already known
    with pytest.raises(ValueError):
        copy.apply({"cursor": "6.2", "changes": [{"pass_id": "x"}], "rules": {}}, now=NOW)
    assert str(copy.cursor) == "5.2"


def test_offline_refusals_stale_copy_exits_and_repeats(tmp_path: Path) -> None:
    copy = Knowledge(tmp_path / "k.sqlite3")
    assert copy.refusal("a", now=NOW, direction="in") == "offline_stale"  # no copy at all
    copy.apply(answer("1.0", {"a": "pass_revoked"}, snapshot=True), now=NOW)
    assert copy.refusal("a", now=NOW, direction="in") == "pass_revoked"
    assert copy.refusal("a", now=NOW, direction="out") is None  # exits are never refused
    assert copy.refusal("b", now=NOW, direction="in") is None
    assert copy.refusal("b", now=NOW + timedelta(seconds=60), direction="in") == "offline_repeat"
    assert copy.refusal("b", now=NOW + timedelta(seconds=200), direction="in") is None
    assert copy.refusal("c", now=NOW + timedelta(seconds=601), direction="in") == "offline_stale"


def test_the_status_bar_words_for_the_copy_age() -> None:
    assert copy_age_words(None) == "Chưa có dữ liệu ngoại tuyến / No offline data"
    assert copy_age_words(12) == "Dữ liệu: 12 giây / Data: 12 s old"
    assert copy_age_words(300) == "Dữ liệu: 5 phút / Data: 5 min old"
    assert copy_age_words(5400) == "Dữ liệu: 1.5 giờ / Data: 1.5 h old"


async def test_a_cut_off_kiosk_denies_what_it_learnt_before_the_cut(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    revoked_id, suspended_id = uuid.uuid4(), uuid.uuid4()
    service.refused = {str(revoked_id): "pass_revoked", str(suspended_id): "case_confirmed"}
    await run(config(server_url, tmp_path), shots(None))  # learn the gate, keys and copy
    assert service.syncs == [None]
    good = make_pass(KEY)
    dead = f"http://127.0.0.1:{free_port()}"
    lines, _ = await run(
        replace(config(dead, tmp_path), cooldown=0.1),
        shots(
            make_pass(KEY, pass_id=revoked_id),
            make_pass(KEY, pass_id=suspended_id),
            good,
            None,
            good,
        ),
    )
    # On a loaded machine frames of one shot can come > cooldown apart and a held code
    # scans twice in a row: the same verdict again, which says nothing new.
    verdicts = [k for k, _ in groupby((v["decision"], v["reason"], v["offline"]) for v in lines)]
    assert verdicts == [
        ("deny", "pass_revoked", True),
        ("deny", "case_confirmed", True),
        ("allow", "offline_allowed", True),
        ("deny", "offline_repeat", True),  # the same pass again at this door
    ]
    # back online, the kiosk asks only for what changed since its copy
    await run(config(server_url, tmp_path), shots(None))
    assert service.syncs == [None, "1.0"]


async def test_a_copy_older_than_max_offline_age_denies_everyone(
    server_url: str, service: FakeService, tmp_path: Path
) -> None:
    service.rules = {"max_offline_age_s": 3600}
    await run(config(server_url, tmp_path), shots(None))
    copy = Knowledge(tmp_path / "knowledge.sqlite3")  # the copy last complete 2 h ago
    copy.apply(answer("1.0", {}, snapshot=True) | {"rules": service.rules}, now=NOW)
    copy.touch(datetime.now(UTC) - timedelta(hours=2))
    copy.close()
    dead = f"http://127.0.0.1:{free_port()}"
    lines, _ = await run(config(dead, tmp_path), shots(make_pass(KEY)))
    assert [(v["decision"], v["reason"]) for v in lines] == [("deny", "offline_stale")]
    assert lines[0]["message_en"] == "Offline data too old; please see the guard"


def test_a_kiosk_moved_to_another_site_drops_its_copy(tmp_path: Path) -> None:
    copy = Knowledge(tmp_path / "k.sqlite3")
    copy.apply(answer("5.1", {"a": "pass_revoked"}, snapshot=True, site_id=1), now=NOW)
    copy.moved(1)
    assert copy.refused == {"a": "pass_revoked"} and str(copy.cursor) == "5.1"
    copy.moved(2)  # its cursor means nothing at site 2: the next pull is the whole copy
    assert copy.refused == {} and copy.cursor is None and copy.age_s(NOW) is None
    copy.close()
    again = Knowledge(tmp_path / "k.sqlite3")
    assert again.refused == {} and again.cursor is None


def test_the_printed_pass_rule_follows_the_synced_copy(tmp_path: Path) -> None:
    copy = Knowledge(tmp_path / "k.sqlite3")
    assert copy.printed_rule("guard_check") == "guard_check"  # no copy yet: the hello's
    rules = {"max_offline_age_s": 600, "static_pass": "deny"}
    copy.apply(answer("1.0", {}, snapshot=True) | {"rules": rules}, now=NOW)
    assert copy.printed_rule("allow") == "deny"
    copy.close()
