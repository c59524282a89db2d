"""Simulated kiosks: the real outbox and link of ``scanner/``, without a camera.

Each kiosk makes scans at a steady pace and hands them to the kiosk's own owner of a
scan's life (``scanner.scan_life.ScanLife``): durable in the outbox first, then the
service's decision over the socket within the ack timeout, else the gate's offline
policy (deny), written back so the replay carries it. What the door did for each scan
is kept, to hold the record to.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from checkin_core.aio import wait_for_event
from scanner.kiosk_config import SESSION_TIMEOUT
from scanner.link import Link, Message
from scanner.outbox import AsyncOutbox, Outbox, Scan
from scanner.scan_life import ScanLife


@dataclass(frozen=True)
class LinkTuning:
    """Link timings: the kiosk's defaults scaled down so a test recovers in seconds."""

    ack_timeout: float = 1.5
    heartbeat_s: float = 1.0
    retry_s: float = 1.0
    backoff_first: float = 0.1
    backoff_limit: float = 1.0


class SimKiosk:
    def __init__(
        self,
        name: str,
        server: str,
        token: str,
        data_dir: Path,
        payloads: Sequence[str],
        *,
        rate: float,
        seed: int,
        tuning: LinkTuning = LinkTuning(),
    ) -> None:
        self.name = name
        self.server = server
        self.token = token
        self.payloads = list(payloads)
        self.rate = rate  # scans per second
        self.rng = random.Random(seed)
        self.tuning = tuning
        self.outbox = AsyncOutbox(Outbox(data_dir / "outbox.sqlite3"))
        self.generated: list[str] = []  # event ids, in the order the kiosk made them
        self.door: dict[str, str] = {}  # event id -> what the door did (allow | deny)
        self.offline: set[str] = set()  # judged by the offline policy
        self.taken_at: dict[str, float] = {}  # event id -> loop time it was scanned
        self.answered_at: dict[str, float] = {}  # ... it had the service's answer in time
        self.errors: Counter[str] = Counter()  # error codes the service sent
        self.scan_errors: Counter[str] = Counter()  # ... about a scan
        self.scans = ScanLife(self.outbox, ack_timeout=tuning.ack_timeout)
        self._judging: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    # --- lifetime -----------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=SESSION_TIMEOUT)
        t = self.tuning
        self.link = Link(
            self._session,
            self.server,
            self.token,
            self.scans,
            on_hello=lambda _: None,
            on_error=self._error,
            heartbeat=self._heartbeat,
            heartbeat_s=t.heartbeat_s,
            retry_s=t.retry_s,
            backoff_first=t.backoff_first,
            backoff_limit=t.backoff_limit,
        )
        self._tasks.append(asyncio.create_task(self.link.run(self._stop), name=self.name))

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self.outbox.close()

    # --- scans ----------------------------------------------------------------------

    async def load(self, stop: asyncio.Event) -> None:
        """Scan at about ``rate`` per second until ``stop`` is set."""
        while not stop.is_set():
            await self.scan(self.rng.choice(self.payloads))
            pause = self.rng.uniform(0.5, 1.5) / self.rate
            await wait_for_event(stop, pause)

    async def scan(self, payload: str) -> None:
        scan = await self.scans.take(payload, seen_at=datetime.now(UTC))
        self.generated.append(scan.event_id)
        self.taken_at[scan.event_id] = asyncio.get_running_loop().time()
        task = asyncio.create_task(self._judge(scan))
        self._judging.add(task)
        task.add_done_callback(self._judging.discard)

    async def _judge(self, scan: Scan) -> None:
        """As ``Kiosk._judge``: the service's answer in time, else the offline policy."""
        answer = await self.scans.ask(scan)
        if answer is not None:
            self.door[scan.event_id] = "allow" if answer.get("decision") == "allow" else "deny"
            self.answered_at[scan.event_id] = asyncio.get_running_loop().time()
        else:  # the gate's offline policy is deny: the door stays shut
            self.door[scan.event_id] = "deny"
            self.offline.add(scan.event_id)
            await self.scans.judged_offline(scan, "deny", "offline_denied")

    async def judged(self) -> None:
        """Every scan made so far has had its verdict at the door."""
        while self._judging:
            await asyncio.wait(list(self._judging))

    # --- link callbacks -------------------------------------------------------------

    def _error(self, msg: Message) -> None:
        code = str(msg.get("code"))
        self.errors[code] += 1
        if msg.get("event_id") is not None:
            self.scan_errors[code] += 1

    def _heartbeat(self) -> dict[str, Any]:
        return {"fps": 10.0, "outbox_depth": self.outbox.depth, "offline_mode": not self.link.live}


@dataclass
class Fleet:
    kiosks: list[SimKiosk]
    peak_depth: dict[str, int] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)  # scans sent by the test itself

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Fleet]:
        for kiosk in self.kiosks:
            await kiosk.start()
        try:
            yield self
        finally:
            for kiosk in self.kiosks:
                await kiosk.close()

    @contextlib.asynccontextmanager
    async def load(self) -> AsyncIterator[None]:
        """Steady scanning from every kiosk while the block runs; then every scan judged."""
        stop = asyncio.Event()
        loads = [asyncio.create_task(k.load(stop)) for k in self.kiosks]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*loads)
            for kiosk in self.kiosks:
                await kiosk.judged()

    async def connected(self, limit_s: float = 60.0) -> None:
        """Until every kiosk's socket is up and its backlog replayed."""
        async with asyncio.timeout(limit_s):
            while not all(k.link.live for k in self.kiosks):  # noqa: ASYNC110 (no event)
                await asyncio.sleep(0.05)

    def sample_depths(self) -> None:
        for k in self.kiosks:
            self.peak_depth[k.name] = max(self.peak_depth.get(k.name, 0), k.outbox.depth)

    async def drained(self, limit_s: float) -> None:
        """Until every outbox is empty (a safety net: a stuck outbox fails the test)."""
        try:
            async with asyncio.timeout(limit_s):
                while True:
                    if not any([await k.outbox.pending(1) for k in self.kiosks]):
                        return
                    for k in self.kiosks:
                        k.link.wake()
                    await asyncio.sleep(0.1)
        except TimeoutError:
            left = {k.name: k.outbox.depth for k in self.kiosks if k.outbox.depth}
            raise AssertionError(f"outboxes not drained: {left}") from None
