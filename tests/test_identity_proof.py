"""Issue 16.2: a phone number (or ID, or both, or a name) is not enough to take over a
visitor. Takeover attempts rename no one, supersede nothing and get no pass for the
victim, whose pass still opens the door at the real kiosk scan API; the re-declare key
of the victim's own result does; answers look alike whatever is on file."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.platform.settings import Settings
from service.web.auth import Role
from tests.checkin_helpers import scan
from tests.declaring import declaration, staff
from tests.factory import Factory, bearer
from tests.test_declare_form import form, post

Client = TestClient[Any, Any]
VICTIM = {"full_name": "Nguyễn Văn An", "phone": "0912345678", "national_id": "001099012345"}
# What differs between any two answers whoever they are for.
PER_DECLARATION = {"declaration_id", "redeclare_key", "valid_until", "review_until"}


@dataclass
class Victim:
    site_id: int
    kiosk: str
    guard: str
    person_id: int
    declared: dict[str, Any]


async def declare(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/api/v1/declarations", json=body)
    assert resp.status == 201, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


@pytest.fixture
async def victim(client: Client, factory: Factory, conn: asyncpg.Connection) -> Victim:
    site_id = await factory.site()
    gate = await factory.gate(site_id)
    kiosk = await factory.token(Role.KIOSK, gate_id=gate)
    guard = await factory.token(Role.GUARD, site_id=site_id)
    declared = await declare(client, declaration(site_id, **VICTIM))
    assert declared["status"] == "cleared"
    person_id = await conn.fetchval(
        "SELECT person_id FROM declarations WHERE id = $1", declared["declaration_id"]
    )
    return Victim(site_id, kiosk, guard, person_id, declared)


async def assert_untouched(client: Client, conn: asyncpg.Connection, v: Victim) -> None:
    """The victim's record, declaration and only pass are as they were; the pass opens."""
    person = await conn.fetchrow("SELECT * FROM people WHERE id = $1", v.person_id)
    assert (person["full_name"], person["phone"], person["national_id"]) == (
        VICTIM["full_name"],
        "+84912345678",
        VICTIM["national_id"],
    )
    current = await conn.fetch(
        "SELECT id FROM declarations WHERE person_id = $1 AND superseded_at IS NULL", v.person_id
    )
    assert [r["id"] for r in current] == [v.declared["declaration_id"]]
    passes = await conn.fetch(
        "SELECT id::text, revoked_at FROM passes WHERE person_id = $1", v.person_id
    )
    assert [(r["id"], r["revoked_at"]) for r in passes] == [(v.declared["pass"]["id"], None)]
    answer = await scan(client, v.kiosk, v.declared["pass"]["payload"])
    assert (answer["decision"], answer["reason"]) == ("allow", "welcome")


TAKEOVERS = {
    "phone_only": {"full_name": "Trần Kẻ Gian", "phone": VICTIM["phone"]},
    "id_only": {"full_name": "Trần Kẻ Gian", "phone": None, "national_id": VICTIM["national_id"]},
    "both_other_name": {**VICTIM, "full_name": "Trần Kẻ Gian"},
    "same_name_phone_only": {"full_name": VICTIM["full_name"], "phone": VICTIM["phone"]},
    # Everything right, but the victim holds a valid pass: that needs the key.
    "identical_without_key": dict(VICTIM),
    "forged_key": {**VICTIM, "redeclare_key": secrets.token_urlsafe(32)},
    # Not base64url at all (a NUL in it is a 422 naming the field: the text rules).
    "odd_key": {**VICTIM, "redeclare_key": "khóa lạ 🔑"},
}


@pytest.mark.parametrize("attempt", sorted(TAKEOVERS))
async def test_takeover_attempts_get_nothing_of_the_victims(
    client: Client, conn: asyncpg.Connection, victim: Victim, attempt: str
) -> None:
    result = await declare(client, declaration(victim.site_id, **TAKEOVERS[attempt]))
    assert result["status"] == "review" and result["pass"] is None
    assert [r["code"] for r in result["reasons"]] == ["identity_check"]
    claim = await conn.fetchrow(
        "SELECT person_id, status FROM declarations WHERE id = $1", result["declaration_id"]
    )
    assert (claim["person_id"], claim["status"]) == (None, "review")
    # The claim's own key proves nothing either.
    again = {**TAKEOVERS[attempt], "redeclare_key": result["redeclare_key"]}
    retry = await declare(client, declaration(victim.site_id, **again))
    assert retry["pass"] is None
    await assert_untouched(client, conn, victim)


async def test_another_persons_key_does_not_prove_the_victim(
    client: Client, conn: asyncpg.Connection, victim: Victim
) -> None:
    own = await declare(
        client, declaration(victim.site_id, full_name="Kẻ Gian", phone="0933333333")
    )
    assert own["status"] == "cleared"
    stolen = {**VICTIM, "full_name": "Kẻ Gian", "redeclare_key": own["redeclare_key"]}
    result = await declare(client, declaration(victim.site_id, **stolen))
    assert result["status"] == "review" and result["pass"] is None
    await assert_untouched(client, conn, victim)


async def test_the_form_cannot_take_over_either(
    client: Client, conn: asyncpg.Connection, victim: Victim
) -> None:
    status, page = await post(client, form(victim.site_id, full_name="Kẻ Gian", lang="en"))
    assert status == 200
    assert "Your identity papers need to be checked" in page and 'class="qr"' not in page
    assert "Nguyễn Văn An" not in page
    await assert_untouched(client, conn, victim)


async def test_the_redeclare_key_supersedes_and_renames(
    client: Client, conn: asyncpg.Connection, victim: Victim
) -> None:
    body = {
        **VICTIM,
        "full_name": "Nguyễn Văn Ân",
        "redeclare_key": victim.declared["redeclare_key"],
    }
    again = await declare(client, declaration(victim.site_id, **body))
    assert again["status"] == "cleared" and again["pass"]["id"] != victim.declared["pass"]["id"]
    assert await conn.fetchval("SELECT full_name FROM people WHERE id = $1", victim.person_id) == (
        "Nguyễn Văn Ân"
    )
    old = await scan(client, victim.kiosk, victim.declared["pass"]["payload"])
    assert (old["decision"], old["reason"]) == ("deny", "pass_superseded")
    new = await scan(client, victim.kiosk, again["pass"]["payload"])
    assert (new["decision"], new["reason"]) == ("allow", "welcome")
    # A key serves while its declaration is current: the first one is spent now.
    spent = await declare(client, declaration(victim.site_id, **body))
    assert spent["status"] == "review" and spent["pass"] is None
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM passes WHERE person_id = $1 AND revoked_at IS NULL",
            victim.person_id,
        )
        == 1
    )


async def test_the_forms_declare_again_link_carries_the_key(
    client: Client, conn: asyncpg.Connection, factory: Factory
) -> None:
    site_id = await factory.site()
    status, page = await post(client, form(site_id))
    assert status == 200 and "Khai báo lại" in page
    link = re.search(r'<p class="again"><a href="([^"]+)">', page)
    assert link, page
    url = html.unescape(link.group(1))
    assert dict(parse_qsl(urlsplit(url).query))["redeclare"]
    opened = await (await client.get(url)).text()
    hidden = re.search(r'name="redeclare_key" value="([\w-]+)"', opened)
    assert hidden, opened
    status, page = await post(
        client, [*form(site_id, full_name="Nguyễn Văn Ân"), ("redeclare_key", hidden.group(1))]
    )
    assert status == 200 and "Đủ điều kiện vào trụ sở" in page
    names = await conn.fetch("SELECT full_name FROM people")
    assert [r["full_name"] for r in names] == ["Nguyễn Văn Ân"]
    assert await conn.fetchval("SELECT count(*) FROM declarations WHERE superseded_at IS NULL") == 1


async def test_a_returning_visitor_without_the_link_and_no_valid_pass_declares_afresh(
    client: Client, conn: asyncpg.Connection, victim: Victim
) -> None:
    await conn.execute(
        "UPDATE passes SET not_after = now() - interval '1 minute',"
        " not_before = now() - interval '9 hours' WHERE person_id = $1",
        victim.person_id,
    )
    body = {**VICTIM, "full_name": "NGUYEN  VAN AN"}  # as typed on a phone without accents
    again = await declare(client, declaration(victim.site_id, **body))
    assert again["status"] == "cleared" and again["pass"] is not None
    filed = await conn.fetchval(
        "SELECT person_id FROM declarations WHERE id = $1", again["declaration_id"]
    )
    assert filed == victim.person_id
    # Nothing about the record changes without the key.
    assert (
        await conn.fetchval("SELECT full_name FROM people WHERE id = $1", filed)
        == (VICTIM["full_name"])
    )
    answer = await scan(client, victim.kiosk, again["pass"]["payload"])
    assert answer["decision"] == "allow"


def shape(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in PER_DECLARATION}


async def test_answers_do_not_tell_which_identifiers_are_on_file(
    client: Client, victim: Victim
) -> None:
    site = victim.site_id
    await declare(client, declaration(site, phone="0922222222", national_id="123456789"))
    unknown = {"full_name": "Người Lạ", "phone": "0944444444", "national_id": "987654321"}
    # With symptoms a new person goes to review too: the answers are the same.
    ill = {"symptoms": ["cough"]}
    answers = [
        await declare(client, declaration(site, **unknown, **ill)),
        await declare(client, declaration(site, **TAKEOVERS["phone_only"], **ill)),
        await declare(client, declaration(site, **TAKEOVERS["id_only"], **ill)),
        await declare(client, declaration(site, **TAKEOVERS["both_other_name"], **ill)),
        # The phone of one person and the ID of another: once a 409 identity_conflict.
        await declare(
            client, declaration(site, full_name="X", phone=VICTIM["phone"], national_id="123456789")
        ),
    ]
    assert all(set(a) == set(answers[0]) for a in answers)
    assert [shape(a) for a in answers[1:4]] == [shape(answers[0])] * 3
    assert shape(answers[0])["reasons"][0]["code"] == "symptoms_reported"
    # Without symptoms: the same reason, whichever identifier (or pair) matched.
    clean = [
        await declare(client, declaration(site, **TAKEOVERS[name]))
        for name in ("phone_only", "id_only", "both_other_name")
    ]
    assert [shape(a) for a in clean + answers[4:]] == [shape(clean[0])] * 4


async def test_an_officer_confirms_a_claim_after_checking_papers(
    client: Client, conn: asyncpg.Connection, victim: Victim
) -> None:
    claim = await declare(client, declaration(victim.site_id, **TAKEOVERS["both_other_name"]))
    guard = bearer(victim.guard)
    queue = await (
        await client.get(f"/api/v1/sites/{victim.site_id}/reviews", headers=guard)
    ).json()
    [waiting] = queue["declarations"]
    assert waiting["id"] == claim["declaration_id"]
    assert (waiting["identity_check"], waiting["person_id"]) == (True, None)
    assert waiting["full_name"] == "Trần Kẻ Gian"
    url = f"/api/v1/declarations/{claim['declaration_id']}/review"
    resp = await client.post(
        url, json={"decision": "approve", "note": "CCCD đã xem"}, headers=guard
    )
    assert resp.status == 200, await resp.text()
    approved = await resp.json()
    assert (approved["status"], approved["person_id"]) == ("cleared", victim.person_id)
    old = await scan(client, victim.kiosk, victim.declared["pass"]["payload"])
    assert old["reason"] == "pass_superseded"
    new = await scan(client, victim.kiosk, approved["pass"]["payload"])
    assert new["decision"] == "allow"
    assert await conn.fetchval("SELECT full_name FROM people WHERE id = $1", victim.person_id) == (
        "Trần Kẻ Gian"
    )


async def test_an_officer_rejecting_a_claim_leaves_the_victim_alone(
    client: Client, conn: asyncpg.Connection, victim: Victim
) -> None:
    claim = await declare(client, declaration(victim.site_id, **TAKEOVERS["phone_only"]))
    url = f"/api/v1/declarations/{claim['declaration_id']}/review"
    resp = await client.post(url, json={"decision": "reject"}, headers=bearer(victim.guard))
    assert resp.status == 200 and (await resp.json())["person_id"] is None
    await assert_untouched(client, conn, victim)


async def test_staff_need_the_rosters_name_too(
    client: Client, conn: asyncpg.Connection, factory: Factory
) -> None:
    site_id = await factory.site()
    await staff(conn, phone="+84987654321", full_name="Lê Văn Cường")
    body = declaration(site_id, kind="staff", phone="0987654321", host_name=None, purpose=None)
    other = await declare(client, body | {"full_name": "Phạm Văn Dũng"})
    assert other["status"] == "review" and other["pass"] is None
    same = await declare(client, body | {"full_name": "Lê Văn Cường"})
    assert same["status"] == "cleared"
    # Now the staff member holds a valid pass: only their key replaces it.
    again = await declare(client, body | {"full_name": "Lê Văn Cường"})
    assert again["status"] == "review" and again["pass"] is None
    keyed = body | {"full_name": "Lê Văn Cường", "redeclare_key": same["redeclare_key"]}
    assert (await declare(client, keyed))["status"] == "cleared"


async def test_print_page_and_qr_without_their_key_show_nothing(
    client: Client, victim: Victim
) -> None:
    issued = victim.declared["pass"]
    base = f"/passes/{issued['id']}/print"
    for query in ("", "?key=", "?key=" + "A" * 22, "?key=" + secrets.token_urlsafe(200)):
        resp = await client.get(base + query)
        text = await resp.text()
        assert resp.status == 404 and VICTIM["full_name"] not in text, query
    for image in (issued["qr_png_url"], issued["qr_svg_url"]):
        bare = image.split("?")[0]
        resp = await client.get(bare)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "pass_not_found"
        assert (await client.get(image)).status == 200
    with_key = await client.get(issued["print_url"])
    assert with_key.status == 200 and VICTIM["full_name"] in await with_key.text()


async def test_public_endpoints_are_rate_limited_per_client(
    aiohttp_client: Any, settings: Settings, factory: Factory
) -> None:
    site_id = await factory.site()
    limited = await aiohttp_client(
        create_app(settings=replace(settings, public_per_minute_per_address=4))
    )
    declared = await declare(limited, declaration(site_id))
    issued = declared["pass"]
    for url in (issued["qr_png_url"], issued["print_url"], "/declare"):
        assert (await limited.get(url)).status == 200
    for url in ("/declare", issued["qr_svg_url"], issued["print_url"]):
        resp = await limited.get(url)
        assert resp.status == 429, url
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"]["code"] == "too_many_requests"
    resp = await limited.post("/api/v1/declarations", json=declaration(site_id, phone="0933333333"))
    assert resp.status == 429
    # The door is not a public endpoint: the kiosk API does not share the limit.
    gate = await factory.gate(site_id)
    kiosk = await factory.token(Role.KIOSK, gate_id=gate)
    answer = await scan(limited, kiosk, issued["payload"])
    assert answer["decision"] == "allow"


async def test_one_key_used_twice_at_once_proves_only_one(
    client: Client, conn: asyncpg.Connection, victim: Victim
) -> None:
    body = declaration(victim.site_id, **VICTIM, redeclare_key=victim.declared["redeclare_key"])
    results = await asyncio.gather(*(declare(client, body) for _ in range(4)))
    assert sorted(r["status"] for r in results) == ["cleared", "review", "review", "review"]
    valid = await conn.fetchval(
        "SELECT count(*) FROM passes WHERE person_id = $1 AND revoked_at IS NULL", victim.person_id
    )
    assert valid == 1


async def test_a_flood_from_many_addresses_meets_the_instance_s_public_budget(
    aiohttp_client: Any, settings: Settings, factory: Factory
) -> None:
    """Each address within its own limit, all of them together past the instance's:
    503 public_busy with Retry-After, and the door still decides."""
    site_id = await factory.site()
    app = create_app(
        settings=replace(settings, public_per_second=3, trusted_proxies=frozenset({"127.0.0.1"}))
    )
    flooded = await aiohttp_client(app)
    statuses = []
    for n in range(8):
        resp = await flooded.get("/declare", headers={"X-Forwarded-For": f"198.51.100.{n + 1}"})
        statuses.append(resp.status)
        if resp.status == 503:
            body = await resp.json()
            assert body["error"]["code"] == "public_busy"
            assert body["error"]["message_vi"].startswith("Hệ thống đang bận")
            assert int(resp.headers["Retry-After"]) >= 1
    assert statuses[:3] == [200, 200, 200] and 503 in statuses[3:]
    gate = await factory.gate(site_id)
    kiosk = await factory.token(Role.KIOSK, gate_id=gate)
    assert (await scan(flooded, kiosk, "not a pass"))["decision"] == "deny"
