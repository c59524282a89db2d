"""Pages built from Python strings: what is left until every page is a Jinja2 template.

Temporary (service.web.pages is the way).

A value is escaped unless it is ``Markup`` (HTML this code built from escaped parts).
Lone surrogates (broken Unicode a client sent) are shown as U+FFFD instead of breaking
the page's UTF-8.
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path
from string import Template

from aiohttp import web

from service.web.pages import CSP, PAGE_HEADERS

TEMPLATES_DIR = Path(__file__).parent / "templates"
_SURROGATES = re.compile("[\ud800-\udfff]")


class Markup(str):
    """Trusted HTML: inserted as is."""

    __slots__ = ()


def esc(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    text = value if isinstance(value, str) else str(value)
    text = _SURROGATES.sub("\ufffd", text)
    return Markup(html.escape(text, quote=True))


def join(parts: list[Markup] | tuple[Markup, ...], sep: str = "\n") -> Markup:
    return Markup(sep.join(parts))


def tag(element: str, content: object = "", /, **attrs: object) -> Markup:
    """<name attrs>content</name>; attribute values escaped, True means present, None absent."""
    rendered = []
    for key, value in attrs.items():
        key = key.rstrip("_").replace("_", "-")
        if value is None or value is False:
            continue
        rendered.append(f" {key}" if value is True else f' {key}="{esc(value)}"')
    return Markup(f"<{element}{''.join(rendered)}>{esc(content)}</{element}>")


def void(element: str, /, **attrs: object) -> Markup:
    full = tag(element, **attrs)
    return Markup(full[: -len(f"></{element}>")] + ">")


@functools.cache
def _template(name: str) -> Template:
    return Template((TEMPLATES_DIR / name).read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    return _template(name).substitute({k: esc(v) for k, v in values.items()})


def page(
    *,
    lang: str,
    title: str,
    body: Markup,
    status: int = 200,
    css: str = "/static/declare.css",
    head: Markup | None = None,
    csp: str = CSP,
) -> web.Response:
    text = render(
        "legacy_base.html", lang=lang, title=title, body=body, css=css, head=head or Markup("")
    )
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS | {"Content-Security-Policy": csp},
    )
