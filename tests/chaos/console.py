"""A guard's console on ``/api/v1/events/stream``, as docs describe using it: read
everything, and after any drop reconnect with ``after_seq`` = the last seq seen."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Console:
    server: str
    token: str
    site_id: int
    seqs: list[int] = field(default_factory=list)  # every event received, in order
    news: asyncio.Event = field(default_factory=asyncio.Event)
    connects: int = 0
    resyncs: int = 0
    closes: list[str] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def url(self, after_seq: int) -> str:
        return f"{self.server}/api/v1/events/stream?site_id={self.site_id}&after_seq={after_seq}"

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"}
        ) as session:
            while not stop.is_set():
                try:
                    async with session.ws_connect(self.url(self.last_seq)) as ws:
                        self.connects += 1
                        await self._read(ws, stop)
                except (aiohttp.ClientError, OSError, TimeoutError) as e:
                    self.closes.append(type(e).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event) -> None:
        stopper = asyncio.create_task(stop.wait())
        try:
            while True:
                receiver = asyncio.create_task(ws.receive())
                await asyncio.wait({receiver, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper.done():
                    receiver.cancel()
                    return
                msg = receiver.result()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    self.closes.append(f"{msg.type.name}:{ws.close_code}")
                    return
                self.take(msg.json())
        finally:
            stopper.cancel()

    def take(self, message: dict[str, Any]) -> None:
        if message.get("type") == "event":
            self.seqs.append(int(message["seq"]))
            self.news.set()
        elif message.get("type") == "resync":
            self.resyncs += 1

    async def caught_up(self, head: int, limit_s: float = 60.0) -> None:
        """Until the console has seen seq ``head`` (a safety net, not a measurement)."""
        try:
            async with asyncio.timeout(limit_s):
                while self.last_seq < head:
                    self.news.clear()
                    await self.news.wait()
        except TimeoutError:
            raise AssertionError(
                f"the console stopped at seq {self.last_seq} of {head} "
                f"({self.connects} connects, closes {self.closes[-5:]})"
            ) from None

    def gaps_and_repeats(self, head: int) -> tuple[int, int]:
        """(events missed, events received twice) against seqs 1..head."""
        seen = set(self.seqs)
        return len(set(range(1, head + 1)) - seen), len(self.seqs) - len(seen)


@contextlib.asynccontextmanager
async def watching(console: Console) -> AsyncIterator[Console]:
    stop = asyncio.Event()
    task = asyncio.create_task(console.run(stop))
    try:
        yield console
    finally:
        stop.set()
        await task
