"""The trace with estimated ends: a stay closed by an automatic check-out ends at the
closure or at the person's last scan, as the site's rule says, and the trace says so."""

from __future__ import annotations

import csv
import io
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service.door.auto_checkout import sweep
from service.events.log import append_event
from service.web.auth import Role
from tests.factory import Factory, bearer, scan_record
from tests.test_trace import at, get_trace, iso, stay


async def scanned(conn: asyncpg.Connection, site: int, gate: int, person: int, t: float) -> None:
    """A scan of the person at the site (here a refused re-entry): evidence they were in."""
    await append_event(
        conn,
        scan_record(site, gate, person, at(t), decision="deny", reason="already_inside"),
    )


async def test_the_trace_ends_an_estimated_stay_by_the_sites_rule(
    client: TestClient[Any, Any], conn: asyncpg.Connection, factory: Factory
) -> None:
    """T0 is 08:00 at the site. The case stays 08:00-12:00 and scans out. x comes in at
    08:00, is last seen at 09:00 and never scans out: checked out at 11:00 (the rule).
    y comes 08:00-10:00 and scans out."""
    site = await factory.site()
    gate = await factory.gate(site)
    f0, x, y = [await factory.person() for _ in range(3)]
    await stay(conn, site, f0, 0, 240, gate)
    await stay(conn, site, x, 0, None, gate)
    await stay(conn, site, y, 0, 120, gate)
    await scanned(conn, site, gate, x, 60)
    await conn.execute(
        'UPDATE sites SET checkin_rules = \'{"auto_checkout": {"at": "11:00"}}\' WHERE id = $1',
        site,
    )
    report = await sweep(conn, at(24 * 60))
    assert report is not None and report.by_rule == {"at": 1}
    closed = await conn.fetchrow("SELECT * FROM presence WHERE person_id = $1", x)
    assert (closed["exit_kind"], closed["exited_at"]) == ("auto", at(180))
    assert closed["last_evidence_at"] == at(60)

    auditor = await factory.token(Role.AUDITOR)
    query = {"person": str(f0), "from": iso(-600), "to": iso(600)}

    def overlaps(body: dict[str, Any]) -> dict[int, tuple[float, str | None]]:
        return {
            c["person_id"]: (c["overlap_minutes"], c["estimated_end"]) for c in body["contacts"]
        }

    # By default the closure: nobody who may have been there is left out.
    assert overlaps(await get_trace(client, auditor, query)) == {
        x: (180, "closure"),
        y: (120, None),
    }
    admin = await factory.token(Role.ADMIN)
    url = f"/api/v1/sites/{site}/door-rules"
    rules = (await (await client.get(url, headers=bearer(admin))).json())["rules"]
    resp = await client.put(
        url, json=rules | {"trace_estimated_end": "last_evidence"}, headers=bearer(admin)
    )
    assert resp.status == 200, await resp.text()
    assert overlaps(await get_trace(client, auditor, query)) == {
        x: (60, "last_evidence"),
        y: (120, None),
    }
    # The case's own estimated end counts too: traced from x, the overlap with the case
    # ends at x's last evidence.
    from_x = await get_trace(client, auditor, query | {"person": str(x)})
    assert overlaps(from_x)[f0] == (60, "last_evidence")

    # A person's movements show the estimated end and the last evidence.
    resp = await client.get(f"/api/v1/people/{x}/movements", headers=bearer(auditor))
    (moved,) = (await resp.json())["movements"]
    assert (moved["exit_kind"], moved["exit_estimated"]) == ("auto", True)
    assert (moved["exited_at"], moved["last_evidence_at"]) == (iso(180), iso(60))

    resp = await client.get(
        "/api/v1/trace", params=query | {"format": "csv"}, headers=bearer(auditor)
    )
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert {r["person_id"]: r["estimated_end"] for r in rows} == {
        str(x): "last_evidence",
        str(y): "",
    }
