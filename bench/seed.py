"""Benchmark data: one site, gates used both ways with a kiosk token each, and people
holding valid passes, split among the kiosks so each kiosk's people are its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from checkin_core.keys import SigningKey
from checkin_core.passes import issue_pass
from service.web.auth import Role, create_token


@dataclass(frozen=True)
class Seeded:
    site_id: int
    gate_ids: list[int]
    tokens: list[str]  # one kiosk token per gate
    payloads: list[list[str]]  # per kiosk: the passes its people show
    person_ids: list[int]


async def seed(conn: asyncpg.Connection, *, kiosks: int, people_per_kiosk: int) -> Seeded:
    now = datetime.now(UTC).replace(microsecond=0)
    key = SigningKey.generate()
    await conn.execute(
        "INSERT INTO signing_keys (kid, public_key, status) VALUES ($1, $2, 'active')",
        key.key_id,
        key.public_key_bytes(),
    )
    site_id = await conn.fetchval(
        "INSERT INTO sites (code, name, checkin_rules)"
        " VALUES ('bench', 'Benchmark HQ', '{\"static_pass\": \"allow\"}') RETURNING id"
    )
    gate_ids, tokens = [], []
    for k in range(kiosks):
        gate = await conn.fetchval(
            "INSERT INTO gates (site_id, name, direction) VALUES ($1, $2, 'both') RETURNING id",
            site_id,
            f"Gate {k}",
        )
        gate_ids.append(gate)
        tokens.append((await create_token(conn, role=Role.KIOSK, gate_id=gate))[1])
    total = kiosks * people_per_kiosk
    await conn.copy_records_to_table(
        "people",
        columns=["kind", "full_name", "phone"],
        records=[("staff", f"Nguyễn Văn Bench {i}", f"+849{i:08d}") for i in range(total)],
    )
    person_ids = [r["id"] for r in await conn.fetch("SELECT id FROM people ORDER BY id")]
    await conn.execute(
        "INSERT INTO declarations (person_id, site_id, answers, status, submitted_at, valid_until)"
        " SELECT id, $1, '{}', 'cleared', $2, $3 FROM people",
        site_id,
        now - timedelta(hours=1),
        now + timedelta(days=1),
    )
    declarations = dict(
        (r["person_id"], r["id"])
        for r in await conn.fetch("SELECT id, person_id FROM declarations")
    )
    not_before, not_after = now - timedelta(hours=1), now + timedelta(days=1)
    rows, payloads = [], []
    for p in person_ids:
        pass_id = uuid.uuid4()
        payload = issue_pass(
            key, pass_id=pass_id, site_id=site_id, not_before=not_before, not_after=not_after
        )
        payloads.append(payload)
        rows.append(
            (pass_id, p, site_id, declarations[p], key.key_id, payload, not_before, not_after)
        )
    await conn.copy_records_to_table(
        "passes",
        columns=[
            "id",
            "person_id",
            "site_id",
            "declaration_id",
            "kid",
            "payload",
            "not_before",
            "not_after",
        ],
        records=rows,
    )
    await conn.execute("ANALYZE")
    per_kiosk = [payloads[k * people_per_kiosk : (k + 1) * people_per_kiosk] for k in range(kiosks)]
    return Seeded(site_id, gate_ids, tokens, per_kiosk, person_ids)
