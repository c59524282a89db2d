"""The guard console at /console: login, logout, the live page and the roll call.

The pages are rendered here; what is live on them (the feed, alerts, who is inside,
kiosks, the search, the chart) is drawn by static/console.js from the JSON API, which
the browser calls with its session cookie and CSRF token (service.web.auth). Vietnamese
by default; the language choice is kept in a cookie.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from aiohttp_session import get_session, new_session

from checkin_core.reasons import words_by_direction
from service.console.rollcall import groups as rollcall_groups
from service.console.words import WORDS, Lang, t
from service.door.roll_call import roll_call
from service.identity import accounts
from service.identity.hashing import HASH_POOL_KEY
from service.identity.login_guard import LOGIN_GUARD_KEY
from service.platform.clock import CLOCK_KEY
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.platform.offload import PoolBusy
from service.platform.ratelimit import TooManyRequests
from service.platform.settings import SETTINGS_KEY
from service.sites.door_rules import CheckinRules
from service.web.auth import Role, principal, public, require_site, requires, same_origin
from service.web.openapi import Q_LANG, documented, q_id, q_text
from service.web.pages import STATIC_DIR, page

LANG_COOKIE = "cg_lang"
LOGIN_CSRF_COOKIE = "cg_login_csrf"
# Scripts only from here, sockets and fetches only to here.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
RECENT_EVENTS = 50  # shown on opening the console, before the live ones


def lang_of(request: web.Request) -> Lang:
    chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if chosen == "en" else "vi"


def _keep_lang(request: web.Request, response: web.StreamResponse, lang: Lang) -> None:
    if request.query.get("lang") in ("vi", "en"):
        response.set_cookie(LANG_COOKIE, lang, samesite="Strict", max_age=365 * 86400)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


@functools.cache
def asset(name: str) -> str:
    """The URL of a static file, with its content hash so a new version is fetched."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


def words(lang: Lang) -> dict[str, Any]:
    """What every console template is given: its language, its words, its style sheet."""
    other = "en" if lang == "vi" else "vi"
    t_lang = functools.partial(t, lang=lang)
    return {"lang": lang, "other_lang": other, "t": t_lang, "css": asset("console.css")}


def _login_page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    lang = lang_of(request)
    token = secrets.token_urlsafe(24)
    context = words(lang) | {
        "title": t("title", lang),
        "error": error,
        "ended": "ended" in request.query,  # sent here by the console when its session ended
        "token": token,
    }
    response = page(request, "console_login.html", context, status=status, csp=CONSOLE_CSP)
    response.headers.update(_page_headers())
    # Login CSRF: the form's token must match this cookie (double submit).
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/console/login",
        httponly=True,
        samesite="Strict",
        secure=request.app[SETTINGS_KEY].secure_cookies,
    )
    _keep_lang(request, response, lang)
    return response


@public
@documented(query={"lang": Q_LANG, "ended": q_text(10)})
async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


@public
async def login_submit(request: web.Request) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "Send the login form as a form.")
    form = await request.post()
    sent = str(form.get("csrf_token", ""))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (expected and hmac.compare_digest(sent, expected) and same_origin(request)):
        return _login_page(request, error=t("stale_form", lang_of(request)), status=403)
    username = str(form.get("username", "")).strip().lower()[:40]
    password = str(form.get("password", ""))[:200]
    db, guard = request.app[DB_KEY], request.app[LOGIN_GUARD_KEY]
    address = guard.address(request)
    try:
        guard.admit(address, username)  # before any hashing or database work
        outcome = await accounts.authenticate(db, request.app[HASH_POOL_KEY], username, password)
    except (TooManyRequests, PoolBusy) as e:
        await guard.refused(db, address)
        key = "too_many_logins" if isinstance(e, TooManyRequests) else "login_busy"
        refused = _login_page(request, error=t(key, lang_of(request)), status=e.status)
        refused.headers.update(e.headers or {})
        return refused
    account = outcome.account
    if account is None:
        await guard.failed(db, username, address, outcome)
        return _login_page(request, error=t("bad_login", lang_of(request)), status=401)
    session = await new_session(request)  # a new key at login: no session fixation
    session.update(
        account_id=account.id,
        username=account.username,
        role=account.role.value,
        site_id=account.site_id,
        csrf=secrets.token_urlsafe(32),
    )
    response = _redirect("/console")
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@requires(Role.GUARD, Role.ADMIN, Role.AUDITOR, Role.HEALTH)
async def logout(request: web.Request) -> web.Response:
    (await get_session(request)).invalidate()
    return _redirect("/console/login")


SITES_SQL = "SELECT id, name FROM sites WHERE $1::bigint IS NULL OR id = $1 ORDER BY id"
SITE_SQL = """
SELECT id, code, name, timezone, capacity, checkin_rules FROM sites WHERE id = $1
"""
GATES_SQL = "SELECT id, name, direction FROM gates WHERE site_id = $1 ORDER BY id"
HEAD_SQL = "SELECT last_seq FROM event_chains WHERE chain_id = $1"


async def _sites_and_choice(
    request: web.Request, conn: asyncpg.Connection, scope: int | None
) -> tuple[list[asyncpg.Record], asyncpg.Record | None]:
    """The sites the caller may see, and the one asked for (?site_id) or the first."""
    sites = await conn.fetch(SITES_SQL, scope)
    raw = request.query.get("site_id", "")
    if not raw:
        return sites, (await conn.fetchrow(SITE_SQL, sites[0]["id"]) if sites else None)
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, "bad_parameter", "site_id must be a positive integer.")
    require_site(request, int(raw))
    site = await conn.fetchrow(SITE_SQL, int(raw))
    if site is None:
        raise ApiError(404, "site_not_found", f"No site with id {raw}.")
    return sites, site


@requires(Role.GUARD, Role.ADMIN, Role.AUDITOR, Role.HEALTH)
@documented(query={"lang": Q_LANG, "site_id": q_id()})
async def console_page(request: web.Request) -> web.Response:
    caller = principal(request)
    if not caller.account:  # the page runs on a session; an API token cannot drive it
        return _redirect("/console/login")
    lang = lang_of(request)
    async with request.app[DB_KEY].connection() as conn:
        sites, site = await _sites_and_choice(request, conn, caller.site_id)
        if site is None:
            note = words(lang) | {"title": t("title", lang), "note": t("no_site", lang)}
            return page(request, "console_note.html", note)
        gates = await conn.fetch(GATES_SQL, site["id"])
        head = await conn.fetchval(HEAD_SQL, site["id"]) or 0
    session = await get_session(request)
    config: dict[str, Any] = {
        "lang": lang,
        "site": {k: v for k, v in site.items() if k != "checkin_rules"},
        "sites": [dict(r) for r in sites],
        "gates": {str(g["id"]): g["name"] for g in gates},
        "after_seq": max(0, head - RECENT_EVENTS),
        "user": {"username": caller.label, "role": caller.role.value},
        "csrf": session["csrf"],
        **words_by_direction(),  # reasons, labels, warnings: one source for every screen
        "words": WORDS,  # the console's own catalogue (words.json), for its modules
        # Alerts are for denials still open to an override; the page's clock is set
        # against ours so a wrong laptop clock does not bring old ones back.
        "override_window_s": CheckinRules.model_validate(site["checkin_rules"]).override_window_s,
        "server_now": datetime.now(UTC).isoformat(),
    }
    context = words(lang) | {
        "title": f"{t('title', lang)} · {site['name']}",
        "script": asset("console.js"),
        "config": json.dumps(config, ensure_ascii=False),
        "csrf": session["csrf"],
        "tab_scripts": _tab_scripts(caller.role),
    }
    response = page(request, "console.html", context, csp=CONSOLE_CSP)
    response.headers.update(_page_headers())
    _keep_lang(request, response, lang)
    return response


# The tabs' modules beyond console.js, for the roles that may work them (the API
# decides anyway): the health desk's, and the site settings (door rules, webhook).
TAB_SCRIPTS: tuple[tuple[frozenset[Role], tuple[str, ...]], ...] = (
    (
        frozenset({Role.HEALTH, Role.ADMIN}),
        ("console-review.js", "console-health.js", "console-holds.js"),
    ),
    (frozenset({Role.ADMIN, Role.AUDITOR}), ("console-rules.js", "console-webhook.js")),
)


def _tab_scripts(role: Role) -> list[str]:
    return [asset(name) for roles, names in TAB_SCRIPTS if role in roles for name in names]


def _page_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CONSOLE_CSP,
        "X-Content-Type-Options": "nosniff",
        # Not no-referrer: under it browsers send "Origin: null", and we check the origin.
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


@requires(Role.GUARD, Role.ADMIN, Role.AUDITOR)
@documented(query={"lang": Q_LANG, "site_id": q_id()})
async def rollcall(request: web.Request) -> web.Response:
    """Everyone inside, in the three groups of the Inside tab, on paper, with a box to
    tick at the muster point."""
    caller = principal(request)
    lang = lang_of(request)
    async with request.app[DB_KEY].connection() as conn:
        _, site = await _sites_and_choice(request, conn, caller.site_id)
        if site is None:
            raise ApiError(404, "site_not_found", "There is no site yet.")
        call = await roll_call(conn, site["id"], request.app[CLOCK_KEY]())
    printed_at = call.now.astimezone(ZoneInfo(site["timezone"])).strftime("%H:%M %d/%m/%Y")
    context = words(lang) | {
        "title": t("rollcall", lang),
        "site": site,
        "everyone": len(call.inside) + len(call.probably_gone),
        "printed_at": printed_at,
        "groups": rollcall_groups(call, lang),
        "print_js": asset("print.js"),
    }
    response = page(request, "rollcall.html", context, csp=CONSOLE_CSP)
    response.headers.update(_page_headers())
    _keep_lang(request, response, lang)
    return response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/console/login", login_form, name="console_login_form"),
        web.post("/console/login", login_submit, name="console_login"),
        web.post("/console/logout", logout, name="console_logout"),
        web.get("/console", console_page, name="console"),
        web.get("/console/rollcall", rollcall, name="console_rollcall"),
    ]
