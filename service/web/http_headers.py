"""Headers every response carries unless its handler chose otherwise."""

from __future__ import annotations

from aiohttp import web


async def default_headers(request: web.Request, response: web.StreamResponse) -> None:
    """No browser guesses a type (`nosniff`), and nothing is kept by a browser or proxy
    (`no-store`): most answers hold personal data. What may be cached says so itself
    (the trust list, static files, QR images)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
