"""Each site sees only its own people: every route of the app, walked with every
site-limited token and console login, over the people and objects of another site.

The routes come from the app's router, so a route added later is walked too. A caller
limited to site A asks about a person known only at site B (and about B's site, passes,
declarations, deny-list entries, scans); whatever the answer, it never carries that
person's name, phone, national ID or organisation, and never a 500. Own-site requests
with the other person in them (A's presence, A's filters) are walked as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.people.scope import KNOWN_AT_SITE_SQL
from service.web.auth import PUBLIC, Role, access_of
from tests.checkin_helpers import Door, make_door, scan
from tests.factory import Factory, bearer
from tests.test_cli import env_for, run_cli
from tests.test_console_auth import login
from tests.test_roles import named_routes

Client = TestClient[Any, Any]

SECRET_NAME = "Phạm Thị Bí Mật"
SECRET_PHONE = "+84987650001"
SECRET_ID = "038199000777"
SECRET_ORG = "Công ty Ngoài Phạm Vi"


@dataclass
class World:
    own: Door
    other: Door
    stranger: int  # known at the other site only
    own_person: int  # known at the caller's site (the walk must see them: not vacuous)
    ids: dict[str, str]  # path parameters of the other site's objects
    other_denial: str  # a denied scan at the other site naming the stranger
    own_junk_denial: str  # a denied scan at the caller's site naming nobody


async def make_world(client: Client, factory: Factory, conn: asyncpg.Connection) -> World:
    own = await make_door(factory)
    other = await make_door(factory)
    stranger = int(
        await conn.fetchval(
            "INSERT INTO people (kind, full_name, phone, national_id, organisation)"
            " VALUES ('visitor', $1, $2, $3, $4) RETURNING id",
            SECRET_NAME,
            SECRET_PHONE,
            SECRET_ID,
            SECRET_ORG,
        )
    )
    decl = await factory.declaration(stranger, other.site_id)
    pass_id, payload = await factory.issued_pass(
        other.key, other.site_id, person_id=stranger, declaration_id=decl
    )
    await scan(client, other.kiosk[other.entrance], payload)  # a stay at the other site
    # A contact of the stranger at the other site, and a person of the caller's own.
    _, contact_payload = await person_with_pass(factory, other, "Đỗ Văn Kề")
    await scan(client, other.kiosk[other.entrance], contact_payload)
    own_person, own_payload = await person_with_pass(factory, own, "Lê Văn Nhà")
    await scan(client, own.kiosk[own.entrance], own_payload)
    # The stranger's pass shown at the caller's door: an event there that names them.
    wrong_site = await scan(client, own.kiosk[own.entrance_b], payload)
    assert wrong_site["reason"] == "wrong_site"
    review_person = await factory.person(full_name="Vũ Thị Chờ")
    review_decl = await factory.declaration(review_person, other.site_id, status="review")
    entry = await conn.fetchval(
        "INSERT INTO deny_list (person_id, site_id, reason, added_by)"
        " VALUES ($1, $2, 'x', 'test') RETURNING id",
        stranger,
        other.site_id,
    )
    await conn.execute(
        "INSERT INTO deny_list (person_id, site_id, reason, added_by)"
        " VALUES ($1, NULL, 'everywhere', 'test')",
        stranger,
    )
    area = await conn.fetchval(
        "INSERT INTO flagged_areas (site_id, name, flagged_from) VALUES ($1, 'Phường X', now())"
        " RETURNING id",
        other.site_id,
    )
    # A case at the other site: the stranger, with a contact who is a secret too.
    case = await conn.fetchval(
        "INSERT INTO health_cases (person_id, site_id, onset_on, window_from, window_to,"
        " contacts, recorded_by) VALUES ($1, $2, current_date, now() - interval '2 days',"
        " now(), $3, 'test') RETURNING id",
        stranger,
        other.site_id,
        [{"person_id": stranger, "full_name": SECRET_NAME}],
    )
    # A denial at the other site naming the stranger (their pass, at the exit: not inside).
    other_denial = await scan(client, other.kiosk[other.entrance], payload)
    assert other_denial["decision"] == "deny"
    own_junk = await scan(client, own.kiosk[own.entrance], "junk")
    ids = {
        "site_id": str(other.site_id),
        "gate_id": str(other.entrance),
        "person_id": str(stranger),
        "declaration_id": str(review_decl),
        "entry_id": str(entry),
        "area_id": str(area),
        "case_id": str(case),
        "pass_id": str(pass_id),
        "filename": "console.js",
        "username": "nobody",
    }
    return World(
        own,
        other,
        stranger,
        own_person,
        ids,
        other_denial["event_id"],
        own_junk["event_id"],
    )


async def person_with_pass(factory: Factory, door: Door, name: str) -> tuple[int, str]:
    person = await factory.person(full_name=name)
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    return person, payload


@dataclass
class Caller:
    label: str
    session: aiohttp.ClientSession
    headers: dict[str, str]


async def console_login(
    base: str, username: str, password: str
) -> tuple[aiohttp.ClientSession, str]:
    """A browser of its own (its own cookies) logged in to the console; and its CSRF."""
    session = aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True))
    status, csrf = await login(session, username, password)
    assert status == 303
    return session, csrf


@pytest.fixture
async def sessions() -> AsyncIterator[list[aiohttp.ClientSession]]:
    opened: list[aiohttp.ClientSession] = []
    yield opened
    for session in opened:
        await session.close()


async def callers(
    client: Client, factory: Factory, world: World, opened: list[aiohttp.ClientSession]
) -> list[Caller]:
    """Every kind of caller limited to the own site: tokens of each role, console logins."""
    base = str(client.make_url("")).rstrip("/")
    site = world.own.site_id
    plain = aiohttp.ClientSession(base)
    opened.append(plain)
    out = [
        Caller(f"{role} token", plain, bearer(await factory.token(role, site_id=site)))
        for role in (Role.GUARD, Role.AUDITOR, Role.ADMIN)
    ]
    out.append(Caller("kiosk token", plain, bearer(world.own.kiosk[world.own.entrance])))
    for role in (Role.GUARD, Role.AUDITOR, Role.ADMIN):
        username, password = await factory.account(role, site_id=site)
        session, csrf = await console_login(base, username, password)
        opened.append(session)
        out.append(Caller(f"{role} console", session, {"X-CSRF-Token": csrf}))
    return out


def url_for(route: web.AbstractRoute, ids: dict[str, str]) -> str:
    assert route.resource is not None
    info = route.resource.get_info()
    if "path" in info:
        return str(info["path"])
    if "formatter" not in info:  # the static files
        return f"{info['prefix']}/{ids['filename']}"
    wanted = {k: v for k, v in ids.items() if "{" + k in info["formatter"]}
    return str(route.resource.url_for(**wanted))


def query_for(world: World, site_id: int) -> dict[str, str]:
    """Every query parameter a route may read, pointed at the stranger."""
    today = datetime.now(UTC).date()
    return {
        "person": str(world.stranger),
        "person_id": str(world.stranger),
        "site_id": str(site_id),
        "q": "bi mat",  # the name folded, as guards type it (the answer echoes q)
        "from": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "date": today.isoformat(),
        "after_seq": "0",
    }


def body_for(world: World, site_id: int, denial: str) -> dict[str, Any]:
    return {
        "person_id": world.stranger,
        "site_id": site_id,
        "event_id": denial,
        "reason": "kiểm tra chéo địa điểm",
        "decision": "approve",
    }


def readable(text: str) -> str:
    """The body as a person reads it: JSON unescaped (the trace escapes non-ASCII)."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def leaks(text: str) -> list[str]:
    text = readable(text)
    found = [s for s in (SECRET_NAME, SECRET_PHONE, SECRET_ID, SECRET_ORG) if s in text]
    if SECRET_PHONE[3:] in text:  # the phone in its local form
        found.append("phone digits")
    return found


async def test_no_route_shows_another_sites_person_to_a_site_limited_caller(
    client: Client,
    app: web.Application,
    factory: Factory,
    conn: asyncpg.Connection,
    sessions: list[aiohttp.ClientSession],
) -> None:
    world = await make_world(client, factory, conn)
    everyone = await callers(client, factory, world, sessions)
    own = world.own.site_id
    other = world.other.site_id
    own_ids = world.ids | {"site_id": str(own), "gate_id": str(world.own.entrance)}
    # 1. all of the other site; 2. the caller's own site, with the stranger in it.
    variants = [
        (world.ids, query_for(world, other), body_for(world, other, world.other_denial)),
        (own_ids, query_for(world, own), body_for(world, own, world.own_junk_denial)),
    ]
    walked = 0
    for name, route in sorted(named_routes(app).items()):
        if access_of(route.handler) == PUBLIC:
            continue  # no caller to scope: the public pages have tests of their own
        for ids, query, body in variants:
            url = url_for(route, ids)
            for caller in everyone:
                resp = await caller.session.request(
                    route.method,
                    url,
                    params=query,
                    json=body if route.method in ("POST", "PUT") else None,
                    headers=caller.headers,
                    allow_redirects=False,
                )
                text = await resp.text(errors="replace")
                where = f"{route.method} {url} as {caller.label} ({name}): {resp.status}"
                assert resp.status < 500, f"{where} {text[:300]}"
                assert not leaks(text), f"{where} shows {leaks(text)}: {text[:500]}"
                walked += 1
    assert walked > 400
    # Nothing of the walk made the stranger known at the caller's site (an override).
    assert not await conn.fetchval(KNOWN_AT_SITE_SQL, world.stranger, own)


async def test_the_own_site_is_seen_and_the_other_answered_as_unknown(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    """The walk is not vacuous: the same caller reads its own people, and gets for the
    stranger exactly what an id that does not exist gets."""
    world = await make_world(client, factory, conn)
    auditor = bearer(await factory.token(Role.AUDITOR, site_id=world.own.site_id))
    window = query_for(world, world.own.site_id)
    nobody = int(await conn.fetchval("SELECT max(id) + 1000 FROM people"))
    for path, params in (
        ("/api/v1/trace", {"from": window["from"], "to": window["to"]}),
        ("/api/v1/people/{id}", {}),
        ("/api/v1/people/{id}/movements", {}),
    ):
        mine = await client.get(
            path.format(id=world.own_person),
            params=params | {"person": str(world.own_person)},
            headers=auditor,
        )
        assert mine.status == 200 and "Lê Văn Nhà" in readable(await mine.text())
        answers = []
        for person in (world.stranger, nobody):
            resp = await client.get(
                path.format(id=person), params=params | {"person": str(person)}, headers=auditor
            )
            body = await resp.json()
            answers.append((resp.status, body["error"]["code"], resp.headers["Content-Type"]))
        assert answers[0] == answers[1] and answers[0][:2] == (404, "person_not_found")
    # The audit log of the own site: the stranger's scan there is listed, nameless, and a
    # filter on the stranger finds what a filter on nobody finds.
    rows = await (
        await client.get("/api/v1/audit/events", params={"format": "json"}, headers=auditor)
    ).json()
    wrong_site = [e for e in rows["events"] if e["reason"] == "wrong_site"]
    assert [e["full_name"] for e in wrong_site] == [None]
    assert "Lê Văn Nhà" in {e["full_name"] for e in rows["events"]}
    for person in (world.stranger, nobody):
        resp = await client.get(
            "/api/v1/audit/events", params={"person_id": str(person)}, headers=auditor
        )
        assert resp.status == 200 and (await resp.json())["events"] == []
    # An unscoped auditor still reads everyone.
    everywhere = bearer(await factory.token(Role.AUDITOR))
    resp = await client.get(
        "/api/v1/trace",
        params={"person": str(world.stranger), "from": window["from"], "to": window["to"]},
        headers=everywhere,
    )
    assert resp.status == 200 and SECRET_NAME in readable(await resp.text())


async def test_trace_lists_only_contacts_of_the_callers_site(
    client: Client, factory: Factory, conn: asyncpg.Connection
) -> None:
    """A person known at both sites: a token of one site gets the contacts of its site."""
    world = await make_world(client, factory, conn)
    both = world.own_person
    _, other_payload = await factory.issued_pass(
        world.other.key, world.other.site_id, person_id=both
    )
    await scan(client, world.other.kiosk[world.other.entrance], other_payload)
    window = query_for(world, world.own.site_id)
    params = {"person": str(both), "from": window["from"], "to": window["to"]}
    scoped = bearer(await factory.token(Role.AUDITOR, site_id=world.own.site_id))
    body = await (await client.get("/api/v1/trace", params=params, headers=scoped)).json()
    assert {c["person_id"] for c in body["contacts"]} == set()  # alone at its own site
    assert not leaks(str(body)) and "Đỗ Văn Kề" not in str(body)
    everywhere = bearer(await factory.token(Role.AUDITOR))
    body = await (await client.get("/api/v1/trace", params=params, headers=everywhere)).json()
    assert world.stranger in {c["person_id"] for c in body["contacts"]}
    assert all(c["site_ids"] == [world.other.site_id] for c in body["contacts"])


def test_an_unknown_route_parameter_fails_the_walk_loudly(app: web.Application) -> None:
    """A new route with a path parameter the walk does not know would not be walked
    with another site's object: it must be added to make_world's ids."""
    known = {"site_id", "gate_id", "person_id", "declaration_id", "entry_id", "area_id", "case_id"}
    known |= {"pass_id", "filename", "username"}
    for route in named_routes(app).values():
        assert route.resource is not None
        info = route.resource.get_info()
        formatter = str(info.get("formatter", ""))
        for param in re.findall(r"\{(\w+)\}", formatter):
            assert param in known, f"{route}: add {param!r} to the walk"


async def test_the_cli_trace_of_one_site_answers_as_the_api_does(
    client: Client, factory: Factory, conn: asyncpg.Connection, db_url: str, tmp_path: Path
) -> None:
    world = await make_world(client, factory, conn)
    env = env_for(db_url, tmp_path)
    window = query_for(world, world.own.site_id)
    common = ["--from", window["from"], "--to", window["to"], "--site", str(world.own.site_id)]
    done = run_cli("trace", "--person", str(world.stranger), *common, env=env)
    assert done.returncode == 1 and "no person" in done.stderr
    assert not leaks(done.stdout + done.stderr)
    mine = run_cli("trace", "--person", str(world.own_person), *common, env=env)
    assert mine.returncode == 0, mine.stderr
