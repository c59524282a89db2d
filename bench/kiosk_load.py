"""Simulated kiosks: each holds one WebSocket (or HTTP keep-alive connection) to the
service and scans its people in turn, one scan in flight at a time (closed loop), or
at a fixed rate (open loop). Run in its own process so that it does not share an
event loop with the service. WebSocket kiosks speak the protocol straight on the
socket (KioskSocket), so that the load costs the shared CPU as little as possible.

    python -m bench.kiosk_load PLAN.json   -> prints one JSON line of results

With "record_acks" in the plan, the results also map each measured scan's event_id to
the wall-clock time its decision arrived (the scan is committed by then): the fan-out
benchmark compares those with when consoles, in another process, receive the event.

For runs measured in phases (the attack benchmark: kiosks connected all along, as doors
are, through quiet and attacked phases whose times are known only as they come):
- "samples": the results also list every measured scan as [when it was due (wall
  clock), seconds to its decision or null if it got none, reason]; `window` makes the
  figures of any stretch of time from them;
- "from_schedule" (open loop only): a scan's latency counts from when it was due, not
  from when it went out: a kiosk still waiting for the previous answer holds the next
  person at the door, and that wait is theirs too;
- "until_told": the run ends when a line (or the end) comes on stdin, or at end_at;
- "announce_start": STARTED and the clock's shift go to stderr as the clock starts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp

from bench.load_plan import (
    due_at,
    figures,
    first_scan_at,
    lateness,
    new_tally,
    record,
    scan_message,
)

CONNECT_LIMIT_S = 60.0  # after this the clock starts with whoever has connected
STARTED = "kiosks started, clock moved by"


class StartLine:
    """Holds every kiosk until all have connected, then starts the clock: the run
    measures scans, not a storm of connections. If connecting took longer than the
    plan allowed, start_at, measure_from and end_at all move later by the overrun (the
    plan dict is shared, so every kiosk reads the moved times)."""

    def __init__(self, plan: dict[str, Any], kiosks: int) -> None:
        self.plan = plan
        self.waiting = kiosks
        self.go = asyncio.Event()
        self.began = time.time()
        self.connected_s: float | None = None
        self.shift_s = 0.0

    def arrive(self) -> None:
        """A kiosk is connected (or has failed: it must not hold the others)."""
        self.waiting -= 1
        if self.waiting == 0:
            self.start()

    def start(self) -> None:
        if self.go.is_set():
            return
        self.connected_s = time.time() - self.began
        self.shift_s = max(0.0, time.time() + 0.2 - self.plan["start_at"])
        for key in ("start_at", "measure_from", "end_at"):
            self.plan[key] += self.shift_s
        if self.plan.get("announce_start"):  # whoever times phases by ours moves them too
            sys.stderr.write(f"{STARTED} {self.shift_s}\n")
            sys.stderr.flush()
        self.go.set()

    async def ready(self) -> None:
        self.arrive()
        await self.go.wait()


class KioskSocket(asyncio.Protocol):
    """One kiosk's WebSocket, spoken directly on the transport.

    The load shares the machine's two cores with the service and PostgreSQL; a
    general client (aiohttp) spends about as much CPU per scan as the service does,
    so it would measure itself. Here a scan is one pre-shaped frame written from the
    callback that read the previous answer: no task, no future per scan."""

    def __init__(self, plan: dict[str, Any], k: int, out: dict[str, Any], line: StartLine):
        self.plan, self.k, self.out, self.line = plan, k, out, line
        self.payloads = [json.dumps(p) for p in plan["payloads"][k]]
        self.interval: float | None = plan.get("interval_s")
        self.i = k % len(self.payloads)
        self.buffer = b""
        self.upgraded = False
        self.hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent = 0.0
        self.next_at = 0.0
        self.transport: asyncio.Transport | None = None

    # --- the handshake ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        url = urlsplit(self.plan["url"])
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET /api/v1/kiosk/stream HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {self.plan['tokens'][self.k]}\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        for waiter in (self.hello, self.closed):
            if not waiter.done():
                waiter.set_exception(exc or ConnectionError("the service closed the socket"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if not found:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(f"no upgrade: {head.splitlines()[0].decode(errors='replace')}")
                return
            self.upgraded, self.buffer = True, rest
        self._read_frames()

    # --- frames ----------------------------------------------------------------
    def _read_frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, size, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    break
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    break
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                break
            body, buffer = buffer[start : start + size], buffer[start + size :]
            if opcode == 0x1:
                self._on_message(json.loads(body))
            elif opcode == 0x9:  # the service's heartbeat: answer it, or it hangs up
                self._write(0x8A, body)
            elif opcode == 0x8:
                self._fail(f"closed by the service: {body[2:].decode(errors='replace')}")
                return
        self.buffer = buffer

    def _write(self, head: int, body: bytes) -> None:
        # Clients must mask; a zero key leaves the body as it is, which is all a
        # load generator needs (the key protects proxies, not the server).
        n = len(body)
        size = bytes([0x80 | n]) if n < 126 else b"\xfe" + n.to_bytes(2, "big")
        assert self.transport is not None
        self.transport.write(bytes([head]) + size + b"\x00\x00\x00\x00" + body)

    def _fail(self, why: str) -> None:
        self.connection_lost(ConnectionError(why))
        if self.transport is not None:
            self.transport.close()

    # --- scans -----------------------------------------------------------------
    def _on_message(self, message: dict[str, Any]) -> None:
        if not self.hello.done():
            self.hello.set_result(None)
            return
        record(self.out, self.plan, self.sent, message, ok=message.get("type") == "decision")
        self.i += 1
        if self.interval:
            self.next_at += self.interval
            self._send_at(self.next_at)
        else:
            self.send_scan()

    def start(self) -> None:
        self.next_at = first_scan_at(self.plan, self.k)
        self._send_at(self.next_at)

    def _send_at(self, wall_time: float) -> None:
        loop = asyncio.get_running_loop()
        delay = wall_time - time.time()
        if delay > 0:
            loop.call_later(delay, self.send_scan)
        else:
            self.send_scan()

    def send_scan(self) -> None:
        if due_at(self.plan, self.next_at) >= self.plan["end_at"]:
            if not self.closed.done():
                self.closed.set_result(None)
            return
        payload = self.payloads[self.i % len(self.payloads)]
        body = (
            f'{{"type":"scan","event_id":"{_event_id()}","payload":{payload},'
            f'"seen_at":"{datetime.now(UTC).isoformat()}"}}'
        )
        self.sent = time.perf_counter() - lateness(self.plan, self.next_at)
        self._write(0x81, body.encode())


def _event_id() -> str:
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


async def kiosk_ws(
    session: aiohttp.ClientSession,
    plan: dict[str, Any],
    k: int,
    out: dict[str, Any],
    line: StartLine,
) -> None:
    url = urlsplit(plan["url"])
    loop = asyncio.get_running_loop()
    try:
        transport, kiosk = await loop.create_connection(
            lambda: KioskSocket(plan, k, out, line), url.hostname, url.port
        )
        await kiosk.hello
    except BaseException:
        line.arrive()
        raise
    try:
        await line.ready()
        kiosk.start()
        await kiosk.closed
    finally:
        transport.close()


async def kiosk_http(
    session: aiohttp.ClientSession,
    plan: dict[str, Any],
    k: int,
    out: dict[str, Any],
    line: StartLine,
) -> None:
    payloads = plan["payloads"][k]
    headers = {"Authorization": f"Bearer {plan['tokens'][k]}"}
    interval = plan.get("interval_s")
    # A heartbeat opens the kiosk's keep-alive connection before the clock starts, as
    # the WebSocket kiosks connect first.
    try:
        url = plan["url"] + "/api/v1/kiosk/heartbeat"
        async with session.post(url, json={}, headers=headers) as r:
            r.raise_for_status()
    except BaseException:
        line.arrive()
        raise
    await line.ready()
    i, next_at = k % len(payloads), first_scan_at(plan, k)
    await _wait(next_at)
    while due_at(plan, next_at) < plan["end_at"]:
        body = scan_message(payloads[i % len(payloads)])
        del body["type"]
        sent = time.perf_counter() - lateness(plan, next_at)
        async with session.post(plan["url"] + "/api/v1/scans", json=body, headers=headers) as r:
            answer = await r.json()
        record(out, plan, sent, answer, ok=r.status == 200)
        i += 1
        if interval:
            next_at += interval
            await _wait(next_at)


async def _wait(until: float) -> None:
    delay = until - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = new_tally() | {"acks": {}, "samples": []}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    kiosk = kiosk_ws if plan["transport"] == "ws" else kiosk_http
    line = StartLine(plan, len(plan["tokens"]))
    loop = asyncio.get_running_loop()
    late = loop.call_at(loop.time() + CONNECT_LIMIT_S, line.start)
    if plan.get("until_told"):
        told = loop.run_in_executor(None, sys.stdin.readline)
        told.add_done_callback(lambda _: plan.update(end_at=min(plan["end_at"], time.time())))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(
            *(kiosk(session, plan, k, out, line) for k in range(len(plan["tokens"]))),
            return_exceptions=True,
        )
    late.cancel()
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    slow = plan.get("slow_after_s")
    return {
        **figures(out, plan["end_at"] - plan["measure_from"], slow),
        "kiosk_errors": errors[:5],
        "kiosks_failed": len(errors),
        "connected_s": None if line.connected_s is None else round(line.connected_s, 2),
        "start_shift_s": round(line.shift_s, 2),
        **({"acks": out["acks"]} if plan.get("record_acks") else {}),
        **({"samples": out["samples"]} if plan.get("samples") else {}),
    }


def run_plan(run: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """A load process's body: `run` on the plan in argv[1], on uvloop when installed."""
    with open(sys.argv[1], encoding="utf-8") as f:
        plan = json.load(f)

    async def go() -> dict[str, Any]:
        return await run(plan)

    try:
        import uvloop

        return uvloop.run(go())
    except ImportError:
        return asyncio.run(go())


def main() -> int:
    sys.stdout.write(json.dumps(run_plan(run)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
