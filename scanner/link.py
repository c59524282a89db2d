"""The kiosk's link to the service (docs/protocol.md).

One WebSocket to ``/api/v1/kiosk/stream``, reopened with backoff whenever it drops.
Live scans go over the socket; scans the outbox still holds (taken while offline, or
sent without an answer) are replayed in order through ``POST /api/v1/scans/batch``.
Every decision, from either road, is reported to the scans' owner
(``scanner.scan_life``), which deletes the scan from the outbox: the service sends it
after its commit, and is idempotent on ``event_id``, so replays are safe. Except a late
one, contradicting the verdict the kiosk gave meanwhile on its own: that scan is
replayed with the verdict, so that the record says what the door did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from checkin_core.aio import wait_for_event
from scanner.outbox import Scan
from scanner.scan_life import ScanLife

logger = logging.getLogger(__name__)

STREAM_PATH = "/api/v1/kiosk/stream"
BATCH_PATH = "/api/v1/scans/batch"
SCAN_PATH = "/api/v1/scans"
BATCH_LIMIT = 500
RETRY_AFTER_LIMIT_S = 300.0  # a Retry-After longer than this is not believed
POLICY_VIOLATION = 1008  # the socket was closed for a newer one of the same token

Message = Mapping[str, Any]


class Link:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        server: str,
        token: str,
        life: ScanLife,
        *,
        on_hello: Callable[[Message], None],
        heartbeat: Callable[[], dict[str, Any]],
        on_error: Callable[[Message], None] | None = None,
        on_knowledge: Callable[[Message], None] | None = None,
        on_time: Callable[[Message], None] | None = None,
        heartbeat_s: float = 5.0,
        retry_s: float = 5.0,
        backoff_first: float = 0.5,
        backoff_limit: float = 15.0,
        request_timeout: float = 10.0,
    ) -> None:
        self.session = session
        self.server = server.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.life = life
        life.attach(self)  # the scans' owner sends through this link
        self.on_hello = on_hello
        self.on_error = on_error  # an observer of the service's errors (the chaos fleet)
        self.on_knowledge = on_knowledge  # changes to what kiosks know (scanner.knowledge)
        self.on_time = on_time  # the service's clock, answering a heartbeat (scanner/clock.py)
        self.heartbeat = heartbeat
        self.heartbeat_s = heartbeat_s
        self.retry_s = retry_s  # a scan sent without an answer is replayed after this
        self.backoff_first = backoff_first
        self.backoff_limit = backoff_limit
        self.request_timeout = request_timeout
        self.live = False  # connected, and the outbox backlog has been replayed
        # A scan taken while another was in flight waits in the outbox for its answer,
        # and newer ones queue behind it, until the replay has caught up: none overtakes.
        self._held = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._inflight: dict[str, float] = {}  # event_id -> when it was sent
        self._wake = asyncio.Event()
        self._not_before = 0.0  # monotonic: no replay before (the service said 429)
        self.connects = 0
        self.failed_attempts = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    @property
    def paused_s(self) -> float:
        """Seconds the replay still waits because the service said 429 (0: none)."""
        return max(0.0, self._not_before - time.monotonic())

    def wake(self) -> None:
        """Ask the replay loop to look at the outbox now."""
        self._wake.set()

    def give_up(self, event_id: str) -> None:
        """The kiosk has judged this scan offline (no answer in time, or an error) and
        written its verdict: replay it now, and the scans held behind it, rather than
        after retry_s."""
        self._inflight.pop(event_id, None)
        self.wake()

    async def send(self, scan: Scan) -> bool:
        """Send a live scan over the socket; False when it is not open (or not live)."""
        ws = self._ws
        if ws is None or ws.closed or not self.live or self._held:
            return False
        if self._inflight:
            self._held = True
            return False
        self._inflight[scan.event_id] = time.monotonic()
        try:
            await ws.send_json({"type": "scan", **scan.to_message()})
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as e:
            logger.warning("sending scan %s failed: %s", scan.event_id, e)
            self._inflight.pop(scan.event_id, None)
            return False
        return True

    # --- the connection ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.backoff_first
        streak = 0  # failures since the last good connection: only the first is a warning
        while not stop.is_set():
            started = time.monotonic()
            connects = self.connects
            try:
                await self._session_once(stop)
            except aiohttp.WSServerHandshakeError as e:
                self.failed_attempts += 1
                if e.status in (401, 403):
                    logger.error(
                        "the service refused the kiosk token (%s); check --token", e.status
                    )
                else:
                    logger.warning("kiosk socket refused: %s", e)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                self.failed_attempts += 1
                streak = 0 if self.connects > connects else streak + 1
                logger.log(
                    logging.WARNING if streak <= 1 else logging.DEBUG,
                    "kiosk socket failed: %s; retrying",
                    e or type(e).__name__,
                )
            if stop.is_set():
                return
            if time.monotonic() - started > 30:  # it was up a while: start over quickly
                delay = self.backoff_first
            await wait_for_event(stop, delay)
            delay = min(delay * 2, self.backoff_limit)

    async def _session_once(self, stop: asyncio.Event) -> None:
        async with self.session.ws_connect(
            self.server + STREAM_PATH,
            headers=self.headers,
            heartbeat=10.0,
            timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
        ) as ws:
            hello = await ws.receive_json(timeout=self.request_timeout)
            if not isinstance(hello, dict) or hello.get("type") != "hello":
                raise ValueError(f"expected a hello message, got {str(hello)[:200]}")
            self.on_hello(hello)
            self.connects += 1
            self._ws = ws
            logger.info("connected to %s", self.server)
            helpers = [
                asyncio.create_task(self._replay_loop(), name="replay"),
                asyncio.create_task(self._heartbeat_loop(ws), name="heartbeat"),
            ]
            stopper = asyncio.create_task(stop.wait())
            try:
                reader = asyncio.create_task(self._read(ws))
                done, _ = await asyncio.wait(
                    [reader, stopper, *helpers], return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if task is not stopper and not task.cancelled():
                        task.result()  # re-raise a failure
            finally:
                self.live = self._held = False
                self._ws = None
                self._inflight.clear()
                for task in [reader, stopper, *helpers]:
                    task.cancel()
                await asyncio.gather(reader, stopper, *helpers, return_exceptions=True)
                logger.info("disconnected from %s", self.server)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                logger.warning("ignoring a message that is not JSON")
                continue
            if not isinstance(data, dict):
                continue
            kind = data.get("type")
            if kind == "decision":
                await self._decided(data)
                if self._held and not self._inflight:
                    self.wake()  # answered: the scans held behind it can go
            elif kind == "error":
                await self._error(data)
            elif kind == "knowledge" and self.on_knowledge is not None:
                self.on_knowledge(data)
            elif kind == "hello":
                self.on_hello(data)
            elif kind == "time" and self.on_time is not None:
                self.on_time(data)
        if ws.close_code == POLICY_VIOLATION:  # see docs/protocol.md, "Limits"
            logger.error("the service closed this socket: a newer one uses the same token")
        raise ConnectionError(f"socket closed ({ws.close_code})")

    async def _decided(self, decision: Message, *, sent_offline: bool = False) -> None:
        self._inflight.pop(str(decision.get("event_id")), None)
        if await self.life.decided(decision, sent_offline=sent_offline):
            self.wake()  # the door did otherwise: replay it with the kiosk's verdict

    async def _error(self, error: Message) -> None:
        event_id = error.get("event_id")
        code = error.get("code")
        logger.warning("service error %s for %s: %s", code, event_id, error.get("message"))
        if isinstance(event_id, str):
            self._inflight.pop(event_id, None)
            if code == "service_unavailable":
                # The scan waits in the outbox: later ones queue behind it, and go live
                # again once the replay has caught up, so none overtakes it. The replay
                # starts when the kiosk has written its own verdict for it (give_up), so
                # that the verdict goes with it.
                self.live = False
        await self.life.failed(error)
        if self.on_error is not None:
            self.on_error(error)

    async def _heartbeat_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await ws.send_json({"type": "heartbeat", **self.heartbeat()})
            await asyncio.sleep(self.heartbeat_s)

    # --- replay ---------------------------------------------------------------------

    async def _replay_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                complete = await self.replay()
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError) as e:
                logger.warning("replay failed: %s", e or type(e).__name__)
                complete = False
            # A scan that found the link not live meanwhile rides with the next round:
            # going live now would let newer scans overtake it.
            if complete and not self._wake.is_set():
                self.live, self._held = True, False
            await wait_for_event(self._wake, self.paused_s or self.retry_s)

    async def replay(self) -> bool:
        """Send the outbox's scans in order until none is left; False if it stopped early
        (at a scan still in flight on the socket: those after it must not overtake it),
        or while the service has asked us to wait (429)."""
        while True:
            if time.monotonic() < self._not_before:
                return False
            now = time.monotonic()
            pending = await self.life.pending(BATCH_LIMIT)
            scans = []
            for scan in pending:
                if now - self._inflight.get(scan.event_id, -1e9) < self.retry_s:
                    break
                scans.append(scan)
            if not scans:
                return not pending
            if not await self._post_batch(scans):
                return False

    async def _post_batch(self, scans: list[Scan]) -> bool:
        body = {"scans": [s.to_message() for s in scans]}
        async with self.session.post(
            self.server + BATCH_PATH,
            json=body,
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        ) as resp:
            if resp.status == 429:
                return self._wait_as_told(resp)
            if resp.status == 422:
                text = await resp.text()
                logger.warning("the service refused a replay batch (%s); sending one by one", text)
                return await self._post_each(scans)
            if resp.status != 200:
                logger.warning("replay got HTTP %s: %s", resp.status, (await resp.text())[:300])
                return False
            decisions = (await resp.json())["decisions"]
        logger.info("replayed %d scan(s)", len(decisions))
        for scan, decision in zip(scans, decisions, strict=True):
            await self._decided(decision, sent_offline=scan.offline is not None)
        return True

    async def _post_each(self, scans: list[Scan]) -> bool:
        for scan in scans:
            async with self.session.post(
                self.server + SCAN_PATH,
                json=scan.to_message(),
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
            ) as resp:
                if resp.status == 422:
                    why = (await resp.text())[:500]
                    logger.error("the service rejects scan %s for good: %s", scan.event_id, why)
                    self._inflight.pop(scan.event_id, None)
                    await self.life.rejected(scan.event_id, why)
                    continue
                if resp.status == 429:
                    return self._wait_as_told(resp)
                if resp.status != 200:
                    return False
                decision = await resp.json()
            await self._decided(decision, sent_offline=scan.offline is not None)
        return True

    def _wait_as_told(self, resp: aiohttp.ClientResponse) -> bool:
        """429: the scans stay in the outbox, and the replay resumes after Retry-After."""
        try:
            wait = min(max(float(resp.headers.get("Retry-After", "")), 0.1), RETRY_AFTER_LIMIT_S)
        except ValueError:
            wait = self.retry_s
        logger.warning("the service asks the replay to wait %.0f s (HTTP 429)", wait)
        self._not_before = time.monotonic() + wait
        return False
