"""Console accounts and sessions over HTTP: login, CSRF, lockout, logout, expiry, scope."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient

from service.identity.accounts import MAX_FAILED_LOGINS
from service.web.auth import Role
from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer

Client = TestClient[Any, Any]


async def login(
    client: Client | aiohttp.ClientSession, username: str, password: str
) -> tuple[int, str]:
    """Log in through the form; (status, the CSRF token of the console page or '').
    The caller's database needs a site for the console page to show one."""
    form = await (await client.get("/console/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    resp = await client.post(
        "/console/login",
        data={"csrf_token": token.group(1), "username": username, "password": password},
        allow_redirects=False,
    )
    if resp.status != 303:
        return resp.status, ""
    page = await (await client.get("/console")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    return 303, csrf.group(1)


async def test_console_redirects_to_login_until_logged_in(
    client: Client, factory: Factory, site_id: int
) -> None:
    resp = await client.get("/console", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/login"
    username, password = await factory.account(Role.GUARD, site_id=site_id)
    status, csrf = await login(client, username, password)
    assert status == 303 and csrf
    page = await client.get("/console")
    assert page.status == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    cookie = next(c for c in client.session.cookie_jar if c.key == "cg_session")
    assert cookie["httponly"] and cookie["samesite"] == "Strict"


async def test_wrong_password_and_unknown_user_are_refused_alike(
    client: Client, factory: Factory
) -> None:
    username, _ = await factory.account()
    wrong = await login(client, username, "not the password")
    unknown = await login(client, "nobody-here", "not the password")
    assert wrong == unknown == (401, "")
    assert (await client.get("/console", allow_redirects=False)).status == 303


async def test_login_without_its_csrf_cookie_is_refused(client: Client, factory: Factory) -> None:
    username, password = await factory.account()
    resp = await client.post(
        "/console/login",
        data={"csrf_token": "forged", "username": username, "password": password},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert "cg_session" not in {c.key for c in client.session.cookie_jar}


async def test_account_locks_after_repeated_failures(
    client: Client, factory: Factory, conn: asyncpg.Connection, site_id: int
) -> None:
    username, password = await factory.account()
    for _ in range(MAX_FAILED_LOGINS):
        assert (await login(client, username, "wrong password"))[0] == 401
    # Now even the right password is refused until the lock expires.
    assert (await login(client, username, password))[0] == 401
    await conn.execute(
        "UPDATE console_accounts SET locked_until = now() WHERE username = $1", username
    )
    assert (await login(client, username, password))[0] == 303


async def test_state_changes_need_the_csrf_header(client: Client, factory: Factory) -> None:
    door = await make_door(factory)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    _, csrf = await login(client, username, password)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    await scan(client, door.kiosk[door.entrance], payload)
    person_id = (await (await client.get(f"/api/v1/sites/{door.site_id}/presence")).json())[
        "people"
    ][0]["person_id"]
    url = f"/api/v1/sites/{door.site_id}/presence/{person_id}/exit"
    refused = await client.post(url, json={"reason": "left by the side door"})
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "csrf_failed"
    forged = await client.post(
        url, json={"reason": "left by the side door"}, headers={"X-CSRF-Token": "x" * 43}
    )
    assert forged.status == 403
    cross = await client.post(
        url,
        json={"reason": "left by the side door"},
        headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
    )
    assert (await cross.json())["error"]["code"] == "cross_origin"
    done = await client.post(
        url, json={"reason": "left by the side door"}, headers={"X-CSRF-Token": csrf}
    )
    assert done.status == 201, await done.text()
    events = await client.get(
        "/api/v1/audit/events", params={"kind": "manual_exit"}, headers=bearer(door.admin)
    )
    [event] = (await events.json())["events"]
    assert event["actor"] == f"guard:user:{username}"


async def test_a_guard_account_reaches_only_its_site_and_no_admin_action(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory)
    other_site = await factory.site()
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    _, csrf = await login(client, username, password)
    assert (await client.get(f"/api/v1/sites/{door.site_id}/presence")).status == 200
    assert (await client.get(f"/api/v1/sites/{other_site}/presence")).status == 403
    assert (await client.get(f"/console?site_id={other_site}")).status == 403
    person = await factory.person()
    deny = await client.post(
        "/api/v1/deny-list",
        json={"person_id": person, "reason": "test"},
        headers={"X-CSRF-Token": csrf},
    )
    assert deny.status == 403
    assert (await deny.json())["error"]["code"] == "forbidden"


async def test_logout_ends_the_session_everywhere(
    client: Client, factory: Factory, site_id: int
) -> None:
    username, password = await factory.account()
    _, csrf = await login(client, username, password)
    stolen = next(c for c in client.session.cookie_jar if c.key == "cg_session").value
    resp = await client.post("/console/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    # The old cookie, replayed, is worthless: the session is gone from the database.
    replay = await client.get("/console", cookies={"cg_session": stolen}, allow_redirects=False)
    assert replay.status == 303


async def test_disabling_an_account_or_expiry_ends_its_session(
    client: Client, factory: Factory, conn: asyncpg.Connection, site_id: int
) -> None:
    admin = await factory.token(Role.ADMIN)
    username, password = await factory.account()
    await login(client, username, password)
    assert (await client.get("/console", allow_redirects=False)).status == 200
    resp = await client.post(f"/api/v1/accounts/{username}/disable", headers=bearer(admin))
    assert resp.status == 200
    assert (await client.get("/console", allow_redirects=False)).status == 303
    assert (await login(client, username, password))[0] == 401

    other, other_password = await factory.account()
    await login(client, other, other_password)
    await conn.execute("UPDATE console_sessions SET expires_at = now() - interval '1 second'")
    assert (await client.get("/console", allow_redirects=False)).status == 303


async def test_admin_creates_accounts_through_the_api(
    client: Client, factory: Factory, site_id: int
) -> None:
    admin = await factory.token(Role.ADMIN)
    site = await factory.site()
    body = {"username": "bao.ve-1", "password": "correct horse battery", "role": "guard"}
    created = await client.post(
        "/api/v1/accounts", json=body | {"site_id": site}, headers=bearer(admin)
    )
    assert created.status == 201, await created.text()
    again = await client.post("/api/v1/accounts", json=body, headers=bearer(admin))
    assert again.status == 409 and (await again.json())["error"]["code"] == "username_taken"
    weak = await client.post(
        "/api/v1/accounts",
        json=body | {"username": "x2", "password": "short"},
        headers=bearer(admin),
    )
    assert weak.status == 422
    kiosk_role = await client.post(
        "/api/v1/accounts", json=body | {"username": "k1", "role": "kiosk"}, headers=bearer(admin)
    )
    assert kiosk_role.status == 422
    listed = await (await client.get("/api/v1/accounts", headers=bearer(admin))).json()
    [account] = [a for a in listed["accounts"] if a["username"] == "bao.ve-1"]
    assert account["site_id"] == site and "password_hash" not in account
    assert (await login(client, "bao.ve-1", "correct horse battery"))[0] == 303


async def test_roll_call_lists_everyone_inside_escaped(client: Client, factory: Factory) -> None:
    door = await make_door(factory)
    person = await factory.person(full_name="<b>Trần Thị Bình</b>")
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    await scan(client, door.kiosk[door.entrance], payload)
    username, password = await factory.account(Role.GUARD, site_id=door.site_id)
    await login(client, username, password)
    page = await (await client.get(f"/console/rollcall?site_id={door.site_id}")).text()
    assert "&lt;b&gt;Trần Thị Bình&lt;/b&gt;" in page and "<b>Trần" not in page
    assert page.count('type="checkbox"') == 1


def test_account_cli_creates_lists_and_disables(db_url: str) -> None:
    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
            check=False,
        )

    made = cli("account", "create", "truc.ban", "--role", "guard")
    assert made.returncode == 0, made.stderr
    password = made.stdout.strip()
    assert len(password) >= 16 and password not in made.stderr
    chosen = cli(
        "account",
        "create",
        "kiem.toan",
        "--role",
        "auditor",
        "--password-stdin",
        stdin="a long enough pw\n",
    )
    assert chosen.returncode == 0 and chosen.stdout == ""
    assert cli("account", "create", "truc.ban").returncode == 1
    assert cli("account", "create", "Bad Name").returncode == 2
    listed = cli("account", "list")
    assert "truc.ban" in listed.stdout and "kiem.toan" in listed.stdout
    assert cli("account", "disable", "truc.ban").returncode == 0
    assert cli("account", "disable", "truc.ban").returncode == 1
