"""Simulated kiosks: each holds one WebSocket (or HTTP keep-alive connection) to the
service and scans its people in turn, one scan in flight at a time (closed loop), or
at a fixed rate (open loop). Run in its own process so that it does not share an
event loop with the service.

    python -m bench.kiosk_load PLAN.json   -> prints one JSON line of results

With "record_acks" in the plan, the results also map each measured scan's event_id to
the wall-clock time its decision arrived (the scan is committed by then): the fan-out
benchmark compares those with when consoles, in another process, receive the event.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp

CONNECT_LIMIT_S = 60.0  # after this the clock starts with whoever has connected


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
        self.go.set()

    async def ready(self) -> None:
        self.arrive()
        await self.go.wait()


async def kiosk_ws(
    session: aiohttp.ClientSession,
    plan: dict[str, Any],
    k: int,
    out: dict[str, Any],
    line: StartLine,
) -> None:
    payloads = plan["payloads"][k]
    headers = {"Authorization": f"Bearer {plan['tokens'][k]}"}
    interval = plan.get("interval_s")
    try:
        ws = await session.ws_connect(plan["url"] + "/api/v1/kiosk/stream", headers=headers)
        await ws.receive_json()  # hello
    except BaseException:
        line.arrive()
        raise
    async with ws:
        await line.ready()
        i, next_at = k % len(payloads), _first_scan_at(plan, k)
        await _wait(next_at)
        while time.time() < plan["end_at"]:
            body = _scan(payloads[i % len(payloads)])
            sent = time.perf_counter()
            await ws.send_str(json.dumps(body))
            answer = json.loads((await ws.receive()).data)
            _record(out, plan, sent, answer, ok=answer.get("type") == "decision")
            i += 1
            if interval:
                next_at += interval
                await _wait(next_at)


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
    i, next_at = k % len(payloads), _first_scan_at(plan, k)
    await _wait(next_at)
    while time.time() < plan["end_at"]:
        body = _scan(payloads[i % len(payloads)])
        del body["type"]
        sent = time.perf_counter()
        async with session.post(plan["url"] + "/api/v1/scans", json=body, headers=headers) as r:
            answer = await r.json()
        _record(out, plan, sent, answer, ok=r.status == 200)
        i += 1
        if interval:
            next_at += interval
            await _wait(next_at)


def _first_scan_at(plan: dict[str, Any], k: int) -> float:
    """Open loop: kiosk k of n starts k/n of an interval late, so that scans arrive
    evenly, not as n at once every interval (which would measure a burst's queue)."""
    interval = plan.get("interval_s") or 0.0
    return float(plan["start_at"]) + interval * k / len(plan["tokens"])


def _scan(payload: str) -> dict[str, Any]:
    return {
        "type": "scan",
        "event_id": str(uuid.uuid4()),
        "payload": payload,
        "seen_at": datetime.now(UTC).isoformat(),
    }


def _record(
    out: dict[str, Any], plan: dict[str, Any], sent: float, answer: dict[str, Any], *, ok: bool
) -> None:
    now = time.time()
    if now < plan["measure_from"]:
        return
    if not ok:  # a 503 or an error message: counted, not timed as a decision
        out["errors"] += 1
        error = answer.get("error")
        out["reasons"][answer.get("code") or (error or {}).get("code") or "?"] += 1
        return
    out["latencies"].append(time.perf_counter() - sent)
    out["reasons"][answer.get("reason") or "?"] += 1
    if plan.get("record_acks"):
        out["acks"][answer["event_id"]] = now


async def _wait(until: float) -> None:
    delay = until - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "reasons": Counter(), "errors": 0, "acks": {}}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    kiosk = kiosk_ws if plan["transport"] == "ws" else kiosk_http
    line = StartLine(plan, len(plan["tokens"]))
    loop = asyncio.get_running_loop()
    late = loop.call_at(loop.time() + CONNECT_LIMIT_S, line.start)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(
            *(kiosk(session, plan, k, out, line) for k in range(len(plan["tokens"]))),
            return_exceptions=True,
        )
    late.cancel()
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    lat = sorted(out["latencies"])
    seconds = plan["end_at"] - plan["measure_from"]

    def pct(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else None

    return {
        "decisions": len(lat),
        "per_second": round(len(lat) / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "reasons": dict(out["reasons"]),
        "errors": out["errors"],
        "kiosk_errors": errors[:5],
        "kiosks_failed": len(errors),
        "connected_s": None if line.connected_s is None else round(line.connected_s, 2),
        "start_shift_s": round(line.shift_s, 2),
        **({"acks": out["acks"]} if plan.get("record_acks") else {}),
    }


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        plan = json.load(f)
    try:
        import uvloop

        result = uvloop.run(run(plan))
    except ImportError:
        result = asyncio.run(run(plan))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
