"""Sites and their gates: the admin API, its models and its SQL."""

from __future__ import annotations

import functools
from datetime import time
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import asyncpg
from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from service.platform.db import DB_KEY
from service.platform.errors import ApiError
from service.web.auth import Role, principal, require_site, requires
from service.web.openapi import documented
from service.web.text import Text
from service.web.validation import read_model

SiteName = Annotated[str, Text(200)]
GateName = Annotated[str, Text(120)]


@functools.cache
def known_timezones() -> frozenset[str]:
    """The IANA names the site's time zone may be (read once from the tz database)."""
    return frozenset(available_timezones())


def _timezone_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = sorted(known_timezones())


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
    name: SiteName
    timezone: Annotated[str, Field(json_schema_extra=_timezone_enum)] = "Asia/Ho_Chi_Minh"
    capacity: Annotated[int, Field(gt=0, le=1_000_000)] | None = None

    @field_validator("timezone")
    @classmethod
    def known_timezone(cls, value: str) -> str:
        if value not in known_timezones():
            raise PydanticCustomError(
                "unknown_timezone", "Unknown time zone; use a name such as Asia/Ho_Chi_Minh"
            )
        return value


class OpeningWindow(BaseModel):
    """Open on these ISO weekdays (1 = Monday) from `opens` to `closes`, site time."""

    model_config = ConfigDict(extra="forbid")

    days: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1, max_length=7)]
    opens: time
    closes: time

    @model_validator(mode="after")
    def opens_before_closes(self) -> OpeningWindow:
        if self.opens >= self.closes:
            raise PydanticCustomError(
                "opens_after_closes", "The opening time must be before the closing time"
            )
        return self


class GateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: GateName
    direction: Literal["entrance", "exit", "both"]
    # Empty: always open.
    opening_hours: Annotated[list[OpeningWindow], Field(max_length=14)] = []
    offline_policy: Literal["deny", "verify-offline"] = "deny"


INSERT_SITE_SQL = """
INSERT INTO sites (code, name, timezone, capacity) VALUES ($1, $2, $3, $4)
RETURNING id, code, name, timezone, capacity, created_at
"""
LIST_SITES_SQL = """
SELECT id, code, name, timezone, capacity, created_at FROM sites
WHERE $1::bigint IS NULL OR id = $1 ORDER BY id
"""
GET_SITE_SQL = "SELECT id, code, name, timezone, capacity, created_at FROM sites WHERE id = $1"
INSERT_GATE_SQL = """
INSERT INTO gates (site_id, name, direction, opening_hours, offline_policy)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, site_id, name, direction, opening_hours, offline_policy, created_at
"""
LIST_GATES_SQL = """
SELECT id, site_id, name, direction, opening_hours, offline_policy, created_at FROM gates
WHERE site_id = $1 ORDER BY id
"""


def _record(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out["created_at"] = row["created_at"].isoformat()
    return out


async def insert_site(conn: asyncpg.Connection, site: SiteIn) -> dict[str, Any]:
    try:
        row = await conn.fetchrow(
            INSERT_SITE_SQL, site.code, site.name, site.timezone, site.capacity
        )
    except asyncpg.UniqueViolationError:
        raise ApiError(
            409, "site_exists", f"A site with code {site.code!r} already exists."
        ) from None
    return _record(row)


async def insert_gate(conn: asyncpg.Connection, site_id: int, gate: GateIn) -> dict[str, Any]:
    hours = [w.model_dump(mode="json") for w in gate.opening_hours]
    try:
        row = await conn.fetchrow(
            INSERT_GATE_SQL, site_id, gate.name, gate.direction, hours, gate.offline_policy
        )
    except asyncpg.ForeignKeyViolationError:
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.") from None
    except asyncpg.UniqueViolationError:
        raise ApiError(
            409, "gate_exists", f"This site already has a gate named {gate.name!r}."
        ) from None
    return _record(row)


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.HEALTH)
async def list_sites(request: web.Request) -> web.Response:
    async with request.app[DB_KEY].connection() as conn:
        rows = await conn.fetch(LIST_SITES_SQL, principal(request).site_id)
    return web.json_response({"sites": [_record(r) for r in rows]})


@requires(Role.ADMIN)
@documented(body=SiteIn)
async def create_site(request: web.Request) -> web.Response:
    site = await read_model(request, SiteIn)
    async with request.app[DB_KEY].connection() as conn:
        created = await insert_site(conn, site)
    return web.json_response(created, status=201)


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.HEALTH)
async def get_site(request: web.Request) -> web.Response:
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    async with request.app[DB_KEY].connection() as conn:
        row = await conn.fetchrow(GET_SITE_SQL, site_id)
        if row is None:
            raise ApiError(404, "site_not_found", f"No site with id {site_id}.")
        gates = await conn.fetch(LIST_GATES_SQL, site_id)
    return web.json_response({**_record(row), "gates": [_record(g) for g in gates]})


@requires(Role.ADMIN)
@documented(body=GateIn)
async def create_gate(request: web.Request) -> web.Response:
    site_id = int(request.match_info["site_id"])
    require_site(request, site_id)
    gate = await read_model(request, GateIn)
    async with request.app[DB_KEY].connection() as conn:
        created = await insert_gate(conn, site_id, gate)
    return web.json_response(created, status=201)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/sites", list_sites, name="sites"),
        web.post("/api/v1/sites", create_site, name="create_site"),
        web.get(r"/api/v1/sites/{site_id:\d{1,18}}", get_site, name="site"),
        web.post(r"/api/v1/sites/{site_id:\d{1,18}}/gates", create_gate, name="create_gate"),
    ]
