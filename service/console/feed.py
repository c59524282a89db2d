"""The live event feed for consoles: `/api/v1/events/stream?site_id=S&after_seq=N`.

On connect the console gets everything recorded at the site after `after_seq` (the
last seq it saw; omit it for live events only), in order, then live events as they
are recorded on any instance. Each event carries its `seq`, so a console that drops
reconnects with the last one and misses nothing and sees nothing twice. When the login
behind the socket ends (service.identity.login_watch), the socket is closed with code 4401.
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp import WSMsgType, web

from checkin_core.aio import cancel_and_wait
from service.events.fanout import FANOUT_KEY, LiveEvent, Subscription
from service.identity.login_watch import LOGIN_WATCH_KEY, close_when_ended
from service.platform.errors import ApiError
from service.web.auth import Role, require_site, requires
from service.web.openapi import documented, q_id

SEND_TIMEOUT_S = 5.0
# The kernel would let a socket's send buffer grow to megabytes (tcp_wmem), thousands of
# events a console that stopped reading soaks up before SEND_TIMEOUT_S or the subscriber
# queue can notice it. Linux doubles this; 128 KiB in flight is plenty for a console.
SEND_BUFFER_BYTES = 64 * 1024


def _int_param(request: web.Request, name: str, *, required: bool) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(400, "missing_parameter", f"The query parameter {name} is required.")
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, "bad_parameter", f"{name} must be a non-negative integer.")
    return int(raw)


@requires(Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.HEALTH)
@documented(query={"site_id": q_id(required=True), "after_seq": q_id(minimum=0)})
async def events_stream(request: web.Request) -> web.WebSocketResponse:
    site_id = _int_param(request, "site_id", required=True)
    assert site_id is not None
    after_seq = _int_param(request, "after_seq", required=False)
    require_site(request, site_id)
    fanout = request.app[FANOUT_KEY]
    async with request.app[LOGIN_WATCH_KEY].watching(request) as watch:
        try:
            sub, replay = await fanout.subscribe(site_id, after_seq)
        except LookupError:
            raise ApiError(404, "site_not_found", f"No site with id {site_id}.") from None
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
        try:
            await ws.prepare(request)
            sock = request.transport.get_extra_info("socket") if request.transport else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            pump = asyncio.create_task(_pump(ws, sub, replay))
            # Not one event more once the login has ended: the pump stops first.
            ender = asyncio.create_task(close_when_ended(ws, watch, stop_first=[pump]))
            async for msg in ws:  # consoles only listen; reading notices a close
                if msg.type == WSMsgType.ERROR:
                    break
            if watch.ended.is_set():
                await ender  # it is closing the socket: let it finish the handshake
            await cancel_and_wait([ender, pump])
        finally:
            fanout.unsubscribe(sub)
    return ws


async def _pump(ws: web.WebSocketResponse, sub: Subscription, replay: list[LiveEvent]) -> None:
    last_sent = -1
    try:
        await ws.send_json({"type": "hello", "site_id": sub.site_id, "replayed": len(replay)})
        for event in replay:
            last_sent = await _send(ws, event, last_sent)
        while True:
            await sub.wake.wait()
            sub.wake.clear()
            # Everything queued goes out now: a burst must not look like a slow console.
            while sub.pending and not sub.overflowed:
                last_sent = await _send(ws, sub.pending.popleft(), last_sent)
            if sub.overflowed:
                await ws.send_json({"type": "resync", "reason": "too_slow", "after_seq": last_sent})
                await ws.close(message=b"too slow: reconnect with after_seq")
                return
    except (TimeoutError, ConnectionError):
        await ws.close(message=b"too slow: reconnect with after_seq")


async def _send(ws: web.WebSocketResponse, event: LiveEvent, last_sent: int) -> int:
    """Send `event` unless it was sent already (live events may overlap the replay)."""
    if event.seq <= last_sent:
        return last_sent
    async with asyncio.timeout(SEND_TIMEOUT_S):
        await ws.send_str(event.text)
    return event.seq


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/events/stream", events_stream, name="events_stream")]
