"""Letting a denied person in once ("allow once"): who may, for whom and until when.

The person must be known at the scan's site (else an override would make them known
there, with a false stay in their tracing record); a guard may not override the
reasons of reasons.ADMIN_ONLY_OVERRIDES, an admin may; the denial must be recent (the
site's door rules, `override_window_s`) and still open: refused once the person has gone
through the same way since. Refusals carry their words in vi and en for the console.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from checkin_core.reasons import ADMIN_ONLY_OVERRIDES, short_name
from service.door.actions import (
    CLOSE_STAY_SQL,
    OPEN_STAY_INSERT_SQL,
    OPEN_STAY_SQL,
    Reason,
    announce,
)
from service.events.log import NewEvent, append_events, lock_chains
from service.people.records import person_name
from service.people.scope import is_visible, person_not_found
from service.platform.db import DB_KEY
from service.platform.errors import worded_error
from service.sites.door_rules import CheckinRules
from service.web.auth import Principal, Role, principal, require_site, requires
from service.web.openapi import documented
from service.web.validation import read_model


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID  # the denied scan
    reason: Reason
    person_id: Annotated[int, Field(gt=0)] | None = None  # when the scan named nobody


DENIED_SCAN_SQL = """
SELECT site_id, seq, occurred_at, gate_id, person_id, pass_id, direction, decision, reason,
       detail
FROM events WHERE event_id = $1 AND kind = 'scan'
"""
# The person went through the same way after the denial: it is over.
SUPERSEDED_SQL = """
SELECT EXISTS (SELECT 1 FROM events
               WHERE chain_id = $1 AND seq > $2 AND person_id = $3 AND direction = $4
                 AND decision = 'allow' AND kind IN ('scan', 'override', 'id_check'))
"""
SITE_RULES_SQL = "SELECT checkin_rules FROM sites WHERE id = $1"
ALREADY_OVERRIDDEN_SQL = """
SELECT 1 FROM events
WHERE kind IN ('override', 'id_check') AND chain_id = $1 AND person_id = $2
  AND detail->>'overrides' = $3
"""


def denied_for(scan: asyncpg.Record) -> set[str]:
    """The reasons behind a denial: the door's, and the server's own verdict when the
    door judged offline (an offline deny may hide a revoked pass)."""
    server = (scan["detail"] or {}).get("server_verdict") or {}
    return {r for r in (scan["reason"], server.get("reason")) if r}


def check_override_allowed(
    caller: Principal, scan: asyncpg.Record, window_s: int, now: datetime
) -> None:
    """Who may override this denial, and whether it is still happening at the door."""
    if caller.role is not Role.ADMIN and denied_for(scan) & ADMIN_ONLY_OVERRIDES:
        raise worded_error(
            403,
            "override_admin_only",
            "Chỉ quản trị viên được cho vào khi mã bị thu hồi, người bị cấm vào"
            " hoặc đang bị cách ly.",
            "Only an admin may let someone in whose pass is revoked, who is on the deny"
            " list or who is suspended.",
        )
    check_still_at_door(scan, window_s, now)


def check_still_at_door(scan: asyncpg.Record, window_s: int, now: datetime) -> None:
    """Refuse a denial older than the site's override window: the person has gone."""
    detail = scan["detail"] or {}
    # An offline replay whose kiosk clock was not trusted: nobody knows when it was.
    unknown_time = "offline" in detail and detail.get("clock_skew")
    if unknown_time or (now - scan["occurred_at"]).total_seconds() > window_s:
        raise worded_error(
            409,
            "override_too_late",
            f"Lượt từ chối này đã quá {window_s // 60} phút; hãy quét lại mã.",
            f"This denial is more than {window_s // 60} minutes old; scan the pass again.",
        )


@requires(Role.GUARD, Role.ADMIN)
@documented(body=OverrideIn)
async def create_override(request: web.Request) -> web.Response:
    """Let a denied person through once, with the guard's reason on record: soon after
    the scan, for a person known at the site, for a denial a guard may override."""
    body = await read_model(request, OverrideIn)
    caller = principal(request)

    def check(scan: asyncpg.Record, window_s: int, now: datetime) -> None:
        check_override_allowed(caller, scan, window_s, now)

    return await let_through(
        request,
        body.event_id,
        body.person_id,
        check,
        kind="override",
        reason="override_allowed",
        detail={"reason": body.reason},
    )


class IdCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID  # the scan of a printed pass that the kiosk answered "Check ID"


def check_id_check_allowed(scan: asyncpg.Record, window_s: int, now: datetime) -> None:
    if "guard_check" not in denied_for(scan):
        raise worded_error(
            409,
            "not_a_guard_check",
            "Lượt quét này không chờ kiểm tra giấy tờ.",
            "This scan is not waiting for an ID check.",
        )
    check_still_at_door(scan, window_s, now)


@requires(Role.GUARD, Role.ADMIN)
@documented(body=IdCheckIn)
async def create_id_check(request: web.Request) -> web.Response:
    """The guard saw the papers of someone with a printed pass (the site's static_pass
    rule is guard_check): one tap lets them through, with the guard on record."""
    body = await read_model(request, IdCheckIn)
    return await let_through(
        request, body.event_id, None, check_id_check_allowed, kind="id_check", reason="id_checked"
    )


async def let_through(
    request: web.Request,
    event_id: UUID,
    named: int | None,
    check: Callable[[asyncpg.Record, int, datetime], None],
    *,
    kind: str,
    reason: str,
    detail: dict[str, str] | None = None,
) -> web.Response:
    """Let the person of a recent denied scan through once: an event of ``kind`` with
    the caller as actor, and their stay opened (or closed)."""
    caller = principal(request)
    now = datetime.now(UTC)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        scan = await _denied_scan(request, conn, event_id)
        site_id = scan["site_id"]
        person_id = await _overridden_person(conn, scan, named)
        rules = CheckinRules.model_validate(await conn.fetchval(SITE_RULES_SQL, site_id))
        check(scan, rules.override_window_s, now)
        heads = await lock_chains(conn, [site_id])
        await _still_open(conn, scan, event_id, person_id)
        name = await person_name(conn, person_id)
        event = NewEvent(
            kind=kind,
            actor=caller.actor,
            occurred_at=now,
            site_id=site_id,
            gate_id=scan["gate_id"],
            person_id=person_id,
            pass_id=scan["pass_id"],
            direction=scan["direction"],
            decision="allow",
            reason=reason,
            detail={
                "overrides": str(event_id),
                "denied_for": scan["reason"],
                **(detail or {}),
                "name": short_name(name or ""),
            },
        )
        (appended,) = await append_events(conn, [event], heads)
        stay = await conn.fetchval(OPEN_STAY_SQL, site_id, person_id)
        if scan["direction"] == "in" and stay is None:
            await conn.execute(
                OPEN_STAY_INSERT_SQL, site_id, person_id, now, scan["gate_id"], appended.id
            )
        elif scan["direction"] == "out" and stay is not None:
            await conn.execute(CLOSE_STAY_SQL, stay, now, scan["gate_id"], appended.id, "scan")
    announce(request, heads)
    return web.json_response(
        {
            "override_id": appended.id,
            "site_id": site_id,
            "seq": appended.seq,
            "person_id": person_id,
        },
        status=201,
    )


async def _denied_scan(
    request: web.Request, conn: asyncpg.Connection, event_id: UUID
) -> asyncpg.Record:
    """The denied scan, of a site the caller may act at."""
    scan = await conn.fetchrow(DENIED_SCAN_SQL, event_id)
    if scan is None:
        raise worded_error(
            404,
            "scan_not_found",
            "Không tìm thấy lượt quét này.",
            "No scan with this event_id.",
        )
    require_site(request, scan["site_id"])
    if scan["decision"] != "deny":
        raise worded_error(
            409, "not_denied", "Lượt quét này không bị từ chối.", "This scan was not denied."
        )
    return scan


async def _overridden_person(
    conn: asyncpg.Connection, scan: asyncpg.Record, named: int | None
) -> int:
    """The scan's person, or the one the guard named; never someone of another site
    (the override would make them known here)."""
    person_id: int | None = scan["person_id"] or named
    if person_id is None:
        raise worded_error(
            422,
            "person_required",
            "Lượt quét không có tên người: hãy ghi mã người đã kiểm tra.",
            "The scan names nobody: give the person_id you checked.",
        )
    if not await is_visible(conn, person_id, scan["site_id"]):
        raise person_not_found(person_id)
    return person_id


async def _still_open(
    conn: asyncpg.Connection, scan: asyncpg.Record, event_id: UUID, person_id: int
) -> None:
    """Refuse a denial already overridden, or one the person has gone through since
    (called with the site's chain held, so two guards cannot both let them in)."""
    site_id = scan["site_id"]
    if await conn.fetchval(ALREADY_OVERRIDDEN_SQL, site_id, person_id, str(event_id)):
        raise worded_error(
            409,
            "already_overridden",
            "Lượt từ chối này đã được cho vào rồi.",
            "This denial was already overridden.",
        )
    if await conn.fetchval(SUPERSEDED_SQL, site_id, scan["seq"], person_id, scan["direction"]):
        raise worded_error(
            409,
            "denial_superseded",
            "Người này đã qua cổng sau lượt từ chối này.",
            "This person has gone through since this denial.",
        )


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/overrides", create_override, name="create_override"),
        web.post("/api/v1/id-checks", create_id_check, name="create_id_check"),
    ]
