"""The door hook: a command run for each verdict (`--on-allow`, `--on-deny`), which is
how a kiosk opens a lock or sounds a buzzer. No shell; the verdict in its environment."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
from collections.abc import Mapping

logger = logging.getLogger(__name__)


async def run_door_hook(command: str, facts: Mapping[str, str], *, limit_s: float) -> None:
    """Run `command` with `facts` added to the environment; kill it past `limit_s`.
    Failures are logged, never raised: the next scan must not wait for a lock."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *shlex.split(command),
            env=os.environ | dict(facts),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sys.stderr,  # stdout belongs to the --headless verdict lines
        )
    except (OSError, ValueError) as e:
        logger.error("door hook %r failed to start: %s", command, e)
        return
    try:
        async with asyncio.timeout(limit_s):
            code = await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        logger.error("door hook %r took longer than %ss; killed", command, limit_s)
        return
    if code != 0:
        logger.error("door hook %r exited with %s", command, code)
