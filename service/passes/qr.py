"""QR images of pass payloads (error correction M), rendered in another process.

qrcode is pure Python: a render (150-250 ms of CPU for a pass on this machine) holds
the GIL the whole time, so a thread would still stop the event loop, and with it every
door. Renders run in a small process pool behind a bounded queue (service.platform.offload):
past it, a request is answered 503 at once. Recent images are kept in this process
(an LRU of QR_CACHE images), so showing the same pass again costs no render.
"""

from __future__ import annotations

import io
import multiprocessing
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor

import qrcode
import qrcode.image.svg
from aiohttp import web
from qrcode.constants import ERROR_CORRECT_M

from service.platform.db import CleanupContext
from service.platform.offload import BoundedPool, PoolBusy, lowest_priority

BOX_SIZE = 10
BORDER = 4  # the quiet zone the QR standard asks for
QR_WORKERS = 1  # processes; the door's loop keeps the other core
QR_QUEUE = 8  # renders waiting for a worker, past which a request gets 503
QR_CACHE = 512  # images kept (a few KB each)


def _code(payload: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX_SIZE, border=BORDER)
    code.add_data(payload)
    code.make(fit=True)
    return code


def qr_version(payload: str) -> int:
    return int(_code(payload).version)


def render_png(payload: str) -> bytes:
    out = io.BytesIO()
    _code(payload).make_image().save(out, format="PNG")
    return out.getvalue()


def render_svg(payload: str) -> bytes:
    out = io.BytesIO()
    _code(payload).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(out)
    return out.getvalue()


RENDERERS = {"png": render_png, "svg": render_svg}


def qr_pool_busy() -> PoolBusy:
    return PoolBusy(
        "qr_busy",
        "Too many QR images at once; try again in a moment.",
        "Có quá nhiều yêu cầu ảnh mã QR cùng lúc, vui lòng thử lại sau.",
    )


class QrRenderer(BoundedPool):
    def __init__(self, *, workers: int = QR_WORKERS, queue: int = QR_QUEUE) -> None:
        # spawn: a fork of a process with running threads (the loop's executors) may
        # inherit a lock held by one of them.
        executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=lowest_priority,
        )
        super().__init__(executor, workers=workers, queue=queue, busy=qr_pool_busy)
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    async def render(self, payload: str, fmt: str) -> bytes:
        key = (fmt, payload)
        image = self._cache.get(key)
        if image is None:
            image = await self.call(RENDERERS[fmt], payload)
            self._cache[key] = image
            if len(self._cache) > QR_CACHE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return image


QR_RENDERER_KEY = web.AppKey("qr_renderer", QrRenderer)


def renderer_context() -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        renderer = QrRenderer()
        app[QR_RENDERER_KEY] = renderer
        yield
        renderer.shutdown()

    return ctx


async def render(app: web.Application, payload: str, fmt: str) -> bytes:
    return await app[QR_RENDERER_KEY].render(payload, fmt)
