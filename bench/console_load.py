"""Simulated consoles: each holds one live event feed (/api/v1/events/stream) of a site
and notes the wall-clock time every event arrives, and whether its seq follows the
previous one. Its own process, like the kiosks, so that reading the feeds does not
share an event loop with the scans or the service.

    python -m bench.console_load PLAN.json OUT.json

The results go to a file, not stdout: they are large (a time per event and console),
and the process finishes while its parent may not be reading a pipe yet.

The plan: url, token (a guard or auditor of the site), site_id, consoles, start_at
(connected by then), end_at and grace_s (how long to keep reading after the last scan).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

from bench.kiosk_load import run_plan


async def console(
    session: aiohttp.ClientSession, plan: dict[str, Any], out: dict[str, Any]
) -> None:
    url = f"{plan['url']}/api/v1/events/stream?site_id={plan['site_id']}"
    headers = {"Authorization": f"Bearer {plan['token']}"}
    async with session.ws_connect(url, headers=headers) as ws:
        hello = await ws.receive_json()
        if hello.get("type") != "hello":
            raise RuntimeError(f"expected hello, got {hello}")
        out["connected"] += 1
        stop_at = plan["end_at"] + plan["grace_s"]
        last_seq: int | None = None
        while (remaining := stop_at - time.time()) > 0:
            try:
                msg = await ws.receive(timeout=remaining)
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"the feed ended: {msg.type!r} {msg.extra!r}")
            arrived = time.time()
            event = json.loads(msg.data)
            if event.get("type") != "event":
                out["other_messages"].append(event)
                continue
            seq = event["seq"]
            if last_seq is not None and seq <= last_seq:
                out["duplicates"] += 1
            elif last_seq is not None and seq > last_seq + 1:
                out["gaps"] += 1
            last_seq = max(seq, last_seq or 0)
            if event.get("event_id"):
                out["receipts"].setdefault(event["event_id"], []).append(arrived)


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "connected": 0,
        "receipts": {},
        "gaps": 0,
        "duplicates": 0,
        "other_messages": [],
    }
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(
            *(console(session, plan, out) for _ in range(plan["consoles"])),
            return_exceptions=True,
        )
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    out["consoles_failed"] = len(errors)
    out["console_errors"] = errors[:5]
    out["other_messages"] = out["other_messages"][:5]
    return out


def main() -> int:
    result = run_plan(run)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
