"""The declaration web form (/declare): the form page and what its post answers.

Vietnamese by default, English with ``?lang=en``. Plain HTML forms, no scripts: the
form posts application/x-www-form-urlencoded and is shown again with per-field errors
and the values kept. The page is templates/declare.html; ``form_view`` is what it shows.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from service.declarations.filing import (
    MAX_DECLARATION_BYTES,
    DeclarationFieldError,
    file_declaration,
)
from service.declarations.form_input import (
    Errors,
    Values,
    errors_by_field,
    first,
    form_values,
    parse_form,
)
from service.declarations.model import DECLARATION_TZ, SYMPTOMS, VACCINATION_DOSES_MAX
from service.declarations.pages import message_page, result_page, words
from service.declarations.words import Lang, lang_of, t
from service.passes.keys import KEYS_KEY
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import public
from service.web.openapi import Q_LANG, documented, q_id
from service.web.pages import STATIC_DIR, page
from service.web.public_limit import limit_public

SITES_SQL = "SELECT id, name FROM sites ORDER BY name, id LIMIT 500"
SITE_ZONE_SQL = "SELECT timezone FROM sites WHERE id = $1"
MAX_FORM_FIELDS = 100


def form_view(
    lang: Lang, sites: list[tuple[int, str]], values: Values, errors: Errors, summary: list[str]
) -> dict[str, Any]:
    """What declare.html shows: the values as posted (a missing one is ""), the errors
    by field, the choices that come from data."""
    shown: defaultdict[str, str] = defaultdict(str, {k: first(v) for k, v in values.items()})
    other = "en" if lang == "vi" else "vi"
    keep = {"site": shown["site_id"], "redeclare": shown["redeclare_key"]}
    # Broken bytes in a posted value (lone surrogates) must not break the link: "?".
    query = urlencode({**{k: v for k, v in keep.items() if v}, "lang": other}, errors="replace")
    return words(lang) | {
        "title": t("title", lang),
        "values": shown,
        "errors": errors,
        "summary": summary,
        "sites": [(str(i), name) for i, name in sites],
        "other_lang": other,
        "switch_url": "/declare?" + query,
        "symptom_options": [(s, t(s, lang)) for s in sorted(SYMPTOMS)]
        + [("none", t("symptom_none", lang))],
        "chosen_symptoms": set(values.get("symptoms") or []),
        "doses": [(str(n), str(n)) for n in range(VACCINATION_DOSES_MAX + 1)],
    }


def form_page(
    request: web.Request,
    lang: Lang,
    sites: list[tuple[int, str]],
    values: Values,
    errors: Errors,
    *,
    status: int = 200,
) -> web.Response:
    summary = [t("fix_errors", lang)] if errors else []
    view = form_view(lang, sites, values, errors, summary)
    return page(request, "declare.html", view, status=status)


async def _sites(request: web.Request) -> list[tuple[int, str]]:
    async with request.app[DB_KEY].connection() as conn:
        return [(r["id"], r["name"]) for r in await conn.fetch(SITES_SQL)]


@public
@documented(query={"lang": Q_LANG, "site": q_id()})
async def declare_form(request: web.Request) -> web.Response:
    limit_public(request)
    lang = lang_of(request.query.get("lang"))
    sites = await _sites(request)
    site = request.query.get("site", "")
    if not site and len(sites) == 1:
        site = str(sites[0][0])
    values: Values = {
        "site_id": site,
        "last_test_kind": "none",
        "redeclare_key": request.query.get("redeclare", ""),
    }
    return form_page(request, lang, sites, values, {})


async def _site_zone(request: web.Request, values: Values) -> ZoneInfo:
    """The zone of an expected departure given as local time: the site's (the site's
    own errors are the model's to report)."""
    site = first(values.get("site_id")).strip()
    if not first(values.get("expected_departure")).strip() or not site.isdigit() or len(site) > 18:
        return DECLARATION_TZ
    async with request.app[DB_KEY].connection() as conn:
        zone = await conn.fetchval(SITE_ZONE_SQL, int(site))
    return ZoneInfo(zone) if zone else DECLARATION_TZ


async def _read_form(request: web.Request) -> list[tuple[str, str]]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise ApiError(
            415, "unsupported_media_type", "Send the form as application/x-www-form-urlencoded."
        )
    if request.content_length is not None and request.content_length > MAX_DECLARATION_BYTES:
        raise ApiError(413, "payload_too_large", "The form is too large.")
    raw = await request.read()
    if len(raw) > MAX_DECLARATION_BYTES:
        raise ApiError(413, "payload_too_large", "The form is too large.")
    try:
        # Bad UTF-8 becomes lone surrogates, which the text rules report per field.
        return parse_qsl(
            raw.decode("utf-8", "surrogateescape"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="surrogateescape",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:
        raise ApiError(413, "payload_too_large", "The form has too many fields.") from None


@public
async def declare_submit(request: web.Request) -> web.Response:
    limit_public(request)
    pairs = await _read_form(request)
    values = form_values(pairs)
    lang = lang_of(first(values.get("lang")) or request.query.get("lang"))
    now = datetime.now(UTC)
    try:
        zone = await _site_zone(request, values)
        decl = parse_form(values, now=now, lang=lang, zone=zone)
        async with request.app[DB_KEY].connection() as conn:
            outcome = await file_declaration(conn, request.app[KEYS_KEY], decl, now=now)
    except DeclarationFieldError as e:
        return await _form_again(request, lang, values, errors_by_field([e.as_field(lang)]))
    except ApiError as e:
        if e.code == "validation_failed":
            return await _form_again(request, lang, values, errors_by_field(e.details["fields"]))
        if e.code == "signing_key_unavailable":
            return message_page(request, lang, t("unavailable", lang), status=503)
        raise
    return result_page(request, lang, outcome)


async def _form_again(
    request: web.Request, lang: Lang, values: Values, errors: Errors
) -> web.Response:
    return form_page(request, lang, await _sites(request), values, errors, status=422)


_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
_STATIC_NAME = re.compile(r"[a-z0-9-]{1,40}\.(css|js)")


@functools.cache
def _static_bytes(name: str) -> bytes | None:
    path = STATIC_DIR / name
    if not _STATIC_NAME.fullmatch(name) or not path.is_file():
        return None
    return path.read_bytes()


@functools.cache
def _static_etag(name: str) -> str:
    return '"' + hashlib.sha256(_static_bytes(name) or b"").hexdigest()[:16] + '"'


@public
async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["filename"]
    body = _static_bytes(name)
    if body is None:
        raise ApiError(404, "not_found", "No such file.")
    # A page names its files with their hash (?v=): kept an hour. A console module
    # imports the others without one, so those are checked again (304 when unchanged)
    # and a new version never runs beside an old one.
    etag = _static_etag(name)
    headers = {
        "Cache-Control": "public, max-age=3600" if "v" in request.query else "no-cache",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=body,
        content_type=_STATIC_TYPES[name[name.rindex(".") :]],
        charset="utf-8",
        headers=headers,
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/declare", declare_form, name="declare_form"),
        web.post("/declare", declare_submit, name="declare_submit"),
        web.get(r"/static/{filename:[a-z0-9-]{1,40}\.(?:css|js)}", static_file, name="static"),
    ]
