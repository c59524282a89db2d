"""QR images of pass payloads (error correction M), rendered off the event loop."""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import qrcode
import qrcode.image.svg
from aiohttp import web
from qrcode.constants import ERROR_CORRECT_M

from service.db import CleanupContext

BOX_SIZE = 10
BORDER = 4  # the quiet zone the QR standard asks for

QR_EXECUTOR_KEY = web.AppKey("qr_executor", ThreadPoolExecutor)


def _code(payload: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX_SIZE, border=BORDER)
    code.add_data(payload)
    code.make(fit=True)
    return code


def qr_version(payload: str) -> int:
    return int(_code(payload).version)


@functools.lru_cache(maxsize=256)
def render_png(payload: str) -> bytes:
    out = io.BytesIO()
    _code(payload).make_image().save(out, format="PNG")
    return out.getvalue()


@functools.lru_cache(maxsize=256)
def render_svg(payload: str) -> bytes:
    out = io.BytesIO()
    _code(payload).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(out)
    return out.getvalue()


def executor_context() -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qr")
        app[QR_EXECUTOR_KEY] = executor
        yield
        executor.shutdown(wait=True, cancel_futures=True)

    return ctx


async def render(app: web.Application, payload: str, fmt: str) -> bytes:
    renderer = render_png if fmt == "png" else render_svg
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(app[QR_EXECUTOR_KEY], renderer, payload)
