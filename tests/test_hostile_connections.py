"""Hostile connections: oversized and flooding messages on the sockets, and thousands
of connections opened and left idle against a real `checkin-gateway serve`.

The idle-connections test (marked ``chaos``) holds 1,500 connections in ``make test``
and 10,000 at full scale (``CHAOS_FULL=1``, or ``--chaos-full`` where tests/chaos defines
it); ``CHAOS_IDLE_CONNECTIONS=N`` sets any count. A third each of plain TCP
connections that never send, HTTP keep-alive connections after one request, and kiosk
WebSockets that answer pings but never send.
While they are open the service answers /readyz and a real scan; then its timeouts
close every one of them. It prints the service's memory before, with and after.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import resource
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.checkin.kiosk_stream import IDLE_CLOSE_CODE
from service.platform.settings import Settings
from service.web.auth import Role
from tests.checkin_helpers import Door, make_door, scan_body
from tests.cli_helpers import env_for, free_port
from tests.factory import Factory, bearer

KIOSK_PATH = "/api/v1/kiosk/stream"
ANSWER_TIMEOUT_S = 60  # only so that a lost answer fails the test instead of hanging it


@pytest.fixture
async def door(factory: Factory) -> Door:
    return await make_door(factory)


async def kiosk_socket(client: TestClient[Any, Any], token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect(KIOSK_PATH, headers=bearer(token))
    assert (await ws.receive_json())["type"] == "hello"
    return ws


async def scans_recorded(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'scan'"))


async def until_recorded(conn: asyncpg.Connection, count: int) -> int:
    """Scans decided after their socket went away are recorded a moment later."""
    for _ in range(400):
        recorded = await scans_recorded(conn)
        if recorded >= count:
            return recorded
        await asyncio.sleep(0.05)
    return await scans_recorded(conn)


# --- oversized messages --------------------------------------------------------------


@pytest.mark.parametrize("frame", ["text", "binary"])
async def test_a_message_over_the_limit_closes_the_kiosk_socket_with_1009(
    client: TestClient[Any, Any],
    door: Door,
    conn: asyncpg.Connection,
    settings: Settings,
    frame: str,
) -> None:
    """The limit is CHECKIN_MAX_BODY_BYTES, as for HTTP. The message cannot be read to
    its end, so the socket closes (1009, message too big); what came before it is
    still recorded, and the other kiosks do not notice."""
    other = await kiosk_socket(client, door.kiosk[door.entrance_b])
    ws = await kiosk_socket(client, door.kiosk[door.entrance])
    answered = scan_body("junk")
    await ws.send_json({"type": "scan", **answered})
    assert (await ws.receive_json())["event_id"] == answered["event_id"]
    unanswered = scan_body("junk")  # in flight when the big one arrives
    await ws.send_json({"type": "scan", **unanswered})
    big = json.dumps({"type": "scan", **scan_body("A" * settings.max_body_bytes)})
    if frame == "text":
        await ws.send_str(big)
    else:
        await ws.send_bytes(big.encode())
    while (msg := await ws.receive(timeout=ANSWER_TIMEOUT_S)).type == WSMsgType.TEXT:
        assert json.loads(msg.data)["event_id"] == unanswered["event_id"]
    assert msg.type == WSMsgType.CLOSE and msg.data == WSCloseCode.MESSAGE_TOO_BIG
    assert await until_recorded(conn, 2) == 2  # the big one is recorded nowhere

    await other.send_json({"type": "scan", **scan_body("junk")})
    assert (await other.receive_json(timeout=ANSWER_TIMEOUT_S))["reason"] == "malformed"
    assert await scans_recorded(conn) == 3
    await other.close()


async def test_a_scan_the_http_route_takes_fits_the_socket(
    client: TestClient[Any, Any], door: Door, conn: asyncpg.Connection
) -> None:
    """The longest payload a scan may carry, in the characters that escape longest in
    JSON (a surrogate pair each): answered, not cut off by the socket's limit."""
    from service.checkin.wire import MAX_PAYLOAD_CHARS

    ws = await kiosk_socket(client, door.kiosk[door.entrance])
    body = scan_body("\U0001f600" * (MAX_PAYLOAD_CHARS // 2))
    await ws.send_str(json.dumps({"type": "scan", **body}))  # 12 bytes a character
    assert (await ws.receive_json(timeout=ANSWER_TIMEOUT_S))["reason"] == "malformed"
    assert await scans_recorded(conn) == 1
    await ws.close()


async def test_consoles_may_send_anything_small_and_are_closed_for_anything_big(
    client: TestClient[Any, Any], door: Door
) -> None:
    """Consoles only listen: what they send is read and ignored, a burst of it too,
    text or binary; a message over 4 KiB closes that console (1009) and no other."""
    stream = f"/api/v1/events/stream?site_id={door.site_id}"
    chatty = await client.ws_connect(stream, headers=bearer(door.guard))
    quiet = await client.ws_connect(stream, headers=bearer(door.guard))
    for ws in (chatty, quiet):
        assert (await ws.receive_json())["type"] == "hello"
    for i in range(500):
        await chatty.send_str("{not json" if i % 2 else json.dumps({"after_seq": i}))
        await chatty.send_bytes(secrets.token_bytes(64))
    kiosk = await kiosk_socket(client, door.kiosk[door.entrance])
    await kiosk.send_json({"type": "scan", **scan_body("junk")})
    for ws in (chatty, quiet):
        event = await ws.receive_json(timeout=ANSWER_TIMEOUT_S)
        assert (event["kind"], event["reason"]) == ("scan", "malformed")

    await chatty.send_str("x" * 5000)
    msg = await chatty.receive(timeout=ANSWER_TIMEOUT_S)
    assert msg.type == WSMsgType.CLOSE and msg.data == WSCloseCode.MESSAGE_TOO_BIG
    await kiosk.send_json({"type": "scan", **scan_body("junk")})
    assert (await quiet.receive_json(timeout=ANSWER_TIMEOUT_S))["kind"] == "scan"
    for ws in (kiosk, quiet):
        await ws.close()


async def test_a_flood_from_one_kiosk_does_not_hold_up_another(
    client: TestClient[Any, Any], door: Door, conn: asyncpg.Connection
) -> None:
    """Many small messages sent as fast as the socket takes them: each is answered and
    recorded once, and another kiosk's scan is not queued behind the whole flood (the
    service reads a socket only as fast as it decides its messages)."""
    flood = 2000
    noisy = await kiosk_socket(client, door.kiosk[door.entrance])
    other = await kiosk_socket(client, door.kiosk[door.entrance_b])
    bodies = [scan_body("junk") for _ in range(flood)]
    heard: set[str] = set()
    started = asyncio.Event()

    async def send_all() -> None:
        for i, body in enumerate(bodies):
            await noisy.send_str(json.dumps({"type": "scan", **body}))
            if i % 10 == 0:
                await noisy.send_str('{"type": "heartbeat", "fps": 30}')

    async def hear_all() -> None:
        while len(heard) < flood:
            heard.add((await noisy.receive_json(timeout=ANSWER_TIMEOUT_S))["event_id"])
            started.set()

    tasks = [asyncio.create_task(send_all()), asyncio.create_task(hear_all())]
    await started.wait()
    await other.send_json({"type": "scan", **scan_body("junk")})
    assert (await other.receive_json(timeout=ANSWER_TIMEOUT_S))["type"] == "decision"
    assert len(heard) < flood // 2, "the other kiosk waited for most of the flood"
    await asyncio.gather(*tasks)
    assert heard == {b["event_id"] for b in bodies}
    assert await scans_recorded(conn) == flood + 1
    assert await conn.fetchval("SELECT count(DISTINCT event_id) FROM events") == flood + 1
    for ws in (noisy, other):
        await ws.close()


# --- idle sockets ----------------------------------------------------------------------


async def test_a_kiosk_socket_that_sends_nothing_is_closed(
    aiohttp_client: Any, settings: Settings, door: Door
) -> None:
    """Pings do not count (the client library answers them by itself): a kiosk that
    sends neither scans nor heartbeats is closed with 4408; one that heartbeats stays."""
    idle = 2.0
    client = await aiohttp_client(
        create_app(settings=dataclasses.replace(settings, kiosk_idle_timeout_s=idle))
    )
    silent = await kiosk_socket(client, door.kiosk[door.entrance])
    beating = await kiosk_socket(client, door.kiosk[door.entrance_b])
    for _ in range(round(3 * idle / 0.2)):  # three idle periods, a heartbeat every 0.2 s
        await beating.send_json({"type": "heartbeat", "fps": 30})
        await asyncio.sleep(0.2)
    msg = await silent.receive(timeout=ANSWER_TIMEOUT_S)
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, IDLE_CLOSE_CODE), msg
    await beating.send_json({"type": "scan", **scan_body("junk")})
    assert (await beating.receive_json(timeout=ANSWER_TIMEOUT_S))["reason"] == "malformed"
    await beating.close()


# --- thousands of idle connections against `checkin-gateway serve` -------------------


def idle_connections(config: pytest.Config) -> int:
    full = os.environ.get("CHAOS_FULL") == "1" or config.getoption("--chaos-full", False)
    return int(os.environ.get("CHAOS_IDLE_CONNECTIONS") or (10_000 if full else 1_500))


OPENING_AT_ONCE = 100  # connects in flight: the listen backlog is 128


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextlib.contextmanager
def open_files_limit(wanted: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@dataclasses.dataclass
class Idle:
    """One connection left idle, and how it ended."""

    kind: str  # "tcp", "http" or "ws"
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    closed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    close_code: int | None = None
    watcher: asyncio.Task[None] | None = None


async def open_idle(kind: str, port: int, token: str) -> Idle:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = Idle(kind, reader, writer)
    if kind == "http":
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    elif kind == "ws":
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(
            f"GET {KIOSK_PATH} HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
    conn.watcher = asyncio.create_task(watch(conn))
    return conn


async def watch(conn: Idle) -> None:
    """Wait for the service to end the connection; a WebSocket answers pings meanwhile
    (a live peer that sends nothing), and its close frame is answered and noted."""
    try:
        if conn.kind != "ws":
            while await conn.reader.read(4096):
                pass
            return
        while True:
            first, second = await conn.reader.readexactly(2)
            length = second & 0x7F
            if length >= 126:
                length = int.from_bytes(await conn.reader.readexactly(2 if length == 126 else 8))
            payload = await conn.reader.readexactly(length)
            opcode = first & 0x0F
            if opcode == 0x9:  # ping: pong with the same data, masked as a client must
                conn.writer.write(client_frame(0xA, payload))
            elif opcode == 0x8:
                conn.close_code = int.from_bytes(payload[:2]) if payload else None
                conn.writer.write(client_frame(0x8, payload[:2]))
                return
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        conn.closed.set()
        conn.writer.close()


def client_frame(opcode: int, payload: bytes) -> bytes:
    mask = secrets.token_bytes(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def open_many(count: int, port: int, token: str) -> list[Idle]:
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    kinds = ("tcp", "http", "ws")

    async def one(i: int) -> Idle:
        async with gate:
            return await open_idle(kinds[i % 3], port, token)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def until_ready(
    session: aiohttp.ClientSession, base: str, service: asyncio.subprocess.Process
) -> None:
    for _ in range(300):
        assert service.returncode is None, "the service exited"
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/readyz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise AssertionError("the service did not get ready")


async def a_real_scan(session: aiohttp.ClientSession, base: str, token: str, payload: str) -> Any:
    async with session.ws_connect(base + KIOSK_PATH, headers=bearer(token)) as ws:
        await ws.receive_json(timeout=ANSWER_TIMEOUT_S)
        await ws.send_json({"type": "scan", **scan_body(payload)})
        return await ws.receive_json(timeout=ANSWER_TIMEOUT_S)


@pytest.mark.chaos
async def test_thousands_of_idle_connections_are_held_then_timed_out(
    db_url: str,
    tmp_path: Path,
    factory: Factory,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    count = idle_connections(request.config)
    door = await make_door(factory)
    _, payload = await factory.issued_pass(door.key, door.site_id)
    _, later_payload = await factory.issued_pass(door.key, door.site_id)
    token = await factory.token(Role.KIOSK, gate_id=door.entrance)
    # Long enough to open them all and look; short enough to watch them all close.
    idle_s = 15 + count / 150
    port = free_port()
    env = env_for(db_url, tmp_path) | {
        "CHECKIN_PORT": str(port),
        "CHECKIN_LOG_LEVEL": "WARNING",
        "CHECKIN_KEEPALIVE_TIMEOUT": str(idle_s),
        "CHECKIN_KIOSK_IDLE_TIMEOUT": str(idle_s),
        # One token holds all the idle kiosk sockets: this is about the timeouts, so the
        # per-token socket limit (tests/test_kiosk_limits.py) is lifted.
        "CHECKIN_KIOSK_SOCKETS_PER_TOKEN": str(count),
    }
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "service.log"
    with log.open("w") as stderr:
        service = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "serve", env=env, stdout=DEVNULL, stderr=stderr
        )
    idle: list[Idle] = []
    try:
        timeout = aiohttp.ClientTimeout(total=ANSWER_TIMEOUT_S)
        with open_files_limit(count + 1024):
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await until_ready(session, base, service)
                first = await a_real_scan(session, base, token, payload)
                assert first["reason"] == "welcome"
                rss_before, fds_before = rss_kib(service.pid), open_fds(service.pid)
                opening = time.monotonic()
                idle = await open_many(count, port, token)
                opened_in = time.monotonic() - opening
                rss_with, fds_with = rss_kib(service.pid), open_fds(service.pid)

                held = sum(not c.closed.is_set() for c in idle)
                assert held == count, "connections closed before their timeout"
                assert fds_with - fds_before >= count
                async with session.get(f"{base}/readyz") as resp:
                    assert resp.status == 200, await resp.text()
                answer = await a_real_scan(session, base, token, later_payload)
                assert (answer["decision"], answer["reason"]) == ("allow", "welcome")

                # Then the timeouts close every one of them.
                await asyncio.wait_for(
                    asyncio.gather(*(c.closed.wait() for c in idle)), idle_s + 120
                )
                codes = {c.close_code for c in idle if c.kind == "ws"}
                assert codes == {IDLE_CLOSE_CODE}, codes
                async with session.get(f"{base}/readyz") as resp:
                    assert resp.status == 200
                rss_after, fds_after = rss_kib(service.pid), open_fds(service.pid)
        assert fds_after - fds_before < 50
        with capsys.disabled():
            print(
                f"\n{count} idle connections (tcp, http keep-alive, kiosk ws; "
                f"opened in {opened_in:.1f} s) held with /readyz and a scan answered; "
                f"service RSS {rss_before / 1024:.0f} MiB before, {rss_with / 1024:.0f} MiB "
                f"with them ({(rss_with - rss_before) / count:.1f} KiB each), "
                f"{rss_after / 1024:.0f} MiB after all were timed out ({idle_s:.0f} s)"
            )
    finally:
        for c in idle:
            if c.watcher is not None:
                c.watcher.cancel()
            c.writer.close()
        if service.returncode is None:
            service.terminate()
        try:
            await asyncio.wait_for(service.wait(), 30)
        except TimeoutError:
            service.kill()
            await service.wait()
    assert service.returncode == 0, log.read_text()[-3000:]
