"""The one error shape: {"error": {"code": "...", "message": "...", ...}}.

Every error a client sees goes through `error_response`, whether we raised it
(`ApiError`), aiohttp did (404, 405, 413...), or something broke (500, no internals).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Machine-readable codes for the statuses aiohttp raises on its own.
_CODE_BY_STATUS = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "A valid bearer token is required."),
    403: ("forbidden", "Your role may not do this."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
    422: ("validation_failed", "Some fields are invalid."),
    429: ("too_many_requests", "Too many requests; slow down."),
    503: ("service_unavailable", "The service cannot reach its database; try again shortly."),
}


# Headers of aiohttp's own errors that the client needs, kept when the body is rebuilt.
_KEPT_HEADERS = ("Allow", "Retry-After", "Location")


class ApiError(Exception):
    """An error meant for the client, with its HTTP status and stable code."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        # Extra response headers, e.g. Retry-After on a 429.
        self.headers: dict[str, str] | None = None


def worded_error(status: int, code: str, vi: str, en: str) -> ApiError:
    """An error a person reads (the console shows it): `message` in English, and
    `message_vi` / `message_en` for the page to pick by its language."""
    return ApiError(status, code, en, message_vi=vi, message_en=en)


class ServiceUnavailable(ApiError):
    def __init__(self, message: str = _CODE_BY_STATUS[503][1]) -> None:
        super().__init__(503, "service_unavailable", message)


# Errors that mean "the database is out of reach", as opposed to a bug.
DATABASE_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,  # class 08: the connection failed
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.exceptions.InterfaceError,
    # A pooled connection the server ended (a restart) before asyncpg noticed the close:
    # "cannot switch to state ...; another operation is in progress".
    asyncpg.exceptions.InternalClientError,
    # A write on a server that is (now) a standby: the primary moved (docs/scaling.md).
    asyncpg.exceptions.ReadOnlySQLTransactionError,
)


# Any of these means: answer 503 service_unavailable, the database is out of reach.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_DOWN_ERRORS, ServiceUnavailable)


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **details: Any,
) -> web.Response:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return web.json_response(error_body(code, message, **details), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, headers=e.headers, **e.details)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code, message = _CODE_BY_STATUS.get(e.status, ("http_error", e.reason))
        response = error_response(e.status, code, message)
        for name in _KEPT_HEADERS:  # e.g. the methods a 405 would have taken
            if name in e.headers:
                response.headers[name] = e.headers[name]
        return response
    except DATABASE_DOWN_ERRORS as e:
        logger.warning("database unavailable: %s", type(e).__name__, extra={"path": request.path})
        return error_response(503, *_CODE_BY_STATUS[503])
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return error_response(500, "internal_error", "Something went wrong on our side.")
