"""Fault c: a kiosk cut off from the service for a while, then reconnected: its outbox
drains, in the order it made the scans. Cut off two ways: its own network path reset
while the service and the other kiosks go on, or (full run) the service stopped."""

from __future__ import annotations

import asyncio

from tests.chaos.cable import Cable
from tests.chaos.console import watching
from tests.chaos.rig import Rig


async def test_a_kiosk_cut_off_drains_its_outbox_in_order(
    rig: Rig, cutoff: str, chaos_round: int, summary: list[str]
) -> None:
    scale = rig.scale
    await rig.gateway.start()
    cable = Cable(rig.gateway.port)
    await cable.plug()
    fleet = rig.fleet(servers={0: cable.url})
    cut_off = fleet.kiosks if cutoff == "service_stopped" else fleet.kiosks[:1]
    async with fleet.running(), watching(rig.console()) as console:
        await fleet.connected(scale.limit_s)
        async with fleet.load():
            await asyncio.sleep(scale.before_s)
            made_before = {k.name: len(k.generated) for k in cut_off}
            if cutoff == "service_stopped":
                await rig.gateway.stop()
            else:
                await cable.cut()
            await asyncio.sleep(scale.fault_s)
            fleet.sample_depths()
            during = {k.name: len(k.generated) - made_before[k.name] for k in cut_off}
            if cutoff == "service_stopped":
                await rig.gateway.start()
            else:
                await cable.plug()
            await asyncio.sleep(scale.after_s)
        await fleet.drained(scale.limit_s)
        head = await rig.head()
        await console.caught_up(head, scale.limit_s)
    await cable.cut()
    tally = await rig.count(fleet)
    line = tally.line(
        f"kiosk cut off, {cutoff.replace('_', ' ')} ({scale.name}, round {chaos_round})",
        kiosks=len(fleet.kiosks),
        queued_while_cut_off=sum(fleet.peak_depth[k.name] for k in cut_off),
        console_events=f"{len(console.seqs)}/{head}",
    )
    print(line)
    summary.append(line)

    tally.assert_nothing_lost()
    assert tally.out_of_order == 0, line
    for kiosk in cut_off:
        assert during[kiosk.name] > 0 and fleet.peak_depth[kiosk.name] > 0, fleet.peak_depth
        assert kiosk.link.connects >= 2
    if cutoff == "cable":  # the others never noticed
        assert all(k.link.connects == 1 for k in fleet.kiosks[1:])
    assert console.seqs == list(range(1, head + 1))
    assert rig.gateway.errors_logged() == []
