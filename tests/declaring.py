"""Helpers for the declaration tests: a valid body, staff rows."""

from __future__ import annotations

from typing import Any

import asyncpg


def declaration(site_id: int, **overrides: Any) -> dict[str, Any]:
    """A visitor with nothing to declare: cleared under the default rules."""
    return {
        "site_id": site_id,
        "kind": "visitor",
        "full_name": "Nguyễn Văn An",
        "phone": "0912 345 678",
        "organisation": "Công ty TNHH Minh Phát",
        "host_name": "Trần Thị Bình",
        "purpose": "Làm thủ tục hải quan",
        "symptoms": [],
        "contact_f0": False,
        "contact_f1": False,
        "travel_areas": [],
        "vaccination_doses": 2,
    } | overrides


async def staff(
    conn: asyncpg.Connection,
    *,
    phone: str = "+84987654321",
    national_id: str | None = None,
    risk_level: str | None = "low",
    full_name: str = "Lê Văn Cường",
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO people (kind, full_name, phone, national_id, risk_level, position) "
            "VALUES ('staff', $1, $2, $3, $4, 'Công chức') RETURNING id",
            full_name,
            phone,
            national_id,
            risk_level,
        )
    )
