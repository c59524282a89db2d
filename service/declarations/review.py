"""Review of a declaration by a guard or health officer, and revocation of passes by an
admin; each in one transaction with its events, the kiosks told after commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict

from service.declarations.api import pass_json, validity_json
from service.declarations.filing import (
    PASS_SQL,
    REVOKE_PASS_SQL,
    REVOKE_PERSON_PASSES_SQL,
    UUID_PATTERN,
    issue_pass_for,
    parse_declaration,
    revoke,
    supersede_current,
)
from service.declarations.identity_proof import confirm_claim
from service.declarations.model import PURPOSE_MAX
from service.events.fanout import FANOUT_KEY
from service.events.log import NewEvent, append_event
from service.passes.keys import KEYS_KEY
from service.people.scope import person_not_found, require_visible
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, require_site, requires
from service.web.openapi import documented
from service.web.text import Text, blank_to_none
from service.web.validation import read_model

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
PERSON_EXISTS_SQL = "SELECT 1 FROM people WHERE id = $1 FOR NO KEY UPDATE"
REVOKED_SITES_SQL = "SELECT DISTINCT site_id FROM passes WHERE id = ANY($1::uuid[])"


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


def routes() -> list[web.RouteDef]:
    return [
        web.post(
            r"/api/v1/declarations/{declaration_id:\d{1,18}}/review",
            review_declaration,
            name="review_declaration",
        ),
        web.get(r"/api/v1/sites/{site_id:\d{1,18}}/reviews", review_queue, name="review_queue"),
        web.post(
            r"/api/v1/people/{person_id:\d{1,18}}/revoke-passes",
            revoke_person_passes,
            name="revoke_person_passes",
        ),
        web.post(
            "/api/v1/passes/{pass_id:" + UUID_PATTERN + "}/revoke", revoke_pass, name="revoke_pass"
        ),
    ]
