"""What the door does offline, through the real kiosk (``python -m scanner``) and the
real service: a revocation pushed while it is connected is denied after the cut, and a
copy older than the site's max_offline_age_s denies everyone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from scanner.knowledge import Knowledge
from service.web.auth import Role
from tests import test_scanner_e2e as e2e
from tests.cli_helpers import free_port
from tests.factory import Factory, bearer
from tests.kiosk_helpers import Shot, write_video
from tests.test_scanner_e2e import FPS, Gate, KioskProcess, scan_events

gate, port, service = e2e.gate, e2e.port, e2e.service  # the fixtures


async def admin_call(service: str, token: str, method: str, path: str, body: Any) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, service + path, json=body, headers=bearer(token)) as resp,
    ):
        assert resp.status == 200, await resp.text()


def known(data: Path) -> dict[str, str]:
    copy = Knowledge(data / "knowledge.sqlite3")
    try:
        return dict(copy.refused)
    finally:
        copy.close()


async def verify_offline(conn: asyncpg.Connection, gate: Gate) -> None:
    await conn.execute(
        "UPDATE gates SET offline_policy = 'verify-offline' WHERE id = $1", gate.gate_id
    )


async def test_a_cut_off_kiosk_denies_a_pass_revoked_before_the_cut(
    service: str, gate: Gate, factory: Factory, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await verify_offline(conn, gate)
    admin = await factory.token(Role.ADMIN)
    revoked_id, revoked = await factory.issued_pass(gate.key, gate.site_id)
    _, good = await factory.issued_pass(gate.key, gate.site_id)
    data = tmp_path / "k"
    # Connected, watching nothing for a while: the revocation reaches it by the socket.
    idle = write_video(tmp_path / "idle.avi", [Shot(None, 6.0)], fps=FPS)
    kiosk = await KioskProcess.start(service, gate.token, idle, data)
    await asyncio.sleep(2.0)  # connected and synced (its startup wait)
    await admin_call(service, admin, "POST", f"/api/v1/passes/{revoked_id}/revoke", {"reason": "x"})
    async with asyncio.timeout(20):
        while str(revoked_id) not in known(data):  # noqa: ASYNC110 (another process's file)
            await asyncio.sleep(0.1)
    await kiosk.finish()
    assert known(data) == {str(revoked_id): "pass_revoked"}

    video = write_video(
        tmp_path / "outage.avi",
        [Shot(revoked, 0.6), Shot(None, 0.3), Shot(good, 0.6), Shot(None, 0.3)],
        fps=FPS,
    )
    unreachable = f"http://127.0.0.1:{free_port()}"
    lines = await (await KioskProcess.start(unreachable, gate.token, video, data)).finish()
    assert [(v["decision"], v["reason"], v["offline"]) for v in lines] == [
        ("deny", "pass_revoked", True),
        ("allow", "offline_allowed", True),
    ]
    # Back online, the record says what the door did.
    blank = write_video(tmp_path / "blank.avi", [Shot(None, 0.5)], fps=FPS)
    await (await KioskProcess.start(service, gate.token, blank, data)).finish()
    events = await scan_events(conn)
    assert [(str(e["event_id"]), e["decision"]) for e in events] == [
        (lines[0]["event_id"], "deny"),
        (lines[1]["event_id"], "allow"),
    ]


async def test_a_copy_older_than_max_offline_age_denies_offline(
    service: str, gate: Gate, factory: Factory, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await verify_offline(conn, gate)
    admin = await factory.token(Role.ADMIN)
    rules = f"/api/v1/sites/{gate.site_id}/door-rules"
    await admin_call(service, admin, "PUT", rules, {"max_offline_age_s": 600})
    _, good = await factory.issued_pass(gate.key, gate.site_id)
    data = tmp_path / "k"
    blank = write_video(tmp_path / "blank.avi", [Shot(None, 0.5)], fps=FPS)
    await (await KioskProcess.start(service, gate.token, blank, data)).finish()  # learn it all
    copy = Knowledge(data / "knowledge.sqlite3")
    assert copy.max_age_s == 600
    copy.touch(datetime.now(UTC) - timedelta(minutes=11))  # last complete 11 minutes ago
    copy.close()

    video = write_video(tmp_path / "outage.avi", [Shot(good, 0.6), Shot(None, 0.3)], fps=FPS)
    unreachable = f"http://127.0.0.1:{free_port()}"
    lines = await (await KioskProcess.start(unreachable, gate.token, video, data)).finish()
    assert [(v["decision"], v["reason"], v["offline"]) for v in lines] == [
        ("deny", "offline_stale", True)
    ]
    assert lines[0]["message_vi"] == "Dữ liệu ngoại tuyến đã quá cũ; vui lòng gặp bảo vệ"
