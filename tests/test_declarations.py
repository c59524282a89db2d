"""Declarations over HTTP: statuses, 422s, supersede, passes, revocation, review."""

from __future__ import annotations

import io
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image
from pyzbar.pyzbar import decode

from checkin_core.keys import TrustList
from checkin_core.passes import PassError, PassErrorReason, verify_pass
from service.events.log import verify_chain
from service.passes.keys import KEYS_KEY, KeyCommandError, key_store_for, retire, rotate
from service.passes.qr import QR_RENDERER_KEY, qr_version
from service.platform.settings import Settings
from service.web.auth import Role
from tests.declaring import declaration, staff
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]


async def declare(client: Client, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    resp = await client.post("/api/v1/declarations", json=body)
    assert resp.status == status, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def person_of(conn: asyncpg.Connection, result: dict[str, Any]) -> int | None:
    """The person a declaration was filed for (the public answer does not say)."""
    person: int | None = await conn.fetchval(
        "SELECT person_id FROM declarations WHERE id = $1", result["declaration_id"]
    )
    return person


async def trust(client: Client) -> TrustList:
    resp = await client.get("/api/v1/keys")
    assert resp.status == 200
    return TrustList.from_json(await resp.json())


async def test_cleared_declaration_gets_a_pass_that_verifies_offline(
    client: Client, site_id: int
) -> None:
    result = await declare(client, declaration(site_id))
    assert result["status"] == "cleared" and result["reasons"] == []
    issued = result["pass"]
    for name, path in (("qr_png_url", "qr.png"), ("qr_svg_url", "qr.svg")):
        assert re.fullmatch(rf"/api/v1/passes/{issued['id']}/{path}\?key=[\w-]{{22}}", issued[name])
    assert issued["not_after"] == result["valid_until"].replace(".", "+").split("+")[0] + "+00:00"

    png = await client.get(issued["qr_png_url"])
    assert png.status == 200 and png.content_type == "image/png"
    decoded = decode(Image.open(io.BytesIO(await png.read())))
    assert [d.data.decode("ascii") for d in decoded] == [issued["payload"]]
    claims = verify_pass(issued["payload"], await trust(client), now=datetime.now(UTC))
    assert str(claims.pass_id) == issued["id"] and claims.site_id == site_id
    assert len(issued["payload"]) == 150 and qr_version(issued["payload"]) == 6

    svg = await client.get(issued["qr_svg_url"])
    assert svg.status == 200 and svg.content_type == "image/svg+xml"
    assert (await svg.read()).startswith(b"<?xml")


async def test_review_and_rejected_declarations_get_no_pass(client: Client, site_id: int) -> None:
    review = await declare(client, declaration(site_id, symptoms=["cough"]))
    assert review["status"] == "review" and review["pass"] is None
    assert [r["code"] for r in review["reasons"]] == ["symptoms_reported"]
    assert review["reasons"][0]["action"] == "review"
    assert review["reasons"][0]["message_vi"].startswith("Bạn có triệu chứng")

    rejected = await declare(client, declaration(site_id, contact_f0=True))
    assert rejected["status"] == "rejected" and rejected["pass"] is None
    assert rejected["reasons"][0]["code"] == "contact_f0"
    # Neither is valid until anything: a review can be approved until a time, a
    # rejection not at all; only a cleared result has a valid_until.
    assert review["valid_until"] is None
    assert datetime.fromisoformat(review["review_until"]) > datetime.now(UTC)
    assert rejected["valid_until"] is None and rejected["review_until"] is None
    # Someone else (the same phone again would be a claim on a person with a review open).
    cleared = await declare(
        client, declaration(site_id, full_name="Đỗ Thị Lan", phone="0913 111 222")
    )
    assert cleared["valid_until"] is not None and cleared["review_until"] is None


async def test_a_review_answer_is_only_valid_when_approved(
    client: Client, factory: Factory, site_id: int
) -> None:
    guard = await factory.token(Role.GUARD, site_id=site_id)
    answers = {}
    for decision, phone in (("reject", "0912 000 001"), ("approve", "0912 000 002")):
        filed = await declare(client, declaration(site_id, symptoms=["cough"], phone=phone))
        resp = await client.post(
            f"/api/v1/declarations/{filed['declaration_id']}/review",
            json={"decision": decision},
            headers=bearer(guard),
        )
        assert resp.status == 200, await resp.text()
        answers[decision] = await resp.json()
    assert answers["reject"]["status"] == "rejected"
    assert answers["reject"]["valid_until"] is None and answers["reject"]["pass"] is None
    assert answers["approve"]["status"] == "cleared" and answers["approve"]["valid_until"]


async def test_staff_risk_level_requires_a_test(
    client: Client, site_id: int, conn: asyncpg.Connection
) -> None:
    await staff(conn, phone="+84987654321", risk_level="very_high")
    body = declaration(
        site_id,
        kind="staff",
        full_name="le van cuong",  # the roster's name, typed without diacritics
        phone="0987654321",
        host_name=None,
        purpose=None,
    )
    result = await declare(client, body)
    assert result["status"] == "rejected"
    assert [r["code"] for r in result["reasons"]] == ["test_required"]
    today = datetime.now(UTC).date().isoformat()
    body["last_test"] = {"kind": "rapid_antigen", "result": "negative", "taken_at": today}
    assert (await declare(client, body))["status"] == "cleared"


async def test_staff_kind_off_the_staff_list_goes_to_review(
    client: Client, site_id: int, conn: asyncpg.Connection
) -> None:
    """Not a 422 naming the staff list (that would tell who is on it): a claim."""
    body = declaration(site_id, kind="staff", host_name=None, purpose=None)
    result = await declare(client, body)
    assert result["status"] == "review" and result["pass"] is None
    assert [r["code"] for r in result["reasons"]] == ["identity_check"]
    assert await person_of(conn, result) is None
    assert await conn.fetchval("SELECT count(*) FROM people") == 0


async def test_bad_declarations_are_422_per_field(client: Client, site_id: int) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"phone": "12345"}, "phone", "phone_format"),
        ({"phone": None, "national_id": None}, "phone", "phone_or_national_id_required"),
        ({"national_id": "12"}, "national_id", "national_id_format"),
        ({"full_name": "An\ud800"}, "full_name", "invalid_unicode"),
        ({"full_name": "An\u202e"}, "full_name", "control_character"),
        ({"full_name": "x" * 121}, "full_name", "string_too_long"),
        ({"contact_f0": "no"}, "contact_f0", "bool_type"),
        ({"symptoms": ["sneezing"]}, "symptoms.0", "literal_error"),
        ({"purpose": None}, "purpose", "required_for_visitor"),
        ({"site_id": 999999}, "site_id", "site_not_found"),
        ({"site_id": 2**40}, "site_id", "site_not_found"),
        ({"extra": 1}, "extra", "extra_forbidden"),
    ]
    for overrides, field, code in cases:
        body = declaration(site_id) | overrides
        error = (await declare(client, body, 422))["error"]
        assert error["code"] == "validation_failed", overrides
        assert (field, code) in {(f["field"], f["code"]) for f in error["fields"]}, error
    body = declaration(site_id)
    del body["contact_f1"]
    fields = (await declare(client, body, 422))["error"]["fields"]
    assert fields == [
        {
            "field": "contact_f1",
            "code": "missing",
            "reason": "This field is required",
            "reason_en": "This field is required",
            "reason_vi": "Vui lòng điền thông tin này",
        }
    ]


async def test_bad_bodies(client: Client) -> None:
    resp = await client.post("/api/v1/declarations", data=b"{", headers=_json)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.post("/api/v1/declarations", data=b"\xff\xfe", headers=_json)
    assert resp.status == 400
    resp = await client.post("/api/v1/declarations", data=b"[1]", headers=_json)
    assert resp.status == 422
    resp = await client.post("/api/v1/declarations", data=b"x" * 20000, headers=_json)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"
    resp = await client.post("/api/v1/declarations", data=b"a=b")
    assert resp.status == 415


_json = {"Content-Type": "application/json"}


async def test_redeclaring_supersedes_and_revokes_the_old_pass(
    client: Client, site_id: int, conn: asyncpg.Connection
) -> None:
    first = await declare(client, declaration(site_id))
    body = declaration(site_id, national_id="001099012345", redeclare_key=first["redeclare_key"])
    second = await declare(client, body)
    person = await person_of(conn, first)
    assert person is not None and await person_of(conn, second) == person
    assert second["pass"]["id"] != first["pass"]["id"]
    old = await conn.fetchrow(
        "SELECT superseded_at FROM declarations WHERE id = $1", first["declaration_id"]
    )
    assert old["superseded_at"] is not None
    revoked = await conn.fetchrow(
        "SELECT revoked_reason FROM passes WHERE id = $1::text::uuid", first["pass"]["id"]
    )
    assert revoked["revoked_reason"] == "superseded"
    events = await conn.fetch(
        "SELECT kind, pass_id, detail FROM events WHERE kind = 'pass_revoked'"
    )
    assert [str(e["pass_id"]) for e in events] == [first["pass"]["id"]]
    assert (await verify_chain(conn, site_id)).broken is None
    # The national ID given the second time now finds the person too.
    body = declaration(
        site_id, phone=None, national_id="001099012345", redeclare_key=second["redeclare_key"]
    )
    third = await declare(client, body)
    assert await person_of(conn, third) == person
    history = await conn.fetchval("SELECT count(*) FROM declarations WHERE person_id = $1", person)
    assert history == 3


async def test_phone_and_id_of_two_people_is_a_claim_not_a_409(
    client: Client, site_id: int, conn: asyncpg.Connection
) -> None:
    """It used to answer 409 identity_conflict, telling that both are on file."""
    await declare(client, declaration(site_id, phone="0911111111"))
    await declare(client, declaration(site_id, phone="0922222222", national_id="123456789"))
    body = declaration(site_id, phone="0911111111", national_id="123456789")
    result = await declare(client, body)
    assert result["status"] == "review" and result["pass"] is None
    assert [r["code"] for r in result["reasons"]] == ["identity_check"]
    assert await person_of(conn, result) is None


async def test_admin_revokes_a_persons_passes_and_the_chain_verifies(
    client: Client, site_id: int, tokens: dict[Role, str], conn: asyncpg.Connection
) -> None:
    result = await declare(client, declaration(site_id))
    person_id = await person_of(conn, result)
    admin = bearer(tokens[Role.ADMIN])
    url = f"/api/v1/people/{person_id}/revoke-passes"
    resp = await client.post(url, json={"reason": "F1 theo thông báo của CDC"}, headers=admin)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["revoked"] == [result["pass"]["id"]]
    event = await conn.fetchrow("SELECT * FROM events WHERE kind = 'pass_revoked'")
    assert str(event["pass_id"]) == result["pass"]["id"]
    assert event["person_id"] == person_id and event["site_id"] == site_id
    assert event["detail"]["reason"] == "F1 theo thông báo của CDC"
    assert event["actor"].startswith("admin:")
    assert (await verify_chain(conn, site_id)).broken is None

    person = await client.get(f"/api/v1/people/{person_id}", headers=admin)
    body = await person.json()
    assert body["person"]["phone"] == "+84912345678"
    [current] = body["current_declarations"]
    assert current["pass"]["state"] == "revoked"
    assert current["pass"]["revoked_reason"] == "F1 theo thông báo của CDC"

    again = await client.post(url, json={"reason": "again"}, headers=admin)
    assert (await again.json())["revoked"] == []
    resp = await client.post(
        "/api/v1/people/999999/revoke-passes", json={"reason": "x"}, headers=admin
    )
    assert resp.status == 404
    resp = await client.post(url, json={"reason": ""}, headers=admin)
    assert resp.status == 422


async def test_revoke_one_pass(
    client: Client, site_id: int, tokens: dict[Role, str], conn: asyncpg.Connection
) -> None:
    result = await declare(client, declaration(site_id))
    admin = bearer(tokens[Role.ADMIN])
    url = f"/api/v1/passes/{result['pass']['id']}/revoke"
    resp = await client.post(url, json={"reason": "lost"}, headers=admin)
    assert resp.status == 200, await resp.text()
    resp = await client.post(url, json={"reason": "lost"}, headers=admin)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "pass_already_revoked"
    resp = await client.post(
        "/api/v1/passes/00000000-0000-4000-8000-000000000000/revoke",
        json={"reason": "x"},
        headers=admin,
    )
    assert resp.status == 404
    assert await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'pass_revoked'") == 1


async def test_review_approve_issues_a_pass_and_reject_does_not(
    client: Client,
    site_id: int,
    tokens: dict[Role, str],
    factory: Factory,
    conn: asyncpg.Connection,
) -> None:
    guard = bearer(tokens[Role.GUARD])
    pending = await declare(client, declaration(site_id, symptoms=["fatigue"]))
    queue = await (await client.get(f"/api/v1/sites/{site_id}/reviews", headers=guard)).json()
    assert [d["id"] for d in queue["declarations"]] == [pending["declaration_id"]]
    assert queue["declarations"][0]["reasons"][0]["code"] == "symptoms_reported"
    url = f"/api/v1/declarations/{pending['declaration_id']}/review"
    resp = await client.post(
        url, json={"decision": "approve", "note": "mệt do thức khuya"}, headers=guard
    )
    assert resp.status == 200, await resp.text()
    approved = await resp.json()
    assert approved["status"] == "cleared" and approved["pass"] is not None
    verify_pass(approved["pass"]["payload"], await trust(client), now=datetime.now(UTC))
    resp = await client.post(url, json={"decision": "reject"}, headers=guard)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_in_review"

    other = await declare(client, declaration(site_id, phone="0933333333", contact_f1=True))
    url = f"/api/v1/declarations/{other['declaration_id']}/review"
    resp = await client.post(url, json={"decision": "reject"}, headers=bearer(tokens[Role.ADMIN]))
    assert (await resp.json())["status"] == "rejected"
    kinds = [
        (r["detail"]["decision"], r["actor"].split(":")[0])
        for r in await conn.fetch(
            "SELECT detail, actor FROM events WHERE kind = 'declaration_reviewed' ORDER BY seq"
        )
    ]
    assert kinds == [("approve", "guard"), ("reject", "admin")]

    # A guard of another site may not review here.
    elsewhere = await factory.site()
    foreign = await declare(client, declaration(elsewhere, phone="0944444444", symptoms=["cough"]))
    url = f"/api/v1/declarations/{foreign['declaration_id']}/review"
    resp = await client.post(url, json={"decision": "approve"}, headers=guard)
    assert resp.status == 403
    resp = await client.post(url, json={"decision": "maybe"}, headers=guard)
    assert resp.status == 422
    resp = await client.post(
        "/api/v1/declarations/999999/review", json={"decision": "approve"}, headers=guard
    )
    assert resp.status == 404


async def test_guard_sees_only_people_of_its_site(
    client: Client,
    site_id: int,
    tokens: dict[Role, str],
    factory: Factory,
    conn: asyncpg.Connection,
) -> None:
    elsewhere = await factory.site()
    here = await person_of(conn, await declare(client, declaration(site_id)))
    there = await person_of(conn, await declare(client, declaration(elsewhere, phone="0955555555")))
    guard = bearer(tokens[Role.GUARD])
    assert (await client.get(f"/api/v1/people/{here}", headers=guard)).status == 200
    assert (await client.get(f"/api/v1/people/{there}", headers=guard)).status == 404
    auditor = bearer(tokens[Role.AUDITOR])
    assert (await client.get(f"/api/v1/people/{there}", headers=auditor)).status == 200


async def test_missing_private_key_is_503_not_500(
    client: Client, site_id: int, settings: Settings
) -> None:
    await declare(client, declaration(site_id))
    keys_dir = Path(settings.data_dir) / "keys"
    assert oct(keys_dir.stat().st_mode & 0o777) == "0o700"
    [key_file] = keys_dir.iterdir()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and key_file.stat().st_size == 32
    key_file.unlink()
    client.app[KEYS_KEY]._cache.clear()  # as a fresh instance would start
    error = (await declare(client, declaration(site_id, phone="0966666666"), 503))["error"]
    assert error["code"] == "signing_key_unavailable"
    # A declaration that needs no pass still goes through.
    review = await declare(client, declaration(site_id, phone="0977777777", symptoms=["cough"]))
    assert review["status"] == "review"


async def test_qr_images_render_in_another_process_behind_a_bounded_queue(
    client: Client, site_id: int
) -> None:
    renderer = client.app[QR_RENDERER_KEY]
    assert await renderer.call(os.getpid) != os.getpid()  # the workers are processes
    shown = (await declare(client, declaration(site_id)))["pass"]
    other = (await declare(client, declaration(site_id, phone="0966666666")))["pass"]
    first = await client.get(shown["qr_png_url"])
    assert first.status == 200
    # Every place in the pool taken: a new image is refused at once, not queued ...
    slots = [renderer.slot() for _ in range(renderer.capacity)]
    for slot in slots:
        await slot.__aenter__()
    try:
        busy = await client.get(other["qr_png_url"])
        assert busy.status == 503 and busy.headers["Retry-After"] == "1"
        assert (await busy.json())["error"]["code"] == "qr_busy"
        # ... while an image shown already comes from the cache, the same bytes.
        again = await client.get(shown["qr_png_url"])
        assert again.status == 200 and await again.read() == await first.read()
    finally:
        for slot in slots:
            await slot.__aexit__(None, None, None)
    assert (await client.get(other["qr_png_url"])).status == 200


async def test_unknown_pass_qr_is_404(client: Client) -> None:
    resp = await client.get("/api/v1/passes/00000000-0000-4000-8000-000000000000/qr.png")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "pass_not_found"
    resp = await client.get("/api/v1/passes/not-a-uuid/qr.png")
    assert resp.status == 404


async def test_key_rotation_and_retirement(
    client: Client, site_id: int, db_url: str, settings: Settings
) -> None:
    """Rotation: the old pass still verifies, new passes use the new key; a retired key
    leaves the trust list and its passes stop verifying."""
    first = await declare(client, declaration(site_id))
    conn = await asyncpg.connect(db_url)
    try:
        store = key_store_for(settings.data_dir)
        new_kid, old_kid = await rotate(conn, store)
        listed = await trust(client)
        assert {k.kid: k.status.value for k in listed} == {old_kid: "retiring", new_kid: "active"}
        now = datetime.now(UTC)
        assert verify_pass(first["pass"]["payload"], listed, now=now).key_id == old_kid
        second = await declare(client, declaration(site_id, phone="0988888888"))
        assert verify_pass(second["pass"]["payload"], listed, now=now).key_id == new_kid

        with pytest.raises(KeyCommandError, match="unexpired"):
            await retire(conn, store, old_kid, now=now)
        with pytest.raises(KeyCommandError, match="active"):
            await retire(conn, store, new_kid, now=now)
        assert await retire(conn, store, old_kid, now=now, force=True) == 1
        assert not (Path(settings.data_dir) / "keys" / f"{old_kid}.key").exists()
    finally:
        await conn.close()
    after = await trust(client)
    assert [k.kid for k in after] == [new_kid]
    with pytest.raises(PassError) as failed:
        verify_pass(first["pass"]["payload"], after, now=datetime.now(UTC))
    assert failed.value.reason is PassErrorReason.UNKNOWN_KEY
