"""Every scan's life on one kiosk, in one place.

A scan is written to the outbox before anything else happens (durable before it is
sent), then asked of the service over the link. Either the service's decision comes
in time, or the kiosk judges it offline and writes that verdict beside it. Whatever is
still in the outbox is replayed by the link, in order, until a decision deletes it.

The kiosk (and the chaos fleet's simulated kiosks) take scans and ask for decisions
here; the link sends, receives and replays, and reports every answer here. Only this
object writes the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scanner.outbox import AsyncOutbox, Scan

if TYPE_CHECKING:
    from scanner.link import Link

logger = logging.getLogger(__name__)

Message = Mapping[str, Any]


class ScanLife:
    def __init__(self, outbox: AsyncOutbox, *, ack_timeout: float) -> None:
        self.outbox = outbox
        self.ack_timeout = ack_timeout
        self._link: Link | None = None
        self._waiting: dict[str, asyncio.Future[Message]] = {}

    def attach(self, link: Link) -> None:
        self._link = link

    @property
    def link(self) -> Link:
        assert self._link is not None, "attach a link first"
        return self._link

    @property
    def depth(self) -> int:
        return self.outbox.depth

    # --- the kiosk's side -------------------------------------------------------------

    async def take(self, payload: str, *, seen_at: datetime) -> Scan:
        """A new scan, in the outbox before anything else happens."""
        scan = Scan.new(payload, seen_at=seen_at)
        await self.outbox.add(scan)
        return scan

    async def ask(self, scan: Scan) -> Message | None:
        """The service's decision within ack_timeout; None when the link is down, the
        answer is late, or it is an error (the caller then judges offline)."""
        link = self.link
        if not link.connected:
            return None
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[scan.event_id] = future
        try:
            if not await link.send(scan):
                link.wake()  # replaying the backlog: this scan rides with it, in order
            # Not wait_for: an answer arriving while it cancels the future would be
            # acknowledged before the offline verdict is written, and the door and the
            # record would disagree for good (see decided).
            await asyncio.wait([future], timeout=self.ack_timeout)
            if not future.done():
                logger.warning("no answer for %s in time: judging offline", scan.event_id)
                return None
            answer = future.result()
        finally:
            self._waiting.pop(scan.event_id, None)
        return answer if answer.get("type", "decision") == "decision" else None

    async def judged_offline(self, scan: Scan, decision: str, reason: str) -> None:
        """The kiosk decided without the service: the verdict goes with the scan, and
        the replay takes it now, rather than after the link's retry time."""
        await self.outbox.set_offline(scan.event_id, decision, reason)
        self.link.give_up(scan.event_id)

    async def denied_locally(self, scan: Scan, reason: str) -> None:
        """A scan no answer could open the door for (not a pass, a forged one): the
        screen has said so; the service still hears it, live or replayed."""
        link = self.link
        if await link.send(scan):
            return
        if link.connected:
            link.wake()
        else:
            await self.outbox.set_offline(scan.event_id, "deny", reason)

    # --- the link's side --------------------------------------------------------------

    async def pending(self, limit: int) -> list[Scan]:
        return await self.outbox.pending(limit)

    async def decided(self, decision: Message, *, sent_offline: bool = False) -> bool:
        """The service decided a scan. ``sent_offline``: it went with the kiosk's own
        verdict, so the record says what the door did. True when the door did otherwise
        meanwhile, and the scan must be replayed with the kiosk's verdict."""
        event_id = str(decision.get("event_id"))
        self._answer(event_id, decision)  # the screen first; the outbox write can follow
        if sent_offline:
            await self.outbox.ack([event_id])
            return False
        return await self.outbox.settle(event_id, str(decision.get("decision")))

    async def failed(self, error: Message) -> None:
        """The service answered a scan with an error: the kiosk judges it offline."""
        event_id = error.get("event_id")
        if not isinstance(event_id, str):
            return
        if error.get("code") == "invalid_message":  # the same bytes would fail again
            await self.rejected(event_id, f"invalid_message: {error.get('message')}")
        self._answer(event_id, error)

    async def rejected(self, event_id: str, why: str) -> None:
        """The service refuses this scan for good: parked, never replayed."""
        await self.outbox.reject(event_id, why)

    def _answer(self, event_id: str, message: Message) -> None:
        future = self._waiting.get(event_id)
        if future is not None and not future.done():
            future.set_result(message)
