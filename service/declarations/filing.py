"""Health declarations: filing, review, passes (issue, QR, revoke) and their SQL.

Filing runs in one transaction: ``service.declarations.identity_proof`` decides whom the
declaration is for (an existing person only with proof; otherwise a claim that waits for
review) with their row locked (two declarations of one person are done one after the
other), the previous declaration at the site is superseded and its pass revoked, the new
one is evaluated by ``service.declarations.policy`` and, when cleared, gets a pass
signed with the active key. Every revocation appends a ``pass_revoked`` event in the
same transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
import pydantic
from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict

from checkin_core.passes import issue_pass
from service.declarations.identity_proof import confirm_claim, new_redeclare_key, resolve_filer
from service.declarations.model import PURPOSE_MAX, Declaration
from service.declarations.official_rank import contradicts_official, judged_declaration
from service.declarations.policy import Evaluation, FlaggedArea, SiteRules, evaluate, reason
from service.events.fanout import FANOUT_KEY
from service.events.log import NewEvent, append_event, append_events
from service.passes.keys import KEYS_KEY, KeyStore, active_signing_key
from service.passes.links import PASS_LINKS_KEY
from service.passes.qr import render
from service.passes.state import pass_state
from service.people.records import person_json
from service.people.scope import person_not_found, require_visible
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, public, require_site, requires
from service.web.field_errors import field_error, field_errors
from service.web.openapi import documented
from service.web.public_limit import limit_public
from service.web.text import Text, blank_to_none
from service.web.validation import invalid, read_json, read_model

MAX_DECLARATION_BYTES = 16 * 1024
SELF_DECLARED = "self-declaration"  # the event actor of a public declaration
_MAX_SITE_ID = 2**32 - 1  # the pass format's site id field


class DeclarationFieldError(ApiError):
    """A 422 about one field that only the database can judge (site, staff list)."""

    def __init__(self, field: str, code: str) -> None:
        self.field = field
        self.field_code = code
        super().__init__(
            422, "validation_failed", "Some fields are invalid.", fields=[self.as_field("en")]
        )

    def as_field(self, lang: Literal["en", "vi"]) -> dict[str, str]:
        return field_error(self.field, self.field_code, lang=lang)


SITE_SQL = "SELECT id, name, timezone, declaration_rules FROM sites WHERE id = $1"
SITE_FLAGGED_AREAS_SQL = """
SELECT name, code, flagged_from, flagged_until FROM flagged_areas WHERE site_id = $1 ORDER BY id
"""
SUPERSEDE_SQL = """
UPDATE declarations SET superseded_at = $3
WHERE person_id = $1 AND site_id = $2 AND superseded_at IS NULL
RETURNING id
"""
INSERT_DECLARATION_SQL = """
INSERT INTO declarations (person_id, site_id, answers, status, reasons, submitted_at, valid_until,
                          redeclare_key_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id
"""
INSERT_PASS_SQL = """
INSERT INTO passes (id, person_id, site_id, declaration_id, kid, payload, not_before, not_after,
                    issued_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
PASS_SQL = """
SELECT p.id, p.person_id, p.site_id, p.declaration_id, p.kid, p.payload, p.not_before,
       p.not_after, p.issued_at, p.revoked_at, p.revoked_reason, s.name AS site_name,
       s.timezone AS site_timezone, pe.full_name
FROM passes p JOIN sites s ON s.id = p.site_id JOIN people pe ON pe.id = p.person_id
WHERE p.id = $1
"""
PASS_PAYLOAD_SQL = "SELECT payload FROM passes WHERE id = $1"
DECLARATION_FOR_REVIEW_SQL = """
SELECT id, person_id, site_id, answers, status, reasons, submitted_at, valid_until,
       superseded_at
FROM declarations WHERE id = $1 FOR NO KEY UPDATE
"""
SET_DECLARATION_PERSON_SQL = "UPDATE declarations SET person_id = $2 WHERE id = $1"
# A claim (no person yet) shows what was declared; the officer checks the papers. The
# health answers are the ones the officer judges.
REVIEW_QUEUE_SQL = """
SELECT d.id, d.person_id, coalesce(p.full_name, d.answers->>'full_name') AS full_name,
       coalesce(p.kind, d.answers->>'kind') AS kind,
       coalesce(p.organisation, d.answers->>'organisation') AS organisation, d.reasons,
       d.submitted_at, d.valid_until, d.person_id IS NULL AS identity_check,
       jsonb_build_object('symptoms', d.answers->'symptoms',
                          'contact_f0', d.answers->'contact_f0',
                          'contact_f1', d.answers->'contact_f1',
                          'travel_areas', d.answers->'travel_areas',
                          'last_test', d.answers->'last_test') AS answers,
       (SELECT count(*) FROM declarations m  -- declarations_mismatch_idx
        WHERE m.person_id = d.person_id AND m.site_id = d.site_id
          AND m.reasons @> '[{"code": "declaration_mismatch"}]') AS mismatches
FROM declarations d LEFT JOIN people p ON p.id = d.person_id
WHERE d.site_id = $1 AND d.status = 'review' AND d.superseded_at IS NULL AND d.valid_until > $2
ORDER BY d.submitted_at
"""
REVIEW_SQL = """
UPDATE declarations SET status = $2, reviewed_by = $3, reviewed_at = $4 WHERE id = $1
"""
# Revocations: $1 revoked_at, $2 reason, $3 by; what to revoke from $4 on.
_REVOKE_SET = """
UPDATE passes SET revoked_at = $1, revoked_reason = $2, revoked_by = $3
"""
_REVOKE_RETURNING = " AND revoked_at IS NULL RETURNING id, person_id, site_id, declaration_id"
REVOKE_DECLARATION_PASSES_SQL = (
    _REVOKE_SET + "WHERE declaration_id = ANY($4::bigint[])" + _REVOKE_RETURNING
)
# $5: only passes of this site (NULL: every site), for an admin limited to a site.
_REVOKE_SCOPE = " AND ($5::bigint IS NULL OR site_id = $5)"
REVOKE_PERSON_PASSES_SQL = (
    _REVOKE_SET + "WHERE person_id = $4 AND not_after > $1" + _REVOKE_SCOPE + _REVOKE_RETURNING
)
REVOKED_SITES_SQL = "SELECT DISTINCT site_id FROM passes WHERE id = ANY($1::uuid[])"
REVOKE_PASS_SQL = _REVOKE_SET + "WHERE id = $4" + _REVOKE_SCOPE + _REVOKE_RETURNING
PERSON_EXISTS_SQL = "SELECT 1 FROM people WHERE id = $1 FOR NO KEY UPDATE"
PERSON_SQL = """
SELECT id, kind, full_name, phone, national_id, organisation, position, risk_level,
       created_at, updated_at
FROM people WHERE id = $1
"""
CURRENT_DECLARATIONS_SQL = """
SELECT d.id, d.site_id, d.status, d.reasons, d.submitted_at, d.valid_until, d.reviewed_by,
       d.reviewed_at, p.id AS pass_id, p.kid, p.not_before, p.not_after, p.revoked_at,
       p.revoked_reason
FROM declarations d LEFT JOIN passes p ON p.declaration_id = d.id
WHERE d.person_id = $1 AND d.superseded_at IS NULL AND ($2::bigint IS NULL OR d.site_id = $2)
ORDER BY d.site_id, p.issued_at DESC NULLS LAST
"""


@dataclass(frozen=True)
class IssuedPass:
    id: uuid.UUID
    kid: str
    payload: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class Outcome:
    """A filed declaration, as the API answers and the form shows it."""

    declaration_id: int
    person_id: int | None  # None: a claim, waiting for review (service.declarations.identity_proof)
    full_name: str  # as the person's record has it, or as declared for a claim
    site_id: int
    site_name: str
    site_timezone: str
    status: str
    reasons: list[dict[str, str]]
    valid_until: datetime
    pass_: IssuedPass | None
    redeclare_key: str  # shown once: proof for the declarer's next declaration


def parse_declaration(data: Any, *, now: datetime, lang: Literal["en", "vi"] = "en") -> Declaration:
    """Validate a declaration body, or raise the 422 with per-field errors."""
    try:
        return Declaration.model_validate(data, context={"now": now})
    except pydantic.ValidationError as e:
        raise invalid(field_errors(e, lang=lang)) from None


def _floor_seconds(value: datetime) -> datetime:
    # The pass payload holds whole seconds; the row says exactly what the payload says.
    return value.astimezone(UTC).replace(microsecond=0)


async def issue_pass_for(
    conn: asyncpg.Connection,
    store: KeyStore,
    *,
    person_id: int,
    site_id: int,
    declaration_id: int,
    valid_until: datetime,
    now: datetime,
) -> IssuedPass | None:
    """Sign and store the pass of a cleared declaration (None if no second of it is left)."""
    not_before, not_after = _floor_seconds(now), _floor_seconds(valid_until)
    if not_after <= not_before:
        return None
    key = await active_signing_key(conn, store)
    pass_id = uuid.uuid4()
    payload = issue_pass(
        key, pass_id=pass_id, site_id=site_id, not_before=not_before, not_after=not_after
    )
    await conn.execute(
        INSERT_PASS_SQL,
        pass_id,
        person_id,
        site_id,
        declaration_id,
        key.key_id,
        payload,
        not_before,
        not_after,
        now,
    )
    return IssuedPass(pass_id, key.key_id, payload, not_before, not_after)


async def revoke(
    conn: asyncpg.Connection,
    sql: str,
    *selection: Any,
    reason: str,
    actor: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Revoke the passes ``sql`` selects and log each; call inside a transaction."""
    rows = sorted(await conn.fetch(sql, now, reason, actor, *selection), key=lambda r: r["id"])
    await append_events(
        conn,
        [
            NewEvent(
                kind="pass_revoked",
                actor=actor,
                occurred_at=now,
                site_id=r["site_id"],
                person_id=r["person_id"],
                pass_id=r["id"],
                detail={"reason": reason, "declaration_id": r["declaration_id"]},
            )
            for r in rows
        ],
    )
    return [r["id"] for r in rows]


async def supersede_current(
    conn: asyncpg.Connection, person_id: int, site_id: int, *, actor: str, now: datetime
) -> None:
    """Supersede the person's current declaration at the site and revoke its passes."""
    previous = [r["id"] for r in await conn.fetch(SUPERSEDE_SQL, person_id, site_id, now)]
    if previous:
        await revoke(
            conn, REVOKE_DECLARATION_PASSES_SQL, previous, reason="superseded", actor=actor, now=now
        )


async def file_declaration(
    conn: asyncpg.Connection, store: KeyStore, decl: Declaration, *, now: datetime
) -> Outcome:
    """File a validated declaration: supersede the previous one, evaluate, issue a pass."""
    if decl.site_id > _MAX_SITE_ID:
        raise DeclarationFieldError("site_id", "site_not_found")
    async with conn.transaction():
        site = await conn.fetchrow(SITE_SQL, decl.site_id)
        if site is None:
            raise DeclarationFieldError("site_id", "site_not_found")
        filer = await resolve_filer(conn, decl, now=now)
        if filer.refused_staff:
            raise DeclarationFieldError("kind", "not_staff")
        person = filer.person
        rules = SiteRules.model_validate(site["declaration_rules"])
        areas = [
            FlaggedArea.model_validate(dict(r))
            for r in await conn.fetch(SITE_FLAGGED_AREAS_SQL, decl.site_id)
        ]
        person_id = person.id if person else None
        official_only = rules.official_tests_required
        contradicted = await contradicts_official(
            conn, person_id, decl, official_only=official_only, now=now
        )
        result: Evaluation = evaluate(
            await judged_declaration(conn, person_id, decl, official_only=official_only),
            rules,
            flagged_areas=areas,
            # A claim is judged without the record it claims (no staff risk level).
            risk_level=person.risk_level if person and decl.kind == "staff" else None,
            now=now,
            site_timezone=site["timezone"],
            extra=[reason("declaration_mismatch", "review")] if contradicted else [],
        )
        status, found = result.status, result.reasons
        if person is None and status == "cleared":
            status, found = "review", [reason("identity_check", "review")]
        if person is not None:
            await supersede_current(conn, person.id, site["id"], actor=SELF_DECLARED, now=now)
        reasons = [dataclasses.asdict(r) for r in found]
        answers = decl.model_dump(mode="json")
        answers["symptoms"] = sorted(answers["symptoms"])
        redeclare_key, redeclare_hash = new_redeclare_key()
        declaration_id = await conn.fetchval(
            INSERT_DECLARATION_SQL,
            person.id if person else None,
            site["id"],
            answers,
            status,
            reasons,
            now,
            result.valid_until,
            redeclare_hash,
        )
        issued = None
        if status == "cleared" and person is not None:
            issued = await issue_pass_for(
                conn,
                store,
                person_id=person.id,
                site_id=site["id"],
                declaration_id=declaration_id,
                valid_until=result.valid_until,
                now=now,
            )
    return Outcome(
        declaration_id=declaration_id,
        person_id=person.id if person else None,
        full_name=person.full_name if person else decl.full_name,
        site_id=site["id"],
        site_name=site["name"],
        site_timezone=site["timezone"],
        status=status,
        reasons=reasons,
        valid_until=result.valid_until,
        pass_=issued,
        redeclare_key=redeclare_key,
    )


def pass_urls(app: web.Application, pass_id: uuid.UUID) -> dict[str, str]:
    """The pass's own links, each with its key (service.passes.links)."""
    key = {"key": app[PASS_LINKS_KEY].key_for(pass_id)}
    return {
        name: str(app.router[route].url_for(pass_id=str(pass_id)).with_query(key))
        for name, route in (
            ("qr_png_url", "pass_qr_png"),
            ("qr_svg_url", "pass_qr_svg"),
            ("print_url", "pass_print"),
            ("phone_url", "pass_phone"),
        )
    }


def pass_json(app: web.Application, issued: IssuedPass | None) -> dict[str, Any] | None:
    if issued is None:
        return None
    return {
        "id": str(issued.id),
        "payload": issued.payload,
        **pass_urls(app, issued.id),
        "not_after": issued.not_after.isoformat(),
    }


def validity_json(status: str, valid_until: datetime) -> dict[str, str | None]:
    """Only a cleared result is valid until a time; one in review can be approved until
    then, and a rejected one is valid for nothing."""
    at = valid_until.astimezone(UTC).isoformat()
    return {
        "valid_until": at if status == "cleared" else None,
        "review_until": at if status == "review" else None,
    }


def outcome_json(app: web.Application, outcome: Outcome) -> dict[str, Any]:
    # No person id: a claim has none, and the answer must look the same either way.
    return {
        "declaration_id": outcome.declaration_id,
        "status": outcome.status,
        "reasons": outcome.reasons,
        **validity_json(outcome.status, outcome.valid_until),
        "pass": pass_json(app, outcome.pass_),
        "redeclare_key": outcome.redeclare_key,
    }


# --- handlers ------------------------------------------------------------------------


def _limit_body(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"The body may be at most {limit} bytes.")


@public
@documented(body=Declaration)
async def post_declaration(request: web.Request) -> web.Response:
    limit_public(request)
    _limit_body(request, MAX_DECLARATION_BYTES)
    now = datetime.now(UTC)
    decl = parse_declaration(await read_json(request), now=now)
    async with request.app[DB_KEY].connection() as conn:
        outcome = await file_declaration(conn, request.app[KEYS_KEY], decl, now=now)
    return web.json_response(outcome_json(request.app, outcome), status=201)


# What a health officer or admin writes down; line breaks allowed.
Note = Annotated[str, Text(PURPOSE_MAX, multiline=True)]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: Annotated[Note | None, BeforeValidator(blank_to_none)] = None


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Note


@requires(Role.ADMIN, Role.GUARD, Role.HEALTH)
async def review_queue(request: web.Request) -> web.Response:
    """Declarations of a site waiting for a guard or a health officer, oldest first."""
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    async with request.app[DB_KEY].connection() as conn:
        rows = await conn.fetch(REVIEW_QUEUE_SQL, site_id, datetime.now(UTC))
    waiting = [
        {
            **dict(r),
            "submitted_at": r["submitted_at"].isoformat(),
            "valid_until": r["valid_until"].isoformat(),
        }
        for r in rows
    ]
    return web.json_response({"site_id": site_id, "declarations": waiting})


@requires(Role.ADMIN, Role.GUARD, Role.HEALTH)
@documented(body=ReviewIn)
async def review_declaration(request: web.Request) -> web.Response:
    declaration_id = int(request.match_info["declaration_id"])
    body = await read_model(request, ReviewIn)
    who = principal(request)
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        row = await conn.fetchrow(DECLARATION_FOR_REVIEW_SQL, declaration_id)
        if row is None:
            raise ApiError(404, "declaration_not_found", f"No declaration {declaration_id}.")
        if not who.can_see_site(row["site_id"]):
            raise ApiError(403, "forbidden", "Your token is limited to another site.")
        if row["superseded_at"] is not None:
            raise ApiError(409, "declaration_superseded", "A newer declaration replaced this one.")
        if row["status"] != "review":
            raise ApiError(
                409, "not_in_review", f"The declaration is {row['status']}, not awaiting review."
            )
        if body.decision == "approve" and row["valid_until"] <= now:
            raise ApiError(409, "declaration_expired", "The declaration is no longer valid.")
        status = "cleared" if body.decision == "approve" else "rejected"
        person_id = row["person_id"]
        if person_id is None and status == "cleared":
            # A claim: the officer has checked the papers; now it is filed for the person.
            decl = parse_declaration(row["answers"], now=row["submitted_at"])
            person_id = (await confirm_claim(conn, decl)).id
            await supersede_current(conn, person_id, row["site_id"], actor=who.actor, now=now)
            await conn.execute(SET_DECLARATION_PERSON_SQL, declaration_id, person_id)
        await conn.execute(REVIEW_SQL, declaration_id, status, who.actor, now)
        issued = None
        if status == "cleared":
            issued = await issue_pass_for(
                conn,
                request.app[KEYS_KEY],
                person_id=person_id,
                site_id=row["site_id"],
                declaration_id=declaration_id,
                valid_until=row["valid_until"],
                now=now,
            )
        await append_event(
            conn,
            NewEvent(
                kind="declaration_reviewed",
                actor=who.actor,
                occurred_at=now,
                site_id=row["site_id"],
                person_id=person_id,
                pass_id=issued.id if issued else None,
                detail={
                    "declaration_id": declaration_id,
                    "decision": body.decision,
                    "note": body.note,
                },
            ),
        )
    return web.json_response(
        {
            "declaration_id": declaration_id,
            "person_id": person_id,
            "status": status,
            "reasons": row["reasons"],
            **validity_json(status, row["valid_until"]),
            "pass": pass_json(request.app, issued),
        }
    )


async def _tell_kiosks(request: web.Request, revoked: list[uuid.UUID]) -> None:
    """After commit: the kiosks' copies learn the revocation now, not at the next poll."""
    if revoked:
        async with request.app[DB_KEY].connection() as conn:
            sites = await conn.fetch(REVOKED_SITES_SQL, revoked)
        request.app[FANOUT_KEY].changed(r["site_id"] for r in sites)


@requires(Role.ADMIN)
@documented(body=RevokeIn)
async def revoke_person_passes(request: web.Request) -> web.Response:
    person_id = int(request.match_info["person_id"])
    body = await read_model(request, RevokeIn)
    scope = principal(request).site_id
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        if await conn.fetchval(PERSON_EXISTS_SQL, person_id) is None:
            raise person_not_found(person_id)
        await require_visible(conn, person_id, scope)
        revoked = await revoke(
            conn,
            REVOKE_PERSON_PASSES_SQL,
            person_id,
            scope,
            reason=body.reason,
            actor=principal(request).actor,
            now=now,
        )
    await _tell_kiosks(request, revoked)
    return web.json_response({"person_id": person_id, "revoked": [str(i) for i in revoked]})


@requires(Role.ADMIN)
@documented(body=RevokeIn)
async def revoke_pass(request: web.Request) -> web.Response:
    pass_id = uuid.UUID(request.match_info["pass_id"])
    body = await read_model(request, RevokeIn)
    scope = principal(request).site_id
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        revoked = await revoke(
            conn,
            REVOKE_PASS_SQL,
            pass_id,
            scope,
            reason=body.reason,
            actor=principal(request).actor,
            now=now,
        )
        if not revoked:
            found = await conn.fetchrow(PASS_SQL, pass_id)
            if found is None or (scope is not None and found["site_id"] != scope):
                raise ApiError(404, "pass_not_found", "No such pass.")
            raise ApiError(409, "pass_already_revoked", "The pass is already revoked.")
    await _tell_kiosks(request, revoked)
    return web.json_response(
        {"pass_id": str(pass_id), "revoked_at": now.isoformat(), "revoked_reason": body.reason}
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _current_json(rows: Sequence[asyncpg.Record], now: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for r in rows:
        if r["id"] in seen:
            continue  # one pass per declaration is shown: the newest
        seen.add(r["id"])
        out.append(
            {
                "declaration_id": r["id"],
                "site_id": r["site_id"],
                "status": r["status"],
                "reasons": r["reasons"],
                "submitted_at": _iso(r["submitted_at"]),
                "valid_until": _iso(r["valid_until"]),
                "reviewed_by": r["reviewed_by"],
                "reviewed_at": _iso(r["reviewed_at"]),
                "pass": None
                if r["pass_id"] is None
                else {
                    "id": str(r["pass_id"]),
                    "kid": r["kid"],
                    "state": pass_state(r, now),
                    "not_before": _iso(r["not_before"]),
                    "not_after": _iso(r["not_after"]),
                    "revoked_at": _iso(r["revoked_at"]),
                    "revoked_reason": r["revoked_reason"],
                },
            }
        )
    return out


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.HEALTH)
async def get_person(request: web.Request) -> web.Response:
    person_id = int(request.match_info["person_id"])
    caller = principal(request)
    scope = caller.site_id
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn:
        await require_visible(conn, person_id, scope)
        person = await conn.fetchrow(PERSON_SQL, person_id)
        current = await conn.fetch(CURRENT_DECLARATIONS_SQL, person_id, scope)
    if person is None:
        raise person_not_found(person_id)
    return web.json_response(
        {
            "person": {
                **person_json(person, masked_ids=caller.role is Role.GUARD),
                "created_at": _iso(person["created_at"]),
                "updated_at": _iso(person["updated_at"]),
            },
            "current_declarations": _current_json(current, now),
        }
    )


async def _qr(request: web.Request, fmt: str, content_type: str) -> web.Response:
    limit_public(request)
    pass_id = uuid.UUID(request.match_info["pass_id"])
    payload = None
    # Without the link's key the pass is as unknown as one that does not exist.
    if request.app[PASS_LINKS_KEY].valid(pass_id, request.query.get("key")):
        async with request.app[DB_KEY].connection() as conn:
            payload = await conn.fetchval(PASS_PAYLOAD_SQL, pass_id)
    if payload is None:
        raise ApiError(404, "pass_not_found", "No such pass.")
    body = await render(request.app, payload, fmt)
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@public
async def pass_qr_png(request: web.Request) -> web.Response:
    return await _qr(request, "png", "image/png")


@public
async def pass_qr_svg(request: web.Request) -> web.Response:
    return await _qr(request, "svg", "image/svg+xml")


UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/declarations", post_declaration, name="create_declaration"),
        web.post(
            r"/api/v1/declarations/{declaration_id:\d{1,18}}/review",
            review_declaration,
            name="review_declaration",
        ),
        web.get(r"/api/v1/sites/{site_id:\d{1,18}}/reviews", review_queue, name="review_queue"),
        web.get(r"/api/v1/people/{person_id:\d{1,18}}", get_person, name="person"),
        web.post(
            r"/api/v1/people/{person_id:\d{1,18}}/revoke-passes",
            revoke_person_passes,
            name="revoke_person_passes",
        ),
        web.post(
            "/api/v1/passes/{pass_id:" + UUID_PATTERN + "}/revoke", revoke_pass, name="revoke_pass"
        ),
        web.get(
            "/api/v1/passes/{pass_id:" + UUID_PATTERN + "}/qr.png", pass_qr_png, name="pass_qr_png"
        ),
        web.get(
            "/api/v1/passes/{pass_id:" + UUID_PATTERN + "}/qr.svg", pass_qr_svg, name="pass_qr_svg"
        ),
    ]
