"""The declaration pages other than the form: a result, a message, the printable pass.

Each page is a template (service/web/templates) and the few values it shows; the words
are the declaration pages' catalogue (service.declarations.words).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from service.declarations.filing import PASS_SQL, UUID_PATTERN, Outcome, pass_urls
from service.declarations.words import Lang, both, catalogue, lang_of, t
from service.passes.links import PASS_LINKS_KEY
from service.passes.state import pass_state
from service.platform.db import DB_KEY
from service.web.auth import public
from service.web.openapi import Q_LANG, documented
from service.web.pages import page
from service.web.public_limit import limit_public

REFRESH_S = 20  # how often a result waiting for review asks again (no script: a meta refresh)


def words(lang: Lang) -> dict[str, Any]:
    """What every declaration page's template is given: its language and its words."""
    return {"lang": lang, "t": catalogue(lang), "both": both}


def local(value: datetime, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%H:%M %d/%m/%Y")


def with_lang(url: str, lang: Lang) -> str:
    return f"{url}&{urlencode({'lang': lang})}"


def follow_url(outcome: Outcome, lang: Lang) -> str:
    return "/declare/result?" + urlencode({"key": outcome.redeclare_key, "lang": lang})


def result_page(request: web.Request, lang: Lang, outcome: Outcome) -> web.Response:
    """A result. Only a cleared one is valid until a time; one in review may be approved
    until then, and reloads itself as the declarer's own result page (GET,
    service.declarations.result_page), which shows the pass once approved; a rejected
    one has no time at all."""
    urls = None
    if outcome.pass_ is not None:
        urls = pass_urls(request.app, outcome.pass_.id)
        urls = urls | {
            "print_url": with_lang(urls["print_url"], lang),
            "phone_url": with_lang(urls["phone_url"], lang),
        }
    waiting = outcome.status == "review" and outcome.valid_until > datetime.now(UTC)
    again = {"site": outcome.site_id, "lang": lang, "redeclare": outcome.redeclare_key}
    context = words(lang) | {
        "title": t("result_title", lang),
        "outcome": outcome,
        "until": local(outcome.valid_until, outcome.site_timezone),
        "reasons": [r["message_vi" if lang == "vi" else "message_en"] for r in outcome.reasons],
        "urls": urls,
        "follow_url": follow_url(outcome, lang),
        "refresh_url": follow_url(outcome, lang) if waiting else None,
        "refresh_s": REFRESH_S,
        "again_url": "/declare?" + urlencode(again),
    }
    return page(request, "result.html", context)


def message_page(request: web.Request, lang: Lang, message: str, *, status: int) -> web.Response:
    context = words(lang) | {
        "title": t("title", lang),
        "message": message,
        "back_url": f"/declare?lang={lang}",
        "back": t("back", lang),
    }
    return page(request, "message.html", context, status=status)


async def linked_pass(request: web.Request) -> tuple[uuid.UUID, asyncpg.Record | None]:
    """The pass of the path and its holder, only with the link's key: the pass id is in
    every photo of the QR."""
    pass_id = uuid.UUID(request.match_info["pass_id"])
    if not request.app[PASS_LINKS_KEY].valid(pass_id, request.query.get("key")):
        return pass_id, None
    async with request.app[DB_KEY].connection() as conn:
        return pass_id, await conn.fetchrow(PASS_SQL, pass_id)


@public
@documented(query={"lang": Q_LANG})
async def print_pass(request: web.Request) -> web.Response:
    limit_public(request)
    lang = lang_of(request.query.get("lang"))
    pass_id, row = await linked_pass(request)
    if row is None:
        return message_page(request, lang, t("not_found", lang), status=404)
    context = words(lang) | {
        "title": t("print_title", lang),
        "row": row,
        "state": pass_state(row, datetime.now(UTC)),
        "urls": pass_urls(request.app, pass_id),
        "valid_from": local(row["not_before"], row["site_timezone"]),
        "valid_until": local(row["not_after"], row["site_timezone"]),
        "pass_id": str(pass_id),
    }
    return page(request, "print.html", context)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/passes/{pass_id:" + UUID_PATTERN + "}/print", print_pass, name="pass_print"),
    ]
