"""What the HA fault test measures around each fault: readiness seen from outside, and
from the kiosks' own record the first live decision after the fault and the offline
verdicts until then."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from tests.chaos.fleet import Fleet
from tests.chaos.gateway import Gateway


@dataclass
class Fault:
    what: str  # "primary pg0 killed", "standby pg1 killed"
    at: float  # loop time of the SIGKILL
    ready_after_s: float | None = None  # /readyz said ready again
    sync_after_s: float | None = None  # a leader and a streaming sync standby again
    readiness: Counter[str] = field(default_factory=Counter)
    first_live_s: float | None = None  # the first scan made after it decided live
    offline: int = 0  # scans made after it judged offline before that
    answered_in_window: int = 0  # live answers from the fault to the next
    slowest_answer_s: float = 0.0  # the longest a scan answered live in that time waited

    def line(self) -> str:
        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}s"

        codes = ", ".join(f"{k} x{n}" for k, n in sorted(self.readiness.items()))
        return (
            f"{self.what}: first live decision after {s(self.first_live_s)}, "
            f"offline verdicts meanwhile {self.offline}, slowest live answer "
            f"{s(self.slowest_answer_s)}, ready again after "
            f"{s(self.ready_after_s)}, synchronous again after {s(self.sync_after_s)} "
            f"(readyz: {codes})"
        )


async def until_ready(gateway: Gateway, fault: Fault, limit_s: float) -> None:
    """Ask /readyz every 0.1 s from the fault on, until it says ready."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session, asyncio.timeout(limit_s):
        while True:
            try:
                async with session.get(
                    gateway.url + "/readyz", timeout=aiohttp.ClientTimeout(total=10)
                ) as resp:
                    body = await resp.json()
                code = body.get("status") or body["error"]["code"]
            except (aiohttp.ClientError, TimeoutError) as e:
                code = type(e).__name__
            fault.readiness[code] += 1
            if code == "ready":
                fault.ready_after_s = loop.time() - fault.at
                return
            await asyncio.sleep(0.1)


def judge(fault: Fault, fleet: Fleet, until: float) -> None:
    """From the kiosks' record, once every scan had its verdict: the first scan made
    after the fault that the service decided in time, and the scans made between the
    fault and that one that the door judged offline."""
    answers = [
        (taken, k.answered_at[e])
        for k in fleet.kiosks
        for e, taken in k.taken_at.items()
        if fault.at <= taken < until and e in k.answered_at and e not in k.offline
    ]
    if not answers:
        return
    live = [answered for _, answered in answers]
    fault.slowest_answer_s = max(answered - taken for taken, answered in answers)
    first = min(live)
    fault.first_live_s = first - fault.at
    fault.answered_in_window = len(live)
    fault.offline = sum(
        1 for k in fleet.kiosks for e in k.offline if fault.at <= k.taken_at[e] <= first
    )
