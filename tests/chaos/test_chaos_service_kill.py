"""Fault a: the service process is killed -9 in the middle of the load and started again
on the same port; the kiosks reconnect and drain their outboxes."""

from __future__ import annotations

import asyncio

from tests.chaos.console import watching
from tests.chaos.rig import Rig


async def test_kill_9_of_the_service_mid_load_loses_nothing(
    rig: Rig, chaos_round: int, summary: list[str]
) -> None:
    scale = rig.scale
    await rig.gateway.start()
    fleet = rig.fleet()
    async with fleet.running(), watching(rig.console()) as console:
        await fleet.connected(scale.limit_s)
        async with fleet.load():
            await asyncio.sleep(scale.before_s)
            await rig.gateway.kill()
            await asyncio.sleep(scale.fault_s)  # every kiosk offline: outboxes fill
            fleet.sample_depths()
            await rig.gateway.start()
            await asyncio.sleep(scale.after_s)
        await fleet.drained(scale.limit_s)
        head = await rig.head()
        await console.caught_up(head, scale.limit_s)
    tally = await rig.count(fleet)
    line = tally.line(
        f"kill -9 of the service ({scale.name}, round {chaos_round})",
        kiosks=len(fleet.kiosks),
        console_events=f"{len(console.seqs)}/{head}",
    )
    print(line)
    summary.append(line)

    tally.assert_nothing_lost()
    assert tally.out_of_order == 0, line
    assert console.seqs == list(range(1, head + 1))  # every event once, in order
    assert all(k.link.connects >= 2 for k in fleet.kiosks)  # each one reconnected
    assert all(fleet.peak_depth.values()), fleet.peak_depth  # and had kept scans queued
    assert rig.gateway.errors_logged() == []
