"""Reading request bodies and query strings into validated models."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic
from aiohttp import web

from service.errors import ApiError
from service.field_errors import field_errors

Model = TypeVar("Model", bound=pydantic.BaseModel)


def validate(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        raise ApiError(
            422, "validation_failed", "Some fields are invalid.", fields=field_errors(e)
        ) from None


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
