"""A site's declaration rules and flagged areas: the admin API and its SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict

from service.declarations.policy import FlaggedArea, SiteRules
from service.events.fanout import FANOUT_KEY
from service.events.log import NewEvent, append_event
from service.health.rescreen import rescreen
from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.sites.door_rules import CheckinRules
from service.web.auth import Role, principal, requires, site_exists
from service.web.openapi import documented
from service.web.text import Text, blank_to_none
from service.web.validation import read_model

AREA_CODE_MAX = 40  # flagged_areas_code_length

GET_RULES_SQL = "SELECT declaration_rules FROM sites WHERE id = $1"
SET_RULES_SQL = "UPDATE sites SET declaration_rules = $2 WHERE id = $1 RETURNING id"
GET_DOOR_RULES_SQL = "SELECT checkin_rules FROM sites WHERE id = $1"
SET_DOOR_RULES_SQL = "UPDATE sites SET checkin_rules = $2 WHERE id = $1 RETURNING id"
LIST_AREAS_SQL = """
SELECT id, site_id, name, code, flagged_from, flagged_until, created_at FROM flagged_areas
WHERE site_id = $1 ORDER BY flagged_from DESC, id
"""
INSERT_AREA_SQL = """
INSERT INTO flagged_areas (site_id, name, code, flagged_from, flagged_until)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, site_id, name, code, flagged_from, flagged_until, created_at
"""
UPDATE_AREA_SQL = """
UPDATE flagged_areas SET name = $3, code = $4, flagged_from = $5, flagged_until = $6
WHERE id = $1 AND site_id = $2
RETURNING id, site_id, name, code, flagged_from, flagged_until, created_at
"""
DELETE_AREA_SQL = """
DELETE FROM flagged_areas WHERE id = $1 AND site_id = $2
RETURNING id, site_id, name, code, flagged_from, flagged_until, created_at
"""


class FlaggedAreaIn(FlaggedArea):
    """A flagged area as an admin posts it (the code fits its column: 40 characters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[Annotated[str, Text(AREA_CODE_MAX)] | None, BeforeValidator(blank_to_none)] = (
        None
    )


def _site_id(request: web.Request) -> int:
    site_id = int(request.match_info["site_id"])
    if not principal(request).can_see_site(site_id):
        raise ApiError(403, "forbidden", "Your token is limited to another site.")
    return site_id


def _site_not_found(site_id: int) -> ApiError:
    return ApiError(404, "site_not_found", f"No site with id {site_id}.")


def _area_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "site_id": row["site_id"],
        "name": row["name"],
        "code": row["code"],
        "flagged_from": row["flagged_from"].isoformat(),
        "flagged_until": None if row["flagged_until"] is None else row["flagged_until"].isoformat(),
        "created_at": row["created_at"].isoformat(),
    }


def _admin_event(request: web.Request, site_id: int, detail: dict[str, Any]) -> NewEvent:
    return NewEvent(
        kind="admin",
        actor=principal(request).actor,
        occurred_at=datetime.now(UTC),
        site_id=site_id,
        detail=detail,
    )


# A site's two rule sets: (column read, column write, model, action in the event log).
RuleSet = tuple[str, str, type[BaseModel], str]
DECLARATION_RULES: RuleSet = (GET_RULES_SQL, SET_RULES_SQL, SiteRules, "rules_set")
DOOR_RULES: RuleSet = (GET_DOOR_RULES_SQL, SET_DOOR_RULES_SQL, CheckinRules, "door_rules_set")


async def _read_rules(request: web.Request, rule_set: RuleSet) -> web.Response:
    get_sql, _, model, _ = rule_set
    site_id = _site_id(request)
    async with request.app[DB_KEY].connection() as conn:
        stored = await conn.fetchrow(get_sql, site_id)
    if stored is None:
        raise _site_not_found(site_id)
    # Stored rules fill in defaults added since they were saved.
    rules = model.model_validate(stored[0])
    return web.json_response({"site_id": site_id, "rules": rules.model_dump(mode="json")})


async def _write_rules(request: web.Request, rule_set: RuleSet) -> web.Response:
    _, set_sql, model, action = rule_set
    site_id = _site_id(request)
    rules = (await read_model(request, model)).model_dump(mode="json")
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        if await conn.fetchval(set_sql, site_id, rules) is None:
            raise _site_not_found(site_id)
        await append_event(conn, _admin_event(request, site_id, {"action": action, "rules": rules}))
    request.app[FANOUT_KEY].changed([site_id])  # kiosks keep the door rules offline
    return web.json_response({"site_id": site_id, "rules": rules})


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.HEALTH)
async def get_rules(request: web.Request) -> web.Response:
    return await _read_rules(request, DECLARATION_RULES)


@requires(Role.ADMIN)
@documented(body=SiteRules)
async def put_rules(request: web.Request) -> web.Response:
    return await _write_rules(request, DECLARATION_RULES)


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR)
async def get_door_rules(request: web.Request) -> web.Response:
    """The door rules of the check-in core (anti-passback, shared passes, kiosk clocks,
    offline replays, the override window)."""
    return await _read_rules(request, DOOR_RULES)


@requires(Role.ADMIN)
@documented(body=CheckinRules)
async def put_door_rules(request: web.Request) -> web.Response:
    return await _write_rules(request, DOOR_RULES)


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.HEALTH)
async def list_flagged_areas(request: web.Request) -> web.Response:
    site_id = _site_id(request)
    async with request.app[DB_KEY].connection() as conn:
        if not await site_exists(conn, site_id):
            raise _site_not_found(site_id)
        rows = await conn.fetch(LIST_AREAS_SQL, site_id)
    return web.json_response({"flagged_areas": [_area_json(r) for r in rows]})


@requires(Role.ADMIN, Role.HEALTH)
@documented(body=FlaggedAreaIn)
async def add_flagged_area(request: web.Request) -> web.Response:
    site_id = _site_id(request)
    area = await read_model(request, FlaggedAreaIn)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                INSERT_AREA_SQL,
                site_id,
                area.name,
                area.code,
                area.flagged_from,
                area.flagged_until,
            )
        except asyncpg.ForeignKeyViolationError:
            raise _site_not_found(site_id) from None
        answer = await _rescreened(conn, request, row, "flagged_area_add")
    request.app[FANOUT_KEY].changed([site_id])  # suspensions for the kiosks' copies
    return web.json_response(answer, status=201)


async def _rescreened(
    conn: asyncpg.Connection, request: web.Request, row: asyncpg.Record, action: str
) -> dict[str, Any]:
    """The area as flagged now, with the re-screen it caused (both recorded)."""
    result = await rescreen(conn, row, actor=principal(request).actor, now=datetime.now(UTC))
    area = _area_json(row)
    detail = {"action": action, "area": area} | result.as_json()
    await append_event(conn, _admin_event(request, row["site_id"], detail))
    return area | result.as_json()


@requires(Role.ADMIN, Role.HEALTH)
@documented(body=FlaggedAreaIn)
async def update_flagged_area(request: web.Request) -> web.Response:
    """Change a flagged area (e.g. widen its period): re-screens as a new one does."""
    site_id = _site_id(request)
    area_id = int(request.match_info["area_id"])
    area = await read_model(request, FlaggedAreaIn)
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        row = await conn.fetchrow(
            UPDATE_AREA_SQL,
            area_id,
            site_id,
            area.name,
            area.code,
            area.flagged_from,
            area.flagged_until,
        )
        if row is None:
            raise ApiError(404, "flagged_area_not_found", f"No flagged area {area_id} here.")
        answer = await _rescreened(conn, request, row, "flagged_area_change")
    request.app[FANOUT_KEY].changed([site_id])  # suspensions for the kiosks' copies
    return web.json_response(answer)


@requires(Role.ADMIN, Role.HEALTH)
async def delete_flagged_area(request: web.Request) -> web.Response:
    site_id = _site_id(request)
    area_id = int(request.match_info["area_id"])
    async with request.app[DB_KEY].connection() as conn, conn.transaction():
        row = await conn.fetchrow(DELETE_AREA_SQL, area_id, site_id)
        if row is None:
            raise ApiError(404, "flagged_area_not_found", f"No flagged area {area_id} here.")
        await append_event(
            conn,
            _admin_event(
                request, site_id, {"action": "flagged_area_remove", "area": _area_json(row)}
            ),
        )
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    site = r"/api/v1/sites/{site_id:\d{1,18}}"
    return [
        web.get(site + "/rules", get_rules, name="site_rules"),
        web.put(site + "/rules", put_rules, name="set_site_rules"),
        web.get(site + "/door-rules", get_door_rules, name="site_door_rules"),
        web.put(site + "/door-rules", put_door_rules, name="set_site_door_rules"),
        web.get(site + "/flagged-areas", list_flagged_areas, name="flagged_areas"),
        web.post(site + "/flagged-areas", add_flagged_area, name="add_flagged_area"),
        web.delete(
            site + r"/flagged-areas/{area_id:\d{1,18}}",
            delete_flagged_area,
            name="delete_flagged_area",
        ),
        web.put(
            site + r"/flagged-areas/{area_id:\d{1,18}}",
            update_flagged_area,
            name="update_flagged_area",
        ),
    ]
