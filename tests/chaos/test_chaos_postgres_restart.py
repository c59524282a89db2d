"""Fault b: PostgreSQL restarted in the middle of the load, with a fast shutdown
(sessions told to end) and an immediate one (crash recovery on start). The service
recovers by itself: not ready meanwhile, service_unavailable to the kiosks, which keep
their scans queued and replay them once it is back."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from tests.chaos.console import watching
from tests.chaos.gateway import Gateway
from tests.chaos.rig import Rig


async def readiness(gateway: Gateway, seconds: float) -> Counter[str]:
    """Ask /readyz every 0.1 s for ``seconds``; count the answers by code."""
    answers: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    async with aiohttp.ClientSession() as session:
        while loop.time() < end:
            async with session.get(
                gateway.url + "/readyz", timeout=aiohttp.ClientTimeout(total=30)
            ) as resp:
                body = await resp.json()
                answers[body.get("status") or body["error"]["code"]] += 1
            await asyncio.sleep(0.1)
    return answers


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_mid_load_loses_nothing(
    rig: Rig, mode: str, chaos_round: int, summary: list[str]
) -> None:
    scale = rig.scale
    await rig.gateway.start()
    fleet = rig.fleet()
    async with fleet.running(), watching(rig.console()) as console:
        await fleet.connected(scale.limit_s)
        async with fleet.load():
            await asyncio.sleep(scale.before_s)
            await rig.cluster.stop_async("fast" if mode == "fast" else "immediate")
            outage = await readiness(rig.gateway, scale.fault_s)
            fleet.sample_depths()
            await rig.cluster.start_async()
            await rig.gateway.wait_ready(scale.limit_s)  # by itself: nobody restarts it
            await asyncio.sleep(scale.after_s)
        await fleet.drained(scale.limit_s)
        head = await rig.head()
        await console.caught_up(head, scale.limit_s)
    tally = await rig.count(fleet)
    unavailable = sum(k.scan_errors["service_unavailable"] for k in fleet.kiosks)
    line = tally.line(
        f"PostgreSQL {mode} restart ({scale.name}, round {chaos_round})",
        kiosks=len(fleet.kiosks),
        scans_told_unavailable=unavailable,
        console_events=f"{len(console.seqs)}/{head}",
    )
    print(line)
    summary.append(line)

    tally.assert_nothing_lost()
    assert outage["database_unreachable"] > 0 and "ready" not in outage, outage
    assert unavailable > 0  # said on the socket, scan by scan
    assert any(fleet.peak_depth.values()), fleet.peak_depth
    assert console.seqs == list(range(1, head + 1))
    assert rig.gateway.proc is not None and rig.gateway.proc.returncode is None
    assert rig.gateway.starts == 1
    assert rig.gateway.errors_logged() == []
