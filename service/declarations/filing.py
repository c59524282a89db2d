"""Filing a health declaration, and the passes it issues and revokes, with their SQL.

Filing runs in one transaction: ``service.declarations.identity_proof`` decides whom the
declaration is for (an existing person only with proof; otherwise a claim that waits for
review) with their row locked (two declarations of one person are done one after the
other), the previous declaration at the site is superseded and its pass revoked, the new
one is evaluated by ``service.declarations.policy`` and, when cleared, gets a pass
signed with the active key. Every revocation appends a ``pass_revoked`` event in the
same transaction. The HTTP side is service.declarations.api (filing, a person's
declarations, QR images) and service.declarations.review (review and revocation).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import pydantic
from aiohttp import web

from checkin_core.passes import issue_pass
from service.declarations.identity_proof import new_redeclare_key, resolve_filer
from service.declarations.model import Declaration
from service.declarations.official_rank import contradicts_official, judged_declaration
from service.declarations.policy import Evaluation, FlaggedArea, SiteRules, evaluate, reason
from service.events.log import NewEvent, append_events
from service.passes.keys import KeyStore, active_signing_key
from service.passes.links import PASS_LINKS_KEY
from service.platform.errors import ApiError
from service.web.field_errors import field_error, field_errors
from service.web.validation import invalid

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
REVOKE_PASS_SQL = _REVOKE_SET + "WHERE id = $4" + _REVOKE_SCOPE + _REVOKE_RETURNING


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


UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
