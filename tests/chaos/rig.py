"""What one chaos test works with: its own database on the owned cluster, a site with a
gate per kiosk and people with passes, the service as a process, kiosks and a console."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from service.platform.db import init_connection
from service.web.auth import Role
from tests.chaos.cluster import PgCluster
from tests.chaos.console import Console
from tests.chaos.fleet import Fleet, LinkTuning, SimKiosk
from tests.chaos.gateway import Gateway
from tests.chaos.ledger import Tally, count
from tests.factory import Factory


@dataclass(frozen=True)
class Scale:
    name: str
    kiosks: int
    rate: float  # scans per second, per kiosk
    people: int
    before_s: float  # steady load before the fault
    fault_s: float  # how long the fault lasts
    after_s: float  # load once the fault is over
    rounds: int
    limit_s: float  # safety net for every wait (drain, recovery)


SHORT = Scale(
    "short",
    kiosks=4,
    rate=8,
    people=24,
    before_s=1.0,
    fault_s=1.0,
    after_s=0.5,
    rounds=1,
    limit_s=60,
)
FULL = Scale(
    "full",
    kiosks=10,
    rate=10,
    people=60,
    before_s=8,
    fault_s=5,
    after_s=6,
    rounds=3,
    limit_s=180,
)


TUNING = LinkTuning()


@dataclass
class ChaosSite:
    site_id: int
    gates: list[tuple[int, str]]  # (gate id, kiosk token), one per kiosk
    guard: str
    payloads: list[str]


async def make_site(conn: asyncpg.Connection, scale: Scale) -> ChaosSite:
    """Two entrances for each exit; one payload in 25 is not a pass at all."""
    factory = Factory(conn)
    site_id = await factory.site(name="Trụ sở chaos")
    gates = []
    for i in range(scale.kiosks):
        direction = "exit" if i % 3 == 2 else "entrance"
        gate_id = await factory.gate(site_id, name=f"Cổng {i}", direction=direction)
        gates.append((gate_id, await factory.token(Role.KIOSK, gate_id=gate_id)))
    key = await factory.signing_key()
    payloads = [(await factory.issued_pass(key, site_id))[1] for _ in range(scale.people)]
    payloads.append("https://example.com/not-a-pass")
    guard = await factory.token(Role.GUARD, site_id=site_id)
    return ChaosSite(site_id, gates, guard, payloads)


def make_fleet(
    scale: Scale,
    site: ChaosSite,
    gateway: Gateway,
    tmp: Path,
    servers: dict[int, str] | None = None,
    tuning: LinkTuning = TUNING,
) -> Fleet:
    servers = servers or {}
    return Fleet(
        [
            SimKiosk(
                f"kiosk{i}",
                servers.get(i, gateway.url),
                token,
                tmp / f"kiosk{i}",
                site.payloads,
                rate=scale.rate,
                seed=1000 * gateway.port + i,
                tuning=tuning,
            )
            for i, (_, token) in enumerate(site.gates)
        ]
    )


@dataclass
class Rig:
    scale: Scale
    cluster: PgCluster
    db_url: str
    site: ChaosSite
    gateway: Gateway
    tmp: Path

    def fleet(self, *, servers: dict[int, str] | None = None, tuning: LinkTuning = TUNING) -> Fleet:
        """One kiosk per gate; ``servers`` may send kiosk i somewhere else (a proxy)."""
        return make_fleet(self.scale, self.site, self.gateway, self.tmp, servers, tuning)

    def console(self) -> Console:
        return Console(self.gateway.url, self.site.guard, self.site.site_id)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the test's own (the database may have restarted since)."""
        conn = await asyncpg.connect(self.db_url)
        try:
            await init_connection(conn)
            yield conn
        finally:
            await conn.close()

    async def head(self) -> int:
        async with self.connect() as conn:
            return int(
                await conn.fetchval(
                    "SELECT last_seq FROM event_chains WHERE chain_id = $1", self.site.site_id
                )
            )

    async def count(self, fleet: Fleet) -> Tally:
        async with self.connect() as conn:
            return await count(conn, self.site.site_id, fleet)
