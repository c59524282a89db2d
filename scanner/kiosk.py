"""The kiosk: wires capture, decoding, debounce, trust, outbox, link, screen and door.

Threads: capture (blocking reads), decode (its own pipeline), outbox I/O and, with a
screen, display. The event loop only moves small messages between them. The path of
one scan: debounce -> outbox (durable) -> certain local rejection, or the service's
decision over the socket within ``ack_timeout``, or the offline policy -> screen and
door hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import aiohttp

from checkin_core.aio import wait_for_event
from scanner.capture import Capture, CapturedFrame, VideoSource
from scanner.clock import KioskClock
from scanner.debounce import Debouncer
from scanner.decode import Decoded, DecodePipeline, config_for
from scanner.door_hook import run_door_hook
from scanner.kiosk_config import (
    CLOCK_FILE,
    GATE_FILE,
    KNOWLEDGE_FILE,
    OUTBOX_FILE,
    SESSION_TIMEOUT,
    TRUST_FILE,
    TRUST_MIN_INTERVAL_S,
    KioskConfig,
    load_gate,
    sendable,
)
from scanner.knowledge_sync import KnowledgeSync
from scanner.link import Link, Message
from scanner.outbox import AsyncOutbox, Outbox, Scan
from scanner.scan_life import ScanLife
from scanner.screen import Display, Renderer, Status
from scanner.trust import TrustCache, fetch_trust, write_json_atomic
from scanner.verdict import (
    GateInfo,
    OfflinePolicy,
    Verdict,
    certain_rejection,
    judge_offline,
)
from scanner.window import door_screen_size
from scanner.worker import DecodeWorker

logger = logging.getLogger(__name__)


class Kiosk:
    def __init__(
        self,
        config: KioskConfig,
        *,
        opener: Callable[[], VideoSource] | None = None,
        out: TextIO = sys.stdout,
    ) -> None:
        self.config = config
        self.out = out
        self._opener = opener
        data = config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.outbox = AsyncOutbox(Outbox(data / OUTBOX_FILE))
        self.trust = TrustCache(data / TRUST_FILE)
        self.trust.load()
        self.gate = load_gate(data / GATE_FILE)
        self.knowledge = KnowledgeSync(data / KNOWLEDGE_FILE)
        self.clock = KioskClock(data / CLOCK_FILE)
        self.debouncer = Debouncer(cooldown=config.cooldown)
        self.stop = asyncio.Event()
        self.source_done = asyncio.Event()
        self._results: asyncio.Queue[tuple[CapturedFrame, list[Decoded]]] = asyncio.Queue()
        self.scans = ScanLife(self.outbox, ack_timeout=config.ack_timeout)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._trust_wake = asyncio.Event()
        self._was_state: str | None = None
        self._been_live = False

    @property
    def offline_policy(self) -> OfflinePolicy:
        if self.config.offline_policy is not None:
            return self.config.offline_policy
        return self.gate.offline_policy if self.gate is not None else "deny"

    # --- running --------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._build_threads(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        try:
            async with aiohttp.ClientSession(timeout=SESSION_TIMEOUT) as session:
                await self._serve(session)
        finally:
            self.capture.stop()
            self.worker.stop()
            if self.display is not None:
                self.display.stop()
            self.outbox.close()
            self.knowledge.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            logger.info("stopped; %d scan(s) wait in the outbox", self.outbox.depth)
        return 0

    def _build_threads(self, loop: asyncio.AbstractEventLoop) -> None:
        """Capture, decoding and (unless headless) the screen, each on its own thread."""
        cfg = self.config
        self.capture = Capture(
            cfg.source,
            loop=cfg.loop,
            fps=cfg.fps,
            opener=self._opener,
            resolution=cfg.resolution,
        )
        self.display: Display | None = None
        if not cfg.headless:
            renderer = Renderer(size=door_screen_size(cfg.window), font=cfg.font)
            self.display = Display(
                renderer,
                verdict_seconds=cfg.verdict_seconds,
                on_quit=lambda: _call_soon(loop, self.stop.set),
                fullscreen=cfg.window is None,
            )
        display = self.display
        self.worker = DecodeWorker(
            self.capture.frames,
            lambda: DecodePipeline(config_for(cfg.decoder)),
            on_codes=lambda f, c: _call_soon(loop, self._results.put_nowait, (f, c)),
            on_end=lambda: _call_soon(loop, self.source_done.set),
            on_frame=(
                (lambda f, c: display.update_frame(f.image, [d.polygon for d in c]))
                if display is not None
                else None
            ),
        )

    async def _serve(self, session: aiohttp.ClientSession) -> None:
        """The link and its helpers, then the threads; until stopped or the source ends."""
        cfg = self.config
        self.session = session
        self.link = Link(
            session,
            cfg.server,
            cfg.token,
            self.scans,
            on_hello=self._hello,
            on_time=lambda msg: self.clock.observe(msg, datetime.now(UTC)),
            heartbeat=self.heartbeat,
            heartbeat_s=cfg.heartbeat_s,
            on_knowledge=self.knowledge.pushed,
        )
        background = [
            asyncio.create_task(self.link.run(self.stop), name="link"),
            asyncio.create_task(
                self.knowledge.run(session, cfg.server, cfg.token), name="knowledge"
            ),
            asyncio.create_task(self._keep_trust_fresh(session), name="trust"),
            asyncio.create_task(self._watch_status(), name="status"),
        ]
        await self._wait_for_link(cfg.startup_wait)
        if self.display is not None:
            self.display.start()
        self.worker.start()
        self.capture.start()
        consumer = asyncio.create_task(self._consume(), name="scans")
        await _first(self.stop.wait(), self.source_done.wait())
        if not self.stop.is_set():
            await self._finish()
        self.stop.set()
        consumer.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=cfg.ack_timeout + 1)
        for task in background:
            task.cancel()
        await asyncio.gather(consumer, *background, return_exceptions=True)

    async def _wait_for_link(self, limit: float) -> None:
        """Give the socket a moment to open, and the offline copy to sync, so the
        first scans are not judged offline, nor with an old copy."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and not self.stop.is_set():
            if self.link.failed_attempts or (self.link.live and self.knowledge.synced.is_set()):
                return
            await asyncio.sleep(0.05)

    async def _finish(self) -> None:
        """A finite source ended: judge what was seen, then give the outbox a chance."""
        await asyncio.sleep(0.1)  # the last results may still be on their way
        await self._results.join()
        while self._tasks:
            await asyncio.wait(list(self._tasks))
        deadline = time.monotonic() + self.config.drain_timeout
        while self.outbox.depth and self.link.connected and time.monotonic() < deadline:
            self.link.wake()
            await asyncio.sleep(0.1)

    # --- scans ----------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            frame, codes = await self._results.get()
            for text in self.debouncer.feed([c.text for c in codes], frame.t):
                scan = await self.scans.take(sendable(text), seen_at=frame.wall)
                self._spawn(self._judge(scan, frame))
            self._results.task_done()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _judge(self, scan: Scan, frame: CapturedFrame) -> None:
        way = self.gate.way if self.gate else None
        rejected = certain_rejection(scan.payload, self.trust.trust)
        if rejected is not None:
            # No answer can open the door for this: say so now; the service still hears it.
            self._show(scan, Verdict.of_reason(rejected, "local", way), frame)
            await self.scans.denied_locally(scan, rejected)
            return
        answer = await self.scans.ask(scan)
        if answer is not None:
            verdict = Verdict.from_decision(answer)
            if verdict.reason == "unknown_key":
                self._trust_wake.set()
        else:
            verdict = judge_offline(
                scan.payload,
                policy=self.offline_policy,
                trust=self.trust.trust,
                site_id=self.gate.site_id if self.gate else None,
                now=datetime.now(UTC),
                direction=way,
                knowledge=self.knowledge.knowledge,
                skew=self.clock.correction,
                printed=self.knowledge.knowledge.printed_rule(
                    self.gate.static_pass if self.gate else "allow"
                ),
            )
            await self.scans.judged_offline(scan, verdict.decision, verdict.reason)
        self._show(scan, verdict, frame)

    def _show(self, scan: Scan, verdict: Verdict, frame: CapturedFrame) -> None:
        # From the moment the frame that held the code was read (its own timestamp).
        latency_ms = round((time.monotonic() - frame.t) * 1000, 1)
        logger.info(
            "verdict %s %s (%s) for %s in %.0f ms",
            verdict.decision,
            verdict.reason,
            verdict.source,
            scan.event_id,
            latency_ms,
        )
        if self.display is not None:
            self.display.update_verdict(verdict)
        if self.config.headless:
            line = {
                "event_id": scan.event_id,
                "decision": verdict.decision,
                "reason": verdict.reason,
                "message_vi": verdict.message_vi,
                "message_en": verdict.message_en,
                "name": verdict.name,
                "offline": verdict.offline,
                "source": verdict.source,
                "seen_at": scan.seen_at,
                "latency_ms": latency_ms,
                "frame": frame.index,
                "decode_ms": round((frame.decoded - frame.t) * 1000, 1) if frame.decoded else None,
            }
            self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.out.flush()
        command = self.config.on_allow if verdict.decision == "allow" else self.config.on_deny
        if command:
            self._spawn(self._door(command, scan, verdict))

    async def _door(self, command: str, scan: Scan, verdict: Verdict) -> None:
        """Run the door hook without holding up the next scan."""
        facts = {
            "CHECKIN_EVENT_ID": scan.event_id,
            "CHECKIN_DECISION": verdict.decision,
            "CHECKIN_REASON": verdict.reason,
            "CHECKIN_OFFLINE": "1" if verdict.offline else "0",
        }
        await run_door_hook(command, facts, limit_s=self.config.hook_timeout)

    # --- link callbacks -------------------------------------------------------------

    def _hello(self, msg: Message) -> None:
        self.clock.observe(msg, datetime.now(UTC))
        try:
            gate = GateInfo.from_hello(msg)
        except ValueError as e:
            logger.error("%s", e)
            return
        if gate != self.gate:
            write_json_atomic(self.config.data_dir / GATE_FILE, gate.to_hello())
            logger.info(
                "gate %s (%s) of site %s; offline policy %s",
                gate.gate_id,
                gate.gate_name,
                gate.site_id,
                gate.offline_policy,
            )
        self.gate = gate
        self.knowledge.connected(self.link.connects + 1, gate.site_id)  # counted after hello

    def heartbeat(self) -> dict[str, Any]:
        stats = self.capture.stats
        return {
            "fps": min(stats.fps(), 1000.0),
            "frames_dropped": self.capture.frames.dropped,
            "decode_attempts": self.worker.attempts,
            "decode_successes": self.worker.successes,
            "queue_depth": self.capture.frames.qsize(),
            "outbox_depth": self.outbox.depth,
            "camera_up": stats.camera_up,
            "frame_width": stats.width,
            "frame_height": stats.height,
            "camera_fps": min(stats.camera_fps, 1000.0),
            "offline_mode": not self.link.live,
            "knowledge_age_s": self.knowledge.beat(self.link.connects, self.link.connected),
            "sent_at": datetime.now(UTC).isoformat(),
            "clock_skew_ms": self.clock.skew_ms,
        }

    # --- background -----------------------------------------------------------------

    async def _keep_trust_fresh(self, session: aiohttp.ClientSession) -> None:
        interval = self.config.trust_refresh_s
        while True:
            try:
                self.trust.update(await fetch_trust(session, self.config.server, limit_s=10))
                wait = interval
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                logger.warning("cannot refresh the trust list: %s", e or type(e).__name__)
                wait = min(interval, 30.0)
            await asyncio.sleep(TRUST_MIN_INTERVAL_S)  # whatever asks for a refresh
            await wait_for_event(self._trust_wake, wait)
            self._trust_wake.clear()

    def link_state(self) -> str:
        """online; connecting (never online yet, and no connection attempt has failed:
        the kiosk has only just started); else offline."""
        if self.link.live:
            self._been_live = True
            return "online"
        if not self._been_live and self.link.failed_attempts == 0:
            return "connecting"
        return "offline"

    async def _watch_status(self) -> None:
        while True:
            state = self.link_state()
            if state != self._was_state:
                if state == "offline":
                    logger.warning("offline mode: policy %s", self.offline_policy)
                else:
                    logger.info("%s (%s)", state, self.config.server)
                self._was_state = state
            if self.display is not None:
                self.display.update_status(
                    Status(
                        online=state == "online",
                        connecting=state == "connecting",
                        offline_policy=self.offline_policy,
                        camera_up=self.capture.stats.camera_up,
                        hold_still=self.worker.hold_still,
                        gate_name=self.gate.gate_name if self.gate else "",
                        knowledge_age_s=self.knowledge.knowledge.age_s(datetime.now(UTC)),
                        clock_skew_s=self.clock.warning_s,
                    )
                )
            await asyncio.sleep(0.25)


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """From another thread: run ``fn`` on the loop (dropped once the loop is closed)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)
