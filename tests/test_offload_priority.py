"""Work moved off the event loop runs at the lowest CPU priority: when the cores are
short, the door's decisions and the database go first (service.platform.offload)."""

from __future__ import annotations

import os

from service.identity.hashing import HashPool
from service.passes.qr import QrRenderer


async def test_password_hashing_threads_run_at_nice_19() -> None:
    pool = HashPool(workers=1, queue=0)
    try:
        assert await pool.call(os.getpriority, os.PRIO_PROCESS, 0) == 19
        assert os.getpriority(os.PRIO_PROCESS, 0) < 19  # the loop's own thread is untouched
    finally:
        pool.shutdown()


async def test_qr_rendering_processes_run_at_nice_19() -> None:
    renderer = QrRenderer()
    try:
        assert await renderer.call(os.getpriority, os.PRIO_PROCESS, 0) == 19
    finally:
        renderer.shutdown()
