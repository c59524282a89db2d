"""Person search for the guard console: matching (accents, phone forms, national ID),
site scoping, statuses at the site, limits and bad parameters; and the guard's view of
a person and their movements."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.people.search import number_prefixes
from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer

SEARCH = "/api/v1/people"
Client = TestClient[Any, Any]
# Every accented Vietnamese vowel, and đ (lower case; the tests add the rest).
VIETNAMESE = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"


def folded(text: str) -> str:
    """The oracle: lower case, accents dropped, đ as d."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return bare.lower().replace("đ", "d")


async def person(conn: asyncpg.Connection, full_name: str, **ids: str | None) -> int:
    values = {"phone": None, "national_id": None, "organisation": None} | ids
    return int(
        await conn.fetchval(
            "INSERT INTO people (kind, full_name, phone, national_id, organisation)"
            " VALUES ('visitor', $1, $2, $3, $4) RETURNING id",
            full_name,
            values["phone"],
            values["national_id"],
            values["organisation"],
        )
    )


async def stay(
    conn: asyncpg.Connection, site_id: int, person_id: int, *, open_: bool = False
) -> None:
    entered = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    await conn.execute(
        "INSERT INTO presence (site_id, person_id, entered_at, entry_event, exited_at,"
        " exit_kind) VALUES ($1, $2, $3, 1, $4, $5)",
        site_id,
        person_id,
        entered,
        None if open_ else entered + timedelta(hours=2),
        None if open_ else "scan",
    )


async def search(client: Client, token: str, **params: str) -> dict[str, Any]:
    resp = await client.get(SEARCH, params=params, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def found(client: Client, token: str, q: str, **params: str) -> list[int]:
    return [p["id"] for p in (await search(client, token, q=q, **params))["people"]]


async def error_of(client: Client, token: str, params: dict[str, str], status: int) -> Any:
    resp = await client.get(SEARCH, params=params, headers=bearer(token))
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


# --- matching ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q", ["nguyen van a", "NGUYEN VAN A", "Nguyễn Văn A", "nguyễn  văn   a", "nguyen a", "van"]
)
async def test_names_match_without_accents_or_case(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str], q: str
) -> None:
    a = await person(conn, "Nguyễn Văn A", phone="+84912000001")
    await person(conn, "Trần Thị Bình", phone="+84912000002")
    assert await found(client, tokens[Role.ADMIN], q) == [a]


@pytest.mark.parametrize(
    ("stored", "q"),
    [
        ("Đặng Thị Ỷ", "dang thi y"),
        ("ĐẶNG THỊ Ỷ", "đặng thị ỷ"),
        ("Dang Thi Y", "Đặng Thị Ỷ"),
        # Decomposed (NFD) text on either side folds the same.
        (unicodedata.normalize("NFD", "Phạm Quốc Hưng"), "pham quoc hung"),
        ("Phạm Quốc Hưng", unicodedata.normalize("NFD", "Phạm Quốc Hưng")),
    ],
)
async def test_đ_upper_case_and_decomposed_accents(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str], stored: str, q: str
) -> None:
    someone = await person(conn, stored, phone="+84912000003")
    assert await found(client, tokens[Role.ADMIN], q) == [someone]


@pytest.mark.parametrize(
    "name",
    [
        VIETNAMESE,
        VIETNAMESE.upper(),
        unicodedata.normalize("NFD", VIETNAMESE[:34]),
        unicodedata.normalize("NFD", VIETNAMESE[34:]),
    ],
    ids=["lower", "upper", "nfd-1", "nfd-2"],
)
async def test_every_vietnamese_letter_folds_to_its_base(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str], name: str
) -> None:
    someone = await person(conn, name, phone="+84912000004")
    body = await search(client, tokens[Role.ADMIN], q=folded(name))
    assert [p["id"] for p in body["people"]] == [someone]
    assert body["people"][0]["matched"] == ["name"]


async def test_words_match_at_their_start_best_match_first(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str]
) -> None:
    anh = await person(conn, "Nguyễn Văn Anh", phone="+84912000011")
    an = await person(conn, "Nguyễn Văn An", phone="+84912000012")
    a = await person(conn, "Nguyễn Văn A", phone="+84912000013")
    later = await person(conn, "Trần Nguyễn Văn Ánh", phone="+84912000014")
    admin = tokens[Role.ADMIN]
    # The exact name, then names that start with it, then the rest.
    assert await found(client, admin, "nguyen van a") == [a, an, anh, later]
    assert await found(client, admin, "anh tran") == [later]
    assert await found(client, admin, "guyen") == []  # inside a word is no match
    # Wildcards of LIKE or regular expressions are plain text here.
    for pattern in ("%%", "__", "n_uyen", "\\%", ".*"):
        assert await found(client, admin, pattern) == [], pattern


@pytest.mark.parametrize(
    "q",
    [
        "0912345678",
        "+84912345678",
        "84912345678",
        "0912 345 678",
        "091-234-5678",
        "(091) 234.5678",
        "0912",
        "+84 912 34",
        "912345678",
    ],
)
async def test_phone_in_local_or_international_form_and_by_prefix(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str], q: str
) -> None:
    someone = await person(conn, "Lê Thị Hoa", phone="+84912345678")
    await person(conn, "Lê Thị Hồng", phone="+84812345678")
    body = await search(client, tokens[Role.ADMIN], q=q)
    [hit] = body["people"]
    assert hit["id"] == someone and hit["matched"] == ["phone"]
    assert hit["phone_masked"] == "*******678"


@pytest.mark.parametrize("q", ["0712345678", "+1912345678", "+8491299", "1234"])
async def test_other_numbers_do_not_match_the_phone(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str], q: str
) -> None:
    await person(conn, "Lê Thị Hoa", phone="+84912345678")
    assert await found(client, tokens[Role.ADMIN], q) == []


def test_number_prefixes() -> None:
    assert number_prefixes("0912 345 678") == ("912345678", "0912345678")
    assert number_prefixes("+84 912") == ("912", None)
    assert number_prefixes("+1 202") == (None, None)
    assert number_prefixes("84912345678") == ("912345678", "84912345678")
    assert number_prefixes("001090012345") == ("01090012345", "001090012345")
    assert number_prefixes("Nguyễn 09") == (None, None)
    assert number_prefixes("+84") == (None, None)


@pytest.mark.parametrize("q", ["001090012345", "0010900", "00109"])
async def test_national_id_exact_or_by_prefix(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str], q: str
) -> None:
    someone = await person(conn, "Võ Minh Tâm", national_id="001090012345")
    await person(conn, "Võ Minh Trí", national_id="079090012345")
    body = await search(client, tokens[Role.ADMIN], q=q)
    [hit] = body["people"]
    assert hit["id"] == someone and hit["matched"] == ["national_id"]
    assert hit["phone_masked"] is None
    assert await found(client, tokens[Role.ADMIN], "1090012345") == []  # not a prefix


async def test_exact_identifier_comes_before_prefixes(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str]
) -> None:
    longer = await person(conn, "Hồ Văn Bảy", national_id="123456789012")
    exact = await person(conn, "Hồ Văn Tám", national_id="123456789")
    assert await found(client, tokens[Role.ADMIN], "123456789") == [exact, longer]


async def test_results_show_no_phone_or_national_id(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str]
) -> None:
    await person(
        conn, "Lý Thị Mai", phone="+84987654321", national_id="038190000123", organisation="UBND"
    )
    body = await search(client, tokens[Role.ADMIN], q="ly thi mai")
    assert body == {
        "q": "ly thi mai",
        "site_id": None,
        "limit": 20,
        "truncated": False,
        "people": [
            {
                "id": body["people"][0]["id"],
                "full_name": "Lý Thị Mai",
                "kind": "visitor",
                "organisation": "UBND",
                "phone_masked": "*******321",
                "matched": ["name"],
                "declaration": None,
                "pass": None,
                "inside": None,
            }
        ],
    }


# --- site scoping -----------------------------------------------------------------------


async def test_a_guard_finds_only_people_known_at_its_site(
    client: Client,
    conn: asyncpg.Connection,
    factory: Factory,
    tokens: dict[Role, str],
    site_id: int,
) -> None:
    other = await factory.site()
    declared_here = await person(conn, "Phan Văn Một", phone="+84912000021")
    await factory.declaration(declared_here, site_id)
    stayed_here = await person(conn, "Phan Văn Hai", phone="+84912000022")
    await stay(conn, site_id, stayed_here)
    only_there = await person(conn, "Phan Văn Ba", phone="+84912000023")
    await factory.declaration(only_there, other)
    await stay(conn, other, only_there)
    nowhere = await person(conn, "Phan Văn Bốn", phone="+84912000024")
    guard, admin = tokens[Role.GUARD], tokens[Role.ADMIN]

    body = await search(client, guard, q="phan van")
    assert body["site_id"] == site_id
    assert sorted(p["id"] for p in body["people"]) == sorted([declared_here, stayed_here])
    assert await found(client, guard, "phan van", site_id=str(site_id)) == [
        p["id"] for p in body["people"]
    ]
    # Nor by an exact phone number.
    assert await found(client, guard, "0912000023") == []

    error = await error_of(client, guard, {"q": "phan", "site_id": str(other)}, 403)
    assert error["code"] == "forbidden"

    everyone = await found(client, admin, "phan van")
    assert sorted(everyone) == sorted([declared_here, stayed_here, only_there, nowhere])
    assert await found(client, admin, "phan van", site_id=str(other)) == [only_there]
    error = await error_of(client, admin, {"q": "phan", "site_id": "999999"}, 404)
    assert error["code"] == "site_not_found"


async def test_a_guard_reads_a_person_and_movements_of_its_site_only(
    client: Client, conn: asyncpg.Connection, factory: Factory
) -> None:
    door = await make_door(factory, name="Cục Thuế")
    other = await factory.site()
    walker = await person(conn, "Đỗ Thị Lan", phone="+84912000031")
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=walker)
    assert (await scan(client, door.kiosk[door.entrance], payload))["decision"] == "allow"
    assert (await scan(client, door.kiosk[door.exit], payload))["decision"] == "allow"
    await stay(conn, other, walker)  # a stay elsewhere is not the guard's business
    stayed = await person(conn, "Đỗ Văn Hùng", phone="+84912000032")
    await stay(conn, door.site_id, stayed)
    stranger = await person(conn, "Đỗ Văn Nam", phone="+84912000033")
    await stay(conn, other, stranger)
    guard = bearer(door.guard)

    resp = await client.get(f"/api/v1/people/{walker}/movements", headers=guard)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    [visit] = body["movements"]
    assert (visit["site_id"], visit["entry_gate"], visit["exit_gate"]) == (
        door.site_id,
        "Cổng A",
        "Cổng ra",
    )
    actor = await conn.fetchval(
        "SELECT actor FROM events WHERE kind = 'export' AND person_id = $1", walker
    )
    assert actor.startswith("guard:")

    # Someone who only stayed here (no declaration) is found, and may be opened.
    assert await found(client, door.guard, "do van hung") == [stayed]
    for url in (f"/api/v1/people/{stayed}", f"/api/v1/people/{stayed}/movements"):
        assert (await client.get(url, headers=guard)).status == 200

    for url in (f"/api/v1/people/{stranger}", f"/api/v1/people/{stranger}/movements"):
        resp = await client.get(url, headers=guard)
        assert resp.status == 404, url
        assert (await resp.json())["error"]["code"] == "person_not_found"
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM events WHERE kind = 'export' AND person_id = $1", stranger
        )
        == 0
    )


# --- statuses at the site ---------------------------------------------------------------


async def test_declaration_pass_and_inside_at_the_site(
    client: Client, conn: asyncpg.Connection, factory: Factory
) -> None:
    door = await make_door(factory)
    now = datetime.now(UTC).replace(microsecond=0)

    inside = await person(conn, "Bùi Văn Vào", phone="+84912000041")
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=inside)
    assert (await scan(client, door.kiosk[door.entrance], payload))["decision"] == "allow"

    reviewing = await person(conn, "Bùi Văn Chờ", phone="+84912000042")
    await factory.declaration(reviewing, door.site_id, status="review")
    rejected = await person(conn, "Bùi Văn Không", phone="+84912000043")
    await factory.declaration(rejected, door.site_id, status="rejected")

    lapsed = await person(conn, "Bùi Văn Cũ", phone="+84912000044")
    old = await factory.declaration(
        lapsed,
        door.site_id,
        submitted_at=now - timedelta(days=3),
        valid_until=now - timedelta(days=2),
    )
    await factory.issued_pass(
        door.key,
        door.site_id,
        person_id=lapsed,
        declaration_id=old,
        not_before=now - timedelta(days=3),
        not_after=now - timedelta(days=2),
    )

    revoked = await person(conn, "Bùi Văn Thu", phone="+84912000045")
    revoked_pass, _ = await factory.issued_pass(door.key, door.site_id, person_id=revoked)
    resp = await client.post(
        f"/api/v1/passes/{revoked_pass}/revoke",
        json={"reason": "F1 theo CDC"},
        headers=bearer(door.admin),
    )
    assert resp.status == 200, await resp.text()

    left = await person(conn, "Bùi Văn Ra", phone="+84912000046")
    await stay(conn, door.site_id, left)

    body = await search(client, door.guard, q="bui van", limit="100")
    by_id = {p["id"]: p for p in body["people"]}
    state = {
        pid: (p["declaration"]["status"], p["pass"]["status"], p["inside"])
        for pid, p in by_id.items()
    }
    assert state == {
        inside: ("cleared", "valid", True),
        reviewing: ("review", "none", False),
        rejected: ("rejected", "none", False),
        lapsed: ("expired", "expired", False),
        revoked: ("cleared", "revoked", False),
        left: ("none", "none", False),
    }
    assert by_id[revoked]["pass"]["id"] == str(revoked_pass)
    assert by_id[revoked]["pass"]["revoked_reason"] == "F1 theo CDC"
    assert by_id[left]["declaration"] == {"status": "none", "id": None, "valid_until": None}
    assert datetime.fromisoformat(by_id[inside]["pass"]["not_after"]) > now
    assert by_id[inside]["declaration"]["id"] is not None

    # The person's page tells the same about the pass.
    resp = await client.get(f"/api/v1/people/{revoked}", headers=bearer(door.guard))
    [current] = (await resp.json())["current_declarations"]
    assert current["pass"]["id"] == str(revoked_pass)
    assert (current["pass"]["state"], current["pass"]["revoked_reason"]) == (
        "revoked",
        "F1 theo CDC",
    )

    # Another site's view of the same people: nothing there.
    admin = await search(client, door.admin, q="bui van vao", site_id=str(door.site_id))
    assert admin["people"][0]["inside"] is True
    elsewhere = await factory.site()
    admin = await search(client, door.admin, q="bui van vao", site_id=str(elsewhere))
    assert admin["people"] == []


# --- limits and bad parameters ----------------------------------------------------------


async def test_limit_and_truncation(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str]
) -> None:
    for n in range(25):
        await person(conn, f"Hoàng Văn {n:02d}", phone=f"+849120001{n:02d}")
    admin = tokens[Role.ADMIN]
    body = await search(client, admin, q="hoang")
    assert (len(body["people"]), body["limit"], body["truncated"]) == (20, 20, True)
    body = await search(client, admin, q="hoang", limit="5")
    assert [p["full_name"] for p in body["people"]] == [f"Hoàng Văn {n:02d}" for n in range(5)]
    body = await search(client, admin, q="hoang", limit="100")
    assert (len(body["people"]), body["truncated"]) == (25, False)
    body = await search(client, admin, q="hoang", limit="25")
    assert (len(body["people"]), body["truncated"]) == (25, False)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"q": "a"}, "q"),
        ({"q": "  a  "}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "ab", "limit": "0"}, "limit"),
        ({"q": "ab", "limit": "101"}, "limit"),
        ({"q": "ab", "limit": "ten"}, "limit"),
        ({"q": "ab", "site_id": "x"}, "site_id"),
        ({"q": "ab", "site_id": "-1"}, "site_id"),
    ],
)
async def test_bad_parameters_are_400(
    client: Client, tokens: dict[Role, str], params: dict[str, str], parameter: str
) -> None:
    error = await error_of(client, tokens[Role.ADMIN], params, 400)
    assert error["code"] == "bad_parameter" and error["parameter"] == parameter


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}])
async def test_q_is_required(
    client: Client, tokens: dict[Role, str], params: dict[str, str]
) -> None:
    error = await error_of(client, tokens[Role.GUARD], params, 400)
    assert error["code"] == "missing_parameter"


async def test_a_hundred_characters_are_enough(
    client: Client, conn: asyncpg.Connection, tokens: dict[Role, str]
) -> None:
    name = "Tôn Nữ " + "Thị " * 28
    someone = await person(conn, name.strip()[:100], phone="+84912000051")
    assert await found(client, tokens[Role.ADMIN], folded(name.strip()[:100])) == [someone]


async def test_kiosks_may_not_search(client: Client, tokens: dict[Role, str]) -> None:
    error = await error_of(client, tokens[Role.KIOSK], {"q": "nguyen"}, 403)
    assert error["code"] == "forbidden"


async def test_a_guard_reads_a_person_with_masked_phone_and_id(
    client: Client, conn: asyncpg.Connection, factory: Factory
) -> None:
    door = await make_door(factory)
    someone = await person(conn, "Phạm Thu Hà", phone="+84912000041", national_id="001099012345")
    await stay(conn, door.site_id, someone)
    seen_by_guard = await (
        await client.get(f"/api/v1/people/{someone}", headers=bearer(door.guard))
    ).json()
    assert seen_by_guard["person"]["phone"] == "*********041"
    assert seen_by_guard["person"]["national_id"] == "*********345"
    seen_by_admin = await (
        await client.get(f"/api/v1/people/{someone}", headers=bearer(door.admin))
    ).json()
    assert seen_by_admin["person"]["phone"] == "+84912000041"
