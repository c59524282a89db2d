"""HTML pages from the Jinja2 templates in service/web/templates, through aiohttp-jinja2.

One environment per app (``setup_pages``), loaded from the package itself
(``PackageLoader``, so a wheel install finds the templates), with autoescape on: a value
is escaped unless a template marks it otherwise. Undefined names fail loudly instead of
rendering empty. Lone surrogates (broken Unicode a client sent) are shown as U+FFFD
instead of breaking the page's UTF-8 (``_printable``, the environment's finalize).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

STATIC_DIR = Path(__file__).parent / "static"

# No scripts at all; styles and images only from here.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_SURROGATES = re.compile("[\ud800-\udfff]")


def _printable(value: Any) -> Any:
    """Every ``{{ value }}`` passes here before it is escaped. Markup (a macro's output)
    was built from values that passed here already."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _SURROGATES.sub("\ufffd", value)
    return value


def setup_pages(app: web.Application) -> jinja2.Environment:
    """The app's template environment (``aiohttp_jinja2.APP_KEY``)."""
    return aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("service.web", "templates"),
        autoescape=True,
        finalize=_printable,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        default_helpers=False,
    )


def page(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    csp: str = CSP,
) -> web.Response:
    """The rendered template with the pages' security headers."""
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(PAGE_HEADERS | {"Content-Security-Policy": csp})
    return response
