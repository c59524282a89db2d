"""Where kiosks talk to us: one WebSocket each, plus HTTP for single scans and replays.

The gate comes from the kiosk's token, never from the message, so a kiosk cannot scan
for another gate. A message of the wrong shape gets an error on the socket, which
stays open; a scan is answered only once it is committed. See docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import pydantic
from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field

from checkin_core.aio import cancel_and_wait
from service.checkin.batcher import BATCHER_KEY
from service.checkin.kiosk_limits import KIOSK_LIMITS_KEY, MAX_BATCH, read_scans
from service.checkin.kiosk_push import KNOWLEDGE_PUSH_KEY
from service.checkin.kiosk_sync import gate_of
from service.checkin.wire import ScanIn, ScanItem
from service.identity.login_watch import LOGIN_WATCH_KEY, close_when_ended
from service.platform.db import DB_KEY
from service.platform.errors import UNAVAILABLE_ERRORS, ApiError
from service.platform.settings import SETTINGS_KEY
from service.sites.door_rules import CheckinRules
from service.web.auth import Role, principal, requires
from service.web.field_errors import field_errors
from service.web.openapi import documented
from service.web.text import Text
from service.web.token_usage import TOKEN_USAGE_KEY
from service.web.validation import read_json, validate

logger = logging.getLogger(__name__)

# Messages of one socket being decided at once; beyond it we stop reading the socket
# (TCP pushes back on the kiosk), so one kiosk's flood cannot fill the scan queue or
# take the connection pool from the others. A kiosk has one scan out at a time.
MAX_IN_FLIGHT = 8
IDLE_CLOSE_CODE = 4408  # application range; "408 request timeout"


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fps: Annotated[float, Field(ge=0, le=1000)] = 0
    frames_dropped: Annotated[int, Field(ge=0)] = 0
    decode_attempts: Annotated[int, Field(ge=0)] = 0
    decode_successes: Annotated[int, Field(ge=0)] = 0
    queue_depth: Annotated[int, Field(ge=0)] = 0
    outbox_depth: Annotated[int, Field(ge=0)] = 0
    camera_up: bool = True
    offline_mode: bool = False
    frame_width: Annotated[int, Field(ge=0, le=16384)] = 0  # what the camera delivers
    frame_height: Annotated[int, Field(ge=0, le=16384)] = 0
    camera_fps: Annotated[float, Field(ge=0, le=1000)] = 0  # the rate the camera reports
    # Seconds since the kiosk's copy of what it must know offline was last complete
    # (None: it has none yet); see service/checkin/kiosk_sync.py.
    knowledge_age_s: Annotated[float, Field(ge=0, le=10**9)] | None = None
    # The kiosk's clock: when it sent this (echoed back over the socket, for the skew),
    # and the service's clock minus its own as it last measured it.
    sent_at: Annotated[str, Text(40)] | None = None
    clock_skew_ms: Annotated[int, Field(ge=-(10**10), le=10**10)] | None = None


class ScanBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scans: Annotated[list[ScanIn], Field(min_length=1, max_length=MAX_BATCH)]


GATE_HELLO_SQL = """
SELECT g.id, g.name, g.direction, g.offline_policy, s.id AS site_id, s.name AS site_name,
       s.checkin_rules
FROM gates g JOIN sites s ON s.id = g.site_id WHERE g.id = $1
"""

UPSERT_HEALTH_SQL = """
INSERT INTO kiosk_health (token_id, gate_id, reported_at, report) VALUES ($1, $2, now(), $3)
ON CONFLICT (token_id) DO UPDATE
SET gate_id = EXCLUDED.gate_id, reported_at = EXCLUDED.reported_at, report = EXCLUDED.report
"""


async def _decide(request: web.Request, scans: list[ScanIn]) -> list[dict[str, Any]]:
    kiosk = principal(request)
    items = [ScanItem(scan, gate_of(kiosk), kiosk.actor) for scan in scans]
    decisions = await request.app[BATCHER_KEY].submit_many(items)
    return [d.as_json() for d in decisions]


@requires(Role.KIOSK)
@documented(body=ScanIn)
async def post_scan(request: web.Request) -> web.Response:
    scan = await read_scans(request, ScanIn)
    return web.json_response((await _decide(request, [scan]))[0])


@requires(Role.KIOSK)
@documented(body=ScanBatch)
async def post_scan_batch(request: web.Request) -> web.Response:
    batch = await read_scans(request, ScanBatch, lambda b: len(b.scans))
    return web.json_response({"decisions": await _decide(request, batch.scans)})


async def record_heartbeat(request: web.Request, beat: Heartbeat) -> None:
    kiosk = principal(request)
    request.app[TOKEN_USAGE_KEY].note(kiosk.token_id)  # a socket's token is checked once
    async with request.app[DB_KEY].connection() as conn:
        await conn.execute(UPSERT_HEALTH_SQL, kiosk.token_id, gate_of(kiosk), beat.model_dump())


def time_answer(sent_at: str) -> dict[str, Any]:
    """The service's time for a heartbeat that carries its send time: the kiosk measures
    its clock's skew from the two (scanner/clock.py)."""
    return {"type": "time", "server_time": datetime.now(UTC).isoformat(), "sent_at": sent_at}


@requires(Role.KIOSK)
@documented(body=Heartbeat)
async def post_heartbeat(request: web.Request) -> web.Response:
    """Record a kiosk's health; with `sent_at`, answer the service's time, as the socket does."""
    beat = validate(Heartbeat, await read_json(request))
    await record_heartbeat(request, beat)
    if beat.sent_at is not None:
        return web.json_response(time_answer(beat.sent_at))
    return web.Response(status=204)


@requires(Role.KIOSK)
async def kiosk_stream(request: web.Request) -> web.WebSocketResponse:
    kiosk = principal(request)
    gate_id = gate_of(kiosk)
    async with request.app[DB_KEY].connection() as conn:
        gate = await conn.fetchrow(GATE_HELLO_SQL, gate_id)
    if gate is None:
        raise ApiError(404, "gate_not_found", "The gate of this token no longer exists.")
    settings = request.app[SETTINGS_KEY]
    # A message as large as an HTTP body may be: a scan the HTTP route takes fits here too.
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=settings.max_body_bytes)
    await ws.prepare(request)
    await ws.send_json(_hello(gate))
    in_flight: set[asyncio.Task[None]] = set()
    room = asyncio.Semaphore(MAX_IN_FLIGHT)

    def done(task: asyncio.Task[None]) -> None:
        in_flight.discard(task)
        room.release()

    # A kiosk whose token is revoked (taken off its gate, stolen) stops scanning within
    # about a second, not at its next reconnect.
    async with (
        request.app[KIOSK_LIMITS_KEY].socket(kiosk, ws),
        request.app[LOGIN_WATCH_KEY].watching(request) as watch,
        request.app[KNOWLEDGE_PUSH_KEY].listening(gate["site_id"]) as changes,
    ):
        ender = asyncio.create_task(close_when_ended(ws, watch))
        pusher = asyncio.create_task(_push_changes(ws, changes))
        while True:
            try:
                async with asyncio.timeout(settings.kiosk_idle_timeout_s):
                    msg = await ws.receive()
            except TimeoutError:
                await ws.close(code=IDLE_CLOSE_CODE, message=b"idle: no message from the kiosk")
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break  # an ERROR (e.g. a message too big, 1009) has closed the socket already
            if msg.type != WSMsgType.TEXT:
                await _send(ws, _error("invalid_message", "Send JSON text messages."))
                continue
            await room.acquire()
            task = asyncio.create_task(_handle(request, ws, msg.data))
            in_flight.add(task)
            task.add_done_callback(done)
        if watch.ended.is_set():
            await ender  # it is closing the socket: let it finish the handshake
        await cancel_and_wait([ender, pusher])
    # Scans already received are still decided and recorded; the kiosk will learn
    # the decision as a duplicate when it replays them.
    if in_flight:
        await asyncio.wait(in_flight)
    return ws


def _hello(gate: asyncpg.Record) -> dict[str, Any]:
    """The first message: the kiosk's gate, its site and the service's time."""
    return {
        "type": "hello",
        "gate": {k: gate[k] for k in ("id", "name", "direction", "offline_policy")},
        "site": {
            "id": gate["site_id"],
            "name": gate["site_name"],
            "static_pass": CheckinRules.model_validate(gate["checkin_rules"]).static_pass,
        },
        "server_time": datetime.now(UTC).isoformat(),
    }


async def _push_changes(ws: web.WebSocketResponse, changes: asyncio.Queue[str]) -> None:
    """What kiosks know changed (service.checkin.kiosk_push): tell this one."""
    while not ws.closed:
        text = await changes.get()
        try:
            await ws.send_str(text)
        except ConnectionError:
            return


async def _handle(request: web.Request, ws: web.WebSocketResponse, text: str) -> None:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than we parse
        await _send(ws, _error("invalid_message", "Not valid JSON."))
        return
    kind = message.get("type") if isinstance(message, dict) else None
    body = {k: v for k, v in message.items() if k != "type"} if kind else {}
    event_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
    try:
        if kind == "scan":
            scan = ScanIn.model_validate(body)
            await _send(ws, (await _decide(request, [scan]))[0])
        elif kind == "heartbeat":
            beat = Heartbeat.model_validate(body)
            if beat.sent_at is not None:
                await _send(ws, time_answer(beat.sent_at))
            await record_heartbeat(request, beat)
        else:
            await _send(ws, _error("invalid_message", "type must be 'scan' or 'heartbeat'."))
    except pydantic.ValidationError as e:
        await _send(
            ws,
            _error("invalid_message", "Some fields are invalid.", event_id, fields=field_errors(e)),
        )
    except UNAVAILABLE_ERRORS:
        await _send(
            ws,
            _error(
                "service_unavailable",
                "The database is unreachable; keep the scan and retry.",
                event_id,
            ),
        )
    except Exception:
        logger.exception("kiosk message failed")
        await _send(ws, _error("internal_error", "Something went wrong on our side.", event_id))


def _error(code: str, text: str, event_id: str | None = None, **details: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": text, "event_id": event_id, **details}


async def _send(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    if not ws.closed:
        try:
            await ws.send_json(message)
        except ConnectionError:
            pass  # the kiosk went away; it replays what it did not hear back about


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/kiosk/stream", kiosk_stream, name="kiosk_stream"),
        web.post("/api/v1/scans", post_scan, name="scans"),
        web.post("/api/v1/scans/batch", post_scan_batch, name="scans_batch"),
        web.post("/api/v1/kiosk/heartbeat", post_heartbeat, name="kiosk_heartbeat"),
    ]
