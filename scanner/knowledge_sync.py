"""Keeps the kiosk's copy (scanner.knowledge) current: pulls, pushes, heartbeats.

On every connection the kiosk pulls ``GET /api/v1/kiosk/sync?after=CURSOR``; then the
service pushes ``knowledge`` messages on the socket as changes happen. A push that
does not follow on from the copy (``from`` is not where the copy stands: a message
missed) wakes a pull instead. Pulls run one at a time, in one task, so the copy only
moves forward. While the socket that was synced stays up, each heartbeat marks the
copy complete as of now (its age stays below a heartbeat); offline it ages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from checkin_core.aio import wait_for_event
from scanner.knowledge import Knowledge

logger = logging.getLogger(__name__)

SYNC_PATH = "/api/v1/kiosk/sync"
RETRY_S = 5.0


class KnowledgeSync:
    def __init__(self, path: Path) -> None:
        self.knowledge = Knowledge(path)
        self._wake = asyncio.Event()
        self.synced = asyncio.Event()  # a pull succeeded on the current connection
        self._synced_connect = -1  # the link's connection that the copy is current on
        self.connect_no = 0  # the link's, when the last wake came from a hello

    def close(self) -> None:
        self.knowledge.close()

    def connected(self, connect_no: int, site_id: int) -> None:
        """A hello came (a new connection): pull what changed meanwhile."""
        self.knowledge.moved(site_id)
        self.connect_no = connect_no
        self.synced.clear()
        self._wake.set()

    def pushed(self, msg: Mapping[str, Any]) -> None:
        """A ``knowledge`` message from the socket."""
        fits = self.knowledge.fits(msg)
        if fits is None:
            return
        if fits and self.synced.is_set():
            try:
                self.knowledge.apply(msg, now=datetime.now(UTC))
                return
            except ValueError as e:
                logger.warning("ignoring a knowledge message: %s", e)
        self._wake.set()  # a gap, or not pulled yet on this connection: pull

    def beat(self, connect_no: int, connected: bool) -> float | None:
        """At each heartbeat: the copy's age in seconds (None: no copy)."""
        now = datetime.now(UTC)
        if connected and connect_no == self._synced_connect:
            self.knowledge.touch(now)
        return self.knowledge.age_s(now)

    async def run(self, session: aiohttp.ClientSession, server: str, token: str) -> None:
        url = server.rstrip("/") + SYNC_PATH
        headers = {"Authorization": f"Bearer {token}"}
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            connect_no = self.connect_no
            try:
                await self._pull(session, url, headers)
                self._synced_connect = connect_no
                self.synced.set()
                failures = 0
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                failures += 1
                logger.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,
                    "cannot sync what the kiosk knows: %s",
                    e or type(e).__name__,
                )
                await wait_for_event(self._wake, RETRY_S)
                self._wake.set()

    async def _pull(
        self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]
    ) -> None:
        cursor = self.knowledge.cursor
        params = {"after": str(cursor)} if cursor is not None else {}
        async with session.get(
            url, params=params, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            resp.raise_for_status()
            answer = await resp.json()
        if not isinstance(answer, dict):
            raise ValueError("the sync answer is not an object")
        self.knowledge.apply(answer, now=datetime.now(UTC))
        logger.info(
            "offline copy at %s: %d refused pass(es)",
            answer.get("cursor"),
            len(self.knowledge.refused),
        )
