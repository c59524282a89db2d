"""Two replicas: two real `checkin-gateway serve` processes on one database, as behind
the load balancer of docker-compose's `scale` profile. Kiosks on instance A and
consoles on instance B see one record. (tests/test_fanout.py covers the feed itself,
with two apps in one process: replay, resumption, slow consoles.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from checkin_core.keys import TrustList
from checkin_core.passes import verify_pass
from service.web.auth import Role
from tests.checkin_helpers import make_door, scan_body
from tests.cli_helpers import free_port
from tests.declaring import declaration
from tests.factory import Factory, bearer

TIMEOUT_S = 20  # a bound on waiting, not a measurement


@dataclass
class Instance:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def serve_command() -> list[str]:
    script = Path(sys.executable).with_name("checkin-gateway")
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "service", "serve"]


def start(db_url: str, data_dir: Path, log: Path) -> Instance:
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": db_url,
        "CHECKIN_PORT": str(port),
        "CHECKIN_DATA_DIR": str(data_dir),
        "CHECKIN_LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(serve_command(), env=env, stdout=out, stderr=subprocess.STDOUT)
    return Instance(f"http://127.0.0.1:{port}", proc, log)


def wait_ready(instance: Instance) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if instance.proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(instance.url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{instance.url} not ready:\n{instance.log.read_text()[-3000:]}")


def stop(instance: Instance) -> None:
    if instance.proc.poll() is None:
        instance.proc.send_signal(signal.SIGINT)
        try:
            instance.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            instance.proc.kill()
            instance.proc.wait()


@pytest.fixture
def replicas(db_url: str, tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    """Instances A and B. They share one data folder, as the replicas of the compose
    file share one volume: it holds the signing keys (docs/scaling.md)."""
    data_dir = tmp_path / "data"
    a = start(db_url, data_dir, tmp_path / "a.log")
    b = start(db_url, data_dir, tmp_path / "b.log")
    try:
        wait_ready(a)
        wait_ready(b)
        yield a, b
    finally:
        stop(a)
        stop(b)


async def kiosk(
    session: aiohttp.ClientSession, instance: Instance, token: str, payloads: list[str]
) -> list[dict[str, Any]]:
    """One kiosk on its WebSocket: each scan waits for its decision before the next."""
    url = instance.url + "/api/v1/kiosk/stream"
    async with session.ws_connect(url, headers=bearer(token)) as ws:
        assert (await ws.receive_json(timeout=TIMEOUT_S))["type"] == "hello"
        answers = []
        for payload in payloads:
            await ws.send_json({"type": "scan", **scan_body(payload)})
            answer = await ws.receive_json(timeout=TIMEOUT_S)
            assert answer["type"] == "decision", answer
            answers.append(answer)
        return answers


async def console(
    session: aiohttp.ClientSession, instance: Instance, site_id: int, token: str, after: int
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(
        f"{instance.url}/api/v1/events/stream?site_id={site_id}&after_seq={after}",
        headers=bearer(token),
    )
    assert (await ws.receive_json(timeout=TIMEOUT_S))["type"] == "hello"
    return ws


async def events(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while len(received) < count:
        message = await ws.receive_json(timeout=TIMEOUT_S)
        if message["type"] == "event":
            received.append(message)
    return received


async def inside(
    session: aiohttp.ClientSession, instance: Instance, site_id: int, token: str
) -> set[int]:
    url = f"{instance.url}/api/v1/sites/{site_id}/presence"
    async with session.get(url, headers=bearer(token)) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["inside"] == len(body["people"])
    return {p["person_id"] for p in body["people"]}


async def test_kiosks_on_one_replica_and_consoles_on_the_other_see_one_record(
    replicas: tuple[Instance, Instance], factory: Factory
) -> None:
    a, b = replicas
    door = await make_door(factory)
    people = [await factory.person() for _ in range(12)]
    passes = {
        p: (await factory.issued_pass(door.key, door.site_id, person_id=p))[1] for p in people
    }
    late = await factory.person()  # their declaration ran out: denied, then let in by hand
    now = datetime.now(UTC)
    expired = await factory.declaration(
        late,
        door.site_id,
        submitted_at=now - timedelta(days=2),
        valid_until=now - timedelta(hours=1),
    )
    _, late_pass = await factory.issued_pass(
        door.key, door.site_id, person_id=late, declaration_id=expired
    )
    # Each kiosk has its own people, so what is decided does not depend on which
    # kiosk's scans commit first; the three run at once on A and share batches.
    plan = {
        door.entrance: [(p, passes[p]) for p in people[0:4] for _ in range(2)],
        door.entrance_b: [(p, passes[p]) for p in people[4:8]] + [(late, late_pass)],
        door.exit: [(p, passes[p]) for p in people[8:12]],
    }
    decided: dict[str, tuple[int, dict[str, Any]]] = {}  # event_id -> (person, A's answer)

    async def run_kiosk(gate: int, scans: list[tuple[int, str]]) -> None:
        answers = await kiosk(session, a, door.kiosk[gate], [payload for _, payload in scans])
        for (person, _), answer in zip(scans, answers, strict=True):
            decided[answer["event_id"]] = (person, answer)

    async with aiohttp.ClientSession() as session:
        on_b = await console(session, b, door.site_id, door.guard, after=0)
        await asyncio.gather(*(run_kiosk(gate, scans) for gate, scans in plan.items()))
        await run_kiosk(door.exit, [(p, passes[p]) for p in people[4:6]])  # two leave
        seen = await events(on_b, len(decided))

        # Every scan made on A, in seq order, no gap, no duplicate, as A decided it.
        assert [e["seq"] for e in seen] == list(range(1, len(decided) + 1))
        assert {e["event_id"] for e in seen} == set(decided)
        for e in seen:
            person, answer = decided[e["event_id"]]
            assert (e["kind"], e["person_id"]) == ("scan", person)
            assert (e["decision"], e["reason"], e["direction"]) == (
                answer["decision"],
                answer["reason"],
                answer["direction"],
            )
        reasons = [decided[e["event_id"]][1]["reason"] for e in seen]
        assert reasons.count("already_inside") == 4 and reasons.count("declaration_expired") == 1

        # Who is inside, read from B, is what A's decisions add up to, in seq order.
        expected: set[int] = set()
        for e in seen:
            if e["decision"] == "allow" and e["direction"] == "in":
                expected.add(e["person_id"])
            elif e["decision"] == "allow":
                expected.discard(e["person_id"])
        assert expected == set(people[0:4] + people[6:8])
        assert await inside(session, b, door.site_id, door.guard) == expected

        # A guard on B overrides the denial; a console on A sees it, and B's feed goes on.
        on_a = await console(session, a, door.site_id, door.guard, after=seen[-1]["seq"])
        denied = next(e for e in seen if e["reason"] == "declaration_expired")
        async with session.post(
            b.url + "/api/v1/overrides",
            json={"event_id": denied["event_id"], "reason": "Đã xem giấy xét nghiệm âm tính"},
            headers=bearer(door.guard),
        ) as resp:
            assert resp.status == 201, await resp.text()
            override = await resp.json()
        (from_a,) = await events(on_a, 1)
        (from_b,) = await events(on_b, 1)
        assert from_a == from_b
        assert from_a["kind"] == "override" and from_a["seq"] == override["seq"] == len(seen) + 1
        assert from_a["person_id"] == late
        assert from_a["detail"]["overrides"] == denied["event_id"]
        assert await inside(session, a, door.site_id, door.guard) == expected | {late}
        assert await inside(session, b, door.site_id, door.guard) == expected | {late}
        await on_a.close()
        await on_b.close()


async def test_either_replica_issues_passes_with_the_shared_key(
    replicas: tuple[Instance, Instance], factory: Factory, site_id: int, tmp_path: Path
) -> None:
    a, b = replicas
    gate = await factory.gate(site_id)
    token = await factory.token(Role.KIOSK, gate_id=gate)
    issued = []
    async with aiohttp.ClientSession() as session:
        for instance, phone in ((a, "0912 345 678"), (b, "0913 456 789")):
            body = declaration(site_id, phone=phone)
            async with session.post(instance.url + "/api/v1/declarations", json=body) as resp:
                assert resp.status == 201, await resp.text()
                issued.append((await resp.json())["pass"]["payload"])
        async with session.get(b.url + "/api/v1/keys") as resp:
            trust = TrustList.from_json(await resp.json())
        # A made the key on first need, in the shared folder; B signed with the same one.
        kids = {verify_pass(p, trust, now=datetime.now(UTC)).key_id for p in issued}
        assert len(kids) == 1
        assert sorted(f.name for f in (tmp_path / "data" / "keys").iterdir()) == [
            f"{kids.pop()}.key"
        ]
        # And a pass issued by B lets its holder in at a kiosk on A.
        (answer,) = await kiosk(session, a, token, [issued[1]])
        assert (answer["decision"], answer["reason"]) == ("allow", "welcome")
