"""Reading request bodies and query strings into validated models."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic
from aiohttp import web
from pydantic_core import PydanticCustomError

from service.platform.errors import ApiError, Handler
from service.web.field_errors import field_error, field_errors
from service.web.text import check_text

Model = TypeVar("Model", bound=pydantic.BaseModel)


def invalid(fields: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "validation_failed", "Some fields are invalid.", fields=fields)


def validate(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        raise invalid(field_errors(e)) from None


async def read_json(request: web.Request) -> Any:
    """The JSON body, or a 415/413/400 error that says what is wrong with it."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    raw = await request.read()  # aiohttp enforces client_max_size here (413)
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as e:  # bad UTF-8, bad JSON, a number with too many digits
        raise ApiError(400, "invalid_json", f"The body is not valid UTF-8 JSON: {e}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "The body's JSON is nested too deeply.") from None


async def read_model(request: web.Request, model: type[Model]) -> Model:
    return validate(model, await read_json(request))


# Longer query values are refused whatever the parameter (a search or a filter is short).
MAX_QUERY_VALUE = 1000


def query_text(request: web.Request, name: str, *, max_length: int) -> str | None:
    """A text query parameter under the text rules (NFC, whitespace collapsed); None
    when absent or blank; 422 naming the parameter when it breaks a rule."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        text = check_text(raw, max_length=max_length)
    except PydanticCustomError as e:
        raise invalid([field_error(name, e.type, e.context)]) from None
    return text or None


@web.middleware
async def query_rules_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every query parameter of every route under the text rules, before any handler
    parses it: a control character or an overlong value is a 422 naming the parameter.
    (Percent-encoded bytes that are not UTF-8 arrive as U+FFFD, never as surrogates.)"""
    errors = []
    for name, value in request.query.items():
        try:
            check_text(name, max_length=MAX_QUERY_VALUE)
            check_text(value, max_length=MAX_QUERY_VALUE)
        except PydanticCustomError as e:
            errors.append(field_error(name, e.type, e.context))
    if errors:
        raise invalid(errors)
    return await handler(request)
