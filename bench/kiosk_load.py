"""Simulated kiosks: each holds one WebSocket (or HTTP keep-alive connection) to the
service and scans its people in turn, one scan in flight at a time (closed loop), or
at a fixed rate (open loop). Run in its own process so that it does not share an
event loop with the service.

    python -m bench.kiosk_load PLAN.json   -> prints one JSON line of results
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


async def kiosk_ws(
    session: aiohttp.ClientSession, plan: dict[str, Any], k: int, out: dict[str, Any]
) -> None:
    payloads = plan["payloads"][k]
    headers = {"Authorization": f"Bearer {plan['tokens'][k]}"}
    interval = plan.get("interval_s")
    async with session.ws_connect(plan["url"] + "/api/v1/kiosk/stream", headers=headers) as ws:
        await ws.receive_json()  # hello
        await _wait(plan["start_at"])
        i, next_at = k % len(payloads), plan["start_at"]
        while time.time() < plan["end_at"]:
            body = _scan(payloads[i % len(payloads)])
            sent = time.perf_counter()
            await ws.send_str(json.dumps(body))
            answer = json.loads((await ws.receive()).data)
            _record(out, plan, sent, answer)
            i += 1
            if interval:
                next_at += interval
                await _wait(next_at)


async def kiosk_http(
    session: aiohttp.ClientSession, plan: dict[str, Any], k: int, out: dict[str, Any]
) -> None:
    payloads = plan["payloads"][k]
    headers = {"Authorization": f"Bearer {plan['tokens'][k]}"}
    interval = plan.get("interval_s")
    await _wait(plan["start_at"])
    i, next_at = k % len(payloads), plan["start_at"]
    while time.time() < plan["end_at"]:
        body = _scan(payloads[i % len(payloads)])
        del body["type"]
        sent = time.perf_counter()
        async with session.post(plan["url"] + "/api/v1/scans", json=body, headers=headers) as r:
            answer = await r.json()
        _record(out, plan, sent, answer)
        i += 1
        if interval:
            next_at += interval
            await _wait(next_at)


def _scan(payload: str) -> dict[str, Any]:
    return {
        "type": "scan",
        "event_id": str(uuid.uuid4()),
        "payload": payload,
        "seen_at": datetime.now(UTC).isoformat(),
    }


def _record(out: dict[str, Any], plan: dict[str, Any], sent: float, answer: dict[str, Any]) -> None:
    if time.time() < plan["measure_from"]:
        return
    out["latencies"].append(time.perf_counter() - sent)
    out["reasons"][answer.get("reason") or answer.get("code") or "?"] += 1


async def _wait(until: float) -> None:
    delay = until - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "reasons": Counter()}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    kiosk = kiosk_ws if plan["transport"] == "ws" else kiosk_http
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(
            *(kiosk(session, plan, k, out) for k in range(len(plan["tokens"]))),
            return_exceptions=True,
        )
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
        "kiosk_errors": errors[:5],
        "kiosks_failed": len(errors),
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
