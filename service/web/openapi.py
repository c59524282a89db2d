"""The OpenAPI 3 document, generated from the app itself: its routes, each handler's
access rule (`@requires` / `@public`), docstring, and the pydantic models it reads
(`@documented(body=..., query=...)`). Nothing is written twice, so the document and
the code stay in step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp_jinja2
import pydantic
from aiohttp import web

from service.web.auth import PUBLIC, access_of, public
from service.web.pages import PAGE_HEADERS
from service.web.text import Text

_DOC_ATTR = "__checkin_doc__"
H = TypeVar("H", bound=Callable[..., Any])

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_ERRORS = {
    "400": "Bad request (malformed JSON or parameter)",
    "401": "Missing or unknown token",
    "403": "The role or site of the token does not allow this",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "413": "Body too large",
    "415": "Body is not application/json",
    "422": "Invalid fields (each listed)",
    "503": "The database is unreachable",
}


# A query parameter: its JSON Schema (or just a type), and whether it is required.
QueryDoc = tuple[dict[str, Any] | str, bool]
MAX_ID = 10**18 - 1  # ids have at most 18 digits


def q_id(*, required: bool = False, minimum: int = 1) -> QueryDoc:
    return {"type": "integer", "minimum": minimum, "maximum": MAX_ID}, required


def q_int(minimum: int, maximum: int) -> QueryDoc:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}, False


def q_choice(*choices: str, required: bool = False) -> QueryDoc:
    return {"type": "string", "enum": list(choices)}, required


def q_text(max_length: int, *, min_length: int = 0, required: bool = False) -> QueryDoc:
    schema = Text(max_length, min_visible=min_length).json_schema()
    return schema, required


def q_time(*, required: bool = False) -> QueryDoc:
    return {"type": "string", "format": "date-time"}, required


def q_date(*, required: bool = False) -> QueryDoc:
    return {"type": "string", "format": "date"}, required


Q_BOOL = q_choice("true", "false", "1", "0")
Q_LANG = q_choice("vi", "en")


def documented(
    *,
    body: type[pydantic.BaseModel] | None = None,
    query: dict[str, QueryDoc] | None = None,
    content: str = "application/json",
) -> Callable[[H], H]:
    """What a handler reads: a JSON body model, and query parameters (name -> (JSON
    Schema or type, required); the q_* helpers make them). The summary is the
    docstring's first line."""

    def mark(handler: H) -> H:
        setattr(handler, _DOC_ATTR, {"body": body, "query": query or {}, "content": content})
        return handler

    return mark


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _path_parameter(name: str, pattern: str) -> dict[str, Any]:
    if pattern.startswith(r"\d"):
        schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    elif "[0-9a-fA-F]{8}" in pattern:
        schema = {"type": "string", "format": "uuid"}
    else:
        schema = {"type": "string", "pattern": "^" + pattern + "$"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _operation(route: web.AbstractRoute, components: dict[str, Any]) -> dict[str, Any]:
    handler = route.handler
    doc = getattr(handler, _DOC_ATTR, {"body": None, "query": {}, "content": "application/json"})
    summary = (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0]
    allowed = access_of(handler)
    operation: dict[str, Any] = {
        "operationId": route.name or handler.__name__,
        "summary": summary,
        "responses": {
            "2XX": {"description": "Success"},
            **{
                code: {
                    "description": text,
                    "content": {"application/json": {"schema": _ref("Error")}},
                }
                for code, text in _ERRORS.items()
            },
        },
    }
    if allowed is PUBLIC:
        operation["security"] = []
    else:
        roles = ", ".join(sorted(r.value for r in allowed or ()))
        operation["description"] = f"Roles: {roles}."
    info = route.resource.get_info() if route.resource else {}
    compiled = info.get("pattern")
    params = [
        _path_parameter(name, pattern)
        for name, pattern in _named_groups(compiled.pattern if compiled else "")
    ]
    params += [
        {
            "name": name,
            "in": "query",
            "required": required,
            "schema": {"type": kind} if isinstance(kind, str) else kind,
        }
        for name, (kind, required) in doc["query"].items()
    ]
    if params:
        operation["parameters"] = params
    model = doc["body"]
    if model is not None:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        operation["requestBody"] = {
            "required": True,
            "content": {doc["content"]: {"schema": _ref(model.__name__)}},
        }
    return operation


def _named_groups(regex: str) -> list[tuple[str, str]]:
    """(name, pattern) of each (?P<name>pattern) group, nested parentheses included."""
    found = []
    for match in re.finditer(r"\(\?P<(\w+)>", regex):
        depth, i = 1, match.end()
        while depth and i < len(regex):
            depth += {"(": 1, ")": -1}.get(regex[i], 0) if regex[i - 1] != "\\" else 0
            i += 1
        found.append((match[1], regex[match.end() : i - 1]))
    return found


def build_spec(app: web.Application) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None:
            continue
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "checkin-gateway",
            "version": "1",
            "description": "QR check-in gateway: health declarations, signed passes, door "
            "decisions, presence and the audit record.",
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


@dataclass(frozen=True)
class Documents:
    """The document and its readable page, made once at start: building them walks
    every route and pydantic model (hundreds of milliseconds on the event loop, which
    a public caller could otherwise repeat at will while the doors wait)."""

    spec_json: bytes
    docs_html: str


DOCUMENTS_KEY = web.AppKey("openapi_documents", Documents)


async def build_documents(app: web.Application) -> None:
    """on_startup: the routes are final by then, and nothing is served yet."""
    spec = build_spec(app)
    app[DOCUMENTS_KEY] = Documents(json.dumps(spec).encode(), _docs_page(app, spec))


@public
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3 document of this API."""
    return web.Response(body=request.app[DOCUMENTS_KEY].spec_json, content_type="application/json")


@public
async def api_docs(request: web.Request) -> web.Response:
    """A readable list of the API (no scripts, nothing fetched from the internet; its
    style sheet is ours, so the page runs under the pages' strict CSP)."""
    return web.Response(
        text=request.app[DOCUMENTS_KEY].docs_html,
        content_type="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS,
    )


def _docs_page(app: web.Application, spec: dict[str, Any]) -> str:
    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            who = "public" if op.get("security") == [] else op.get("description", "")
            body: dict[str, Any] = op.get("requestBody", {}).get("content", {})
            model = next((c["schema"]["$ref"] for c in body.values()), "")
            rows.append((method.upper(), path, op["summary"], who, model.rsplit("/", 1)[-1]))
    template = aiohttp_jinja2.get_env(app).get_template("api_docs.html")
    return template.render(lang="en", title="checkin-gateway API", rows=rows)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/openapi.json", openapi_json, name="openapi"),
        web.get("/api/v1/docs", api_docs, name="api_docs"),
    ]
