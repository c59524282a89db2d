"""Query-string parameters read into values, or a 400 naming the parameter."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from aiohttp import web

from service.platform.errors import ApiError
from service.web.auth import principal, require_site

MAX_ID_DIGITS = 18


def bad_parameter(name: str, message: str) -> ApiError:
    return ApiError(400, "bad_parameter", message, parameter=name)


def raw_param(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name)
    return None if raw is None or raw == "" else raw


def int_param(
    request: web.Request, name: str, *, minimum: int = 1, maximum: int | None = None
) -> int | None:
    raw = raw_param(request, name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_ID_DIGITS:
        raise bad_parameter(name, f"{name} must be a whole number.")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else "")
        raise bad_parameter(name, f"{name} must be {bounds}.")
    return value


def time_param(request: web.Request, name: str) -> datetime | None:
    raw = raw_param(request, name)
    if raw is None:
        return None
    # An unencoded "+" in a query string arrives as a space: "...T08:00:00 07:00".
    text = re.sub(r" (\d{2}(:?\d{2})?)$", r"+\1", raw.strip())
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise bad_parameter(
            name, f"{name} must be an ISO 8601 time, e.g. 2026-03-10T08:00:00+07:00."
        ) from None
    if value.tzinfo is None:
        raise bad_parameter(name, f"{name} needs a UTC offset (+07:00 or Z).")
    return value


def time_range(request: web.Request) -> tuple[datetime | None, datetime | None]:
    start, end = time_param(request, "from"), time_param(request, "to")
    if start is not None and end is not None and start >= end:
        raise bad_parameter("to", "from must be before to.")
    return start, end


def choice_param(request: web.Request, name: str, choices: Iterable[str]) -> str | None:
    raw = raw_param(request, name)
    if raw is None:
        return None
    allowed = sorted(choices)
    if raw not in allowed:
        raise bad_parameter(name, f"{name} must be one of: {', '.join(allowed)}.")
    return raw


def format_param(request: web.Request, formats: Sequence[str]) -> str:
    """The `format` parameter; the first of `formats` when it is not given."""
    return choice_param(request, "format", formats) or formats[0]


def bool_param(request: web.Request, name: str) -> bool:
    return choice_param(request, name, ("true", "false", "1", "0")) in ("true", "1")


def scoped_site(request: web.Request, site_id: int | None) -> int | None:
    """The site filter, held to the caller's token: a site-bound token sees its site."""
    caller = principal(request)
    if caller.site_id is None:
        return site_id
    return require_site(request, site_id).site_id if site_id is not None else caller.site_id
