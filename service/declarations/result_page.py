"""The declarer's own result as it is now: GET /declare/result?key=KEY.

The key is the re-declare key the result page showed (the declaration keeps its SHA-256),
so only the declarer can open it, and a key that is not a current declaration's shows
nothing. A result in review reloads itself (a meta refresh: the form's pages run no
script) until an officer decides; an approved one then shows its pass, a rejected one
never does.
"""

from __future__ import annotations

from aiohttp import web

from service.declarations.filing import IssuedPass, Outcome
from service.declarations.pages import message_page, result_page
from service.declarations.words import Lang, lang_of, t
from service.platform.db import DB_KEY
from service.web.auth import hash_token, public
from service.web.openapi import Q_LANG, documented, q_text
from service.web.public_limit import limit_public

MAX_KEY_CHARS = 100
# A claim has no person yet: its name is the one declared. Only a valid pass is shown.
RESULT_SQL = """
SELECT d.id, d.person_id, d.site_id, d.status, d.reasons, d.valid_until, d.superseded_at,
       coalesce(pe.full_name, d.answers->>'full_name') AS full_name,
       s.name AS site_name, s.timezone AS site_timezone,
       p.id AS pass_id, p.kid, p.payload, p.not_before, p.not_after
FROM declarations d
JOIN sites s ON s.id = d.site_id
LEFT JOIN people pe ON pe.id = d.person_id
LEFT JOIN LATERAL (
    SELECT id, kid, payload, not_before, not_after FROM passes
    WHERE declaration_id = d.id AND revoked_at IS NULL AND not_after > now()
    ORDER BY issued_at DESC LIMIT 1
) p ON true
WHERE d.redeclare_key_hash = $1
"""


@public
@documented(query={"key": q_text(MAX_KEY_CHARS), "lang": Q_LANG})
async def declaration_result(request: web.Request) -> web.Response:
    limit_public(request)
    lang: Lang = lang_of(request.query.get("lang"))
    key = request.query.get("key", "")
    row = None
    if 0 < len(key) <= MAX_KEY_CHARS:
        async with request.app[DB_KEY].connection() as conn:
            row = await conn.fetchrow(RESULT_SQL, hash_token(key))
    if row is None:
        return message_page(request, lang, t("result_not_found", lang), status=404)
    if row["superseded_at"] is not None:
        return message_page(request, lang, t("result_superseded", lang), status=410)
    issued = None
    if row["pass_id"] is not None and row["status"] == "cleared":
        issued = IssuedPass(
            row["pass_id"], row["kid"], row["payload"], row["not_before"], row["not_after"]
        )
    outcome = Outcome(
        declaration_id=row["id"],
        person_id=row["person_id"],
        full_name=row["full_name"],
        site_id=row["site_id"],
        site_name=row["site_name"],
        site_timezone=row["site_timezone"],
        status=row["status"],
        reasons=row["reasons"],
        valid_until=row["valid_until"],
        pass_=issued,
        redeclare_key=key,  # still this declaration's: the re-declare link works on
    )
    return result_page(request, lang, outcome)


def routes() -> list[web.RouteDef]:
    return [web.get("/declare/result", declaration_result, name="declaration_result")]
