"""Small asyncio helpers that the kiosk and the service share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Until `event` is set (True) or `seconds` have passed (False).

    Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
    event is set, and a loop around it then never ends (seen: a kiosk link that would
    not stop, once its replay was woken often)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


def raise_if_cancelled() -> None:
    """In a loop's handler of errors: end the task if it was cancelled. An awaited clean-up
    that fails (a rollback, a reset) raises its own error in place of the CancelledError
    it ran for; a loop that logs errors and goes on would then never stop, and
    cancel_and_wait would wait for it for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait until each has finished its clean-up."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
