"""Serving the app: aiohttp's runner, with the parser's own refusals in our error shape.

A request aiohttp's HTTP parser cannot take (a request line over 8 KB, a header over
8 KB, bytes that are no HTTP) never reaches the app's middlewares: aiohttp answers it
in `RequestHandler.handle_error`, as text/plain, and logs it with a traceback as an
error. That is the one place to change, so the handler here answers it as JSON
(414 `uri_too_long`, 431 `headers_too_large`, 400 `bad_request`) and logs it at INFO:
a client's bad request is not a fault of the service.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from service.platform.errors import error_response

logger = logging.getLogger(__name__)

MAX_REQUEST_LINE = 8192  # bytes: "GET /path?query HTTP/1.1"
MAX_HEADER_FIELD = 8190  # bytes of one header (aiohttp's default); differs, so we can tell


class GatewayRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong) and exc.args[1] == MAX_REQUEST_LINE:
            answer = (414, "uri_too_long", f"The request line is over {MAX_REQUEST_LINE} bytes.")
        elif isinstance(exc, LineTooLong):
            answer = (431, "headers_too_large", f"A header is over {MAX_HEADER_FIELD} bytes.")
        else:
            answer = (400, "bad_request", "The request is not valid HTTP.")
        logger.info(
            "refused a malformed request", extra={"remote": request.remote, "code": answer[1]}
        )
        response = error_response(*answer)
        response.force_close()
        return response


class GatewayServer(web.Server):
    def __call__(self) -> RequestHandler:
        kwargs: dict[str, Any] = {
            "max_line_size": MAX_REQUEST_LINE,
            "max_field_size": MAX_HEADER_FIELD,
        } | self._kwargs
        return GatewayRequestHandler(self, loop=self._loop, **kwargs)


class GatewayRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds a plain Server; ours differs only in the handler it makes.
        server.__class__ = GatewayServer
        return server


def serve(app: web.Application, *, host: str, port: int, keepalive_timeout: float) -> None:
    """Like `web.run_app`, with our runner: until SIGINT or SIGTERM, then a clean stop."""

    async def main() -> None:
        runner = GatewayRunner(
            app,
            access_log=None,
            keepalive_timeout=keepalive_timeout,
            shutdown_timeout=5,
            handle_signals=True,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            await asyncio.Event().wait()  # a signal ends it with GracefulExit
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except (web.GracefulExit, KeyboardInterrupt):
        pass
