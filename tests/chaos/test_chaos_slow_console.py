"""Fault e: a console that never reads its feed. The check-in path and the other
consoles must not wait for it: its buffers are bounded, it is cut off, and when it
reconnects with after_seq it gets everything it missed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aiohttp

from service.console.feed import SEND_TIMEOUT_S
from tests.chaos.console import Console, watching
from tests.chaos.fleet import Fleet
from tests.chaos.rig import Rig
from tests.chaos.stuck_console import StuckConsole

BURST = 2  # batches of 500 scans: more than a console's socket buffers hold


async def burst(rig: Rig, fleet: Fleet) -> None:
    """A kiosk's backlog of the whole morning, replayed at once (junk: quick to make)."""
    token = rig.site.gates[0][1]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for _ in range(BURST):
            now = datetime.now(UTC).isoformat()
            scans = [
                {"event_id": str(uuid.uuid4()), "payload": "junk", "seen_at": now}
                for _ in range(500)
            ]
            async with session.post(
                rig.gateway.url + "/api/v1/scans/batch", json={"scans": scans}
            ) as resp:
                assert resp.status == 200, await resp.text()
            fleet.extra += [s["event_id"] for s in scans]


def answered(fleet: Fleet, marks: list[int], until: list[int]) -> tuple[int, int]:
    """(scans the service answered in time, scans made) between two marks."""
    made = [e for k, a, b in zip(fleet.kiosks, marks, until, strict=True) for e in k.generated[a:b]]
    offline = set().union(*(k.offline for k in fleet.kiosks))
    return sum(1 for e in made if e not in offline), len(made)


async def test_a_console_that_never_reads_is_cut_off_and_slows_nobody(
    rig: Rig, chaos_round: int, summary: list[str]
) -> None:
    scale = rig.scale
    await rig.gateway.start()
    fleet = rig.fleet()
    stuck = StuckConsole(rig.gateway.port, rig.site.guard, rig.site.site_id)

    def mark() -> list[int]:
        return [len(k.generated) for k in fleet.kiosks]

    async with fleet.running(), watching(rig.console()) as fast:
        await fleet.connected(scale.limit_s)
        async with fleet.load():
            start = mark()
            await asyncio.sleep(scale.before_s)  # without the stuck console
            joined = mark()
            await stuck.connect()
            await burst(rig, fleet)
            # Its socket fills at once; the service gives up on it after SEND_TIMEOUT_S.
            await asyncio.sleep(max(scale.before_s, SEND_TIMEOUT_S + 1.0))
            end = mark()
        head = await rig.head()
        await fast.caught_up(head, scale.limit_s)
        try:
            got, ending = await asyncio.wait_for(stuck.wake_and_read(), scale.limit_s)
        finally:
            stuck.close()
        slow = Console(rig.gateway.url, rig.site.guard, rig.site.site_id)
        for message in got:
            slow.take(message)
        cut_at = slow.last_seq
        async with watching(slow):  # it reconnects with after_seq, as told
            await slow.caught_up(head, scale.limit_s)
    tally = await rig.count(fleet)
    before, with_stuck = answered(fleet, start, joined), answered(fleet, joined, end)
    ratio = (with_stuck[0] / with_stuck[1]) / (before[0] / before[1])
    line = tally.line(
        f"console that never reads ({scale.name}, round {chaos_round})",
        kiosks=len(fleet.kiosks),
        stuck_console_cut_at=f"seq {cut_at} of {head} ({ending}, {slow.resyncs} resync)",
        answered_in_time=f"{before[0]}/{before[1]} before, {with_stuck[0]}/{with_stuck[1]} "
        f"with it (ratio {ratio:.2f})",
        fast_console_events=f"{len(fast.seqs)}/{head}",
    )
    print(line)
    summary.append(line)

    tally.assert_nothing_lost()
    assert fast.seqs == list(range(1, head + 1))  # the other console missed nothing
    assert fast.connects == 1 and fast.resyncs == 0  # and was never cut off itself
    assert cut_at < head and ending in ("close", "eof", "reset"), (cut_at, head, ending)
    assert slow.seqs == list(range(1, head + 1))  # after reconnecting: everything, once
    assert rig.gateway.errors_logged() == []
