"""Fault d: the service's database connections all held. A pool of one, and a
transaction of someone else's holding the site's event chain: the connection sits in a
batch waiting for it. Requests wait a bounded time and answer 503
service_unavailable, none hangs; once the lock is gone, everything queued is recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp

from tests.chaos.console import watching
from tests.chaos.gateway import Gateway
from tests.chaos.rig import Rig

POOL = {
    "CHECKIN_POOL_MAX_SIZE": "1",
    "CHECKIN_DB_ACQUIRE_TIMEOUT": "0.3",
    "CHECKIN_DB_COMMAND_TIMEOUT": "1",
}
HOLD_S = 2.5  # the lock is held this long at least: two command timeouts and more
NEVER = aiohttp.ClientTimeout(total=60)  # a safety net: a hung request fails the test


class Prober:
    """Plain HTTP requests during the fault, one after another of each kind: readiness,
    heartbeats and scans; every answer counted by status and error code."""

    def __init__(self, gateway: Gateway, token: str, payload: str) -> None:
        self.gateway = gateway
        self.headers = {"Authorization": f"Bearer {token}"}
        self.payload = payload
        self.answers: Counter[tuple[str, int, str]] = Counter()
        self.scans: dict[str, dict[str, Any]] = {}  # event id -> body, to send again
        self.longest_s = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(timeout=NEVER) as session:
            await asyncio.gather(
                self._keep_asking(session, stop, "readyz"),
                self._keep_asking(session, stop, "heartbeat"),
                self._keep_asking(session, stop, "scan"),
            )

    async def _keep_asking(
        self, session: aiohttp.ClientSession, stop: asyncio.Event, what: str
    ) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            if what == "readyz":
                await self._ask(session, what, "GET", "/readyz", None)
            elif what == "heartbeat":
                await self._ask(session, what, "POST", "/api/v1/kiosk/heartbeat", {})
            else:
                scan = {
                    "event_id": str(uuid.uuid4()),
                    "payload": self.payload,
                    "seen_at": datetime.now(UTC).isoformat(),
                }
                self.scans[scan["event_id"]] = scan
                await self._ask(session, what, "POST", "/api/v1/scans", scan)
            self.longest_s = max(self.longest_s, loop.time() - started)  # reported only
            await asyncio.sleep(0.1)

    async def _ask(
        self,
        session: aiohttp.ClientSession,
        what: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
    ) -> None:
        headers = self.headers if what != "readyz" else {}
        async with session.request(
            method, self.gateway.url + path, json=body, headers=headers
        ) as resp:
            text = await resp.json() if resp.status != 204 else {}
        code = text.get("error", {}).get("code", "") if isinstance(text, dict) else ""
        self.answers[(what, resp.status, code)] += 1

    async def resend(self) -> list[str]:
        """What a kiosk does with scans it was told could not be recorded: send again."""
        async with aiohttp.ClientSession(timeout=NEVER) as session:
            async with session.post(
                self.gateway.url + "/api/v1/scans/batch",
                json={"scans": list(self.scans.values())},
                headers=self.headers,
            ) as resp:
                assert resp.status == 200, await resp.text()
                return [d["event_id"] for d in (await resp.json())["decisions"]]


async def test_pool_exhausted_answers_503_without_hanging_then_records_everything(
    rig: Rig, chaos_round: int, summary: list[str]
) -> None:
    scale = rig.scale
    rig.gateway.settings |= POOL
    await rig.gateway.start()
    fleet = rig.fleet()
    # The probe uses the last kiosk's gate; its scans join the count below.
    prober = Prober(rig.gateway, rig.site.gates[-1][1], rig.site.payloads[0])
    async with fleet.running(), watching(rig.console()) as console:
        await fleet.connected(scale.limit_s)
        async with fleet.load(), rig.connect() as locker:
            await asyncio.sleep(scale.before_s)
            async with locker.transaction():
                await locker.execute(
                    "SELECT 1 FROM event_chains WHERE chain_id = $1 FOR UPDATE", rig.site.site_id
                )
                stop = asyncio.Event()
                probing = asyncio.create_task(prober.run(stop))
                await asyncio.sleep(max(scale.fault_s, HOLD_S))
                fleet.sample_depths()
                stop.set()
                await probing
            await asyncio.sleep(scale.after_s)
        fleet.extra = await prober.resend()
        await fleet.drained(scale.limit_s)
        head = await rig.head()
        await console.caught_up(head, scale.limit_s)
    tally = await rig.count(fleet)
    unavailable = sum(k.scan_errors["service_unavailable"] for k in fleet.kiosks)
    answers = sorted(f"{w} {s} {c}".strip() + f" x{n}" for (w, s, c), n in prober.answers.items())
    line = tally.line(
        f"pool exhausted ({scale.name}, round {chaos_round})",
        kiosks=len(fleet.kiosks),
        probe_answers="; ".join(answers),
        longest_probe_wait=f"{prober.longest_s:.1f}s",
        scans_told_unavailable=unavailable,
        console_events=f"{len(console.seqs)}/{head}",
    )
    print(line)
    summary.append(line)

    tally.assert_nothing_lost()
    answered = {(what, status, code) for what, status, code in prober.answers}
    assert answered <= {
        ("readyz", 200, ""),
        ("readyz", 503, "database_unreachable"),
        ("heartbeat", 204, ""),
        ("heartbeat", 503, "service_unavailable"),
        ("scan", 200, ""),
        ("scan", 503, "service_unavailable"),
    }, prober.answers
    assert ("scan", 503, "service_unavailable") in answered
    assert ("heartbeat", 503, "service_unavailable") in answered
    assert ("readyz", 503, "database_unreachable") in answered
    assert unavailable > 0
    assert console.seqs == list(range(1, head + 1))
    assert rig.gateway.errors_logged() == []
