"""Rows with sensible defaults for the tests (each test owns its data), and the bearer
header. Imported by the tests and by conftest's fixtures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from checkin_core.keys import SigningKey
from checkin_core.passes import issue_pass
from service.events.log import NewEvent
from service.identity.accounts import AccountIn, create_account
from service.web.auth import Role, create_token


def scan_record(
    site: int, gate: int, person: int | None, occurred_at: datetime, **over: Any
) -> NewEvent:
    """A kiosk's allowed entry scan as the log holds it; `over` changes any field."""
    values: dict[str, Any] = {
        "kind": "scan",
        "actor": "kiosk:1",
        "occurred_at": occurred_at,
        "site_id": site,
        "gate_id": gate,
        "person_id": person,
        "event_id": uuid.uuid4(),
        "direction": "in",
        "decision": "allow",
        "reason": "welcome",
    } | over
    return NewEvent(**values)


class Factory:
    """Makes rows with sensible defaults; returns ids."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._n = 0
        self._active_key: SigningKey | None = None

    def _next(self) -> int:
        self._n += 1
        return self._n

    async def site(self, **overrides: Any) -> int:
        # Printed passes are let in here unless a test says otherwise (static_pass); the
        # site default, guard_check, is tested where it matters (tests/test_rotating.py).
        values = {
            "code": f"site-{self._next()}",
            "name": "Trụ sở",
            "capacity": None,
            "checkin_rules": '{"static_pass": "allow"}',
        } | overrides
        return int(
            await self.conn.fetchval(
                "INSERT INTO sites (code, name, capacity, checkin_rules)"
                " VALUES ($1, $2, $3, $4::text::jsonb)"
                " RETURNING id",
                values["code"],
                values["name"],
                values["capacity"],
                values["checkin_rules"],
            )
        )

    async def gate(self, site_id: int, **overrides: Any) -> int:
        values = {"name": f"Gate {self._next()}", "direction": "entrance"} | overrides
        return int(
            await self.conn.fetchval(
                "INSERT INTO gates (site_id, name, direction) VALUES ($1, $2, $3) RETURNING id",
                site_id,
                values["name"],
                values["direction"],
            )
        )

    async def token(self, role: Role, **scope: Any) -> str:
        _, token = await create_token(self.conn, role=role, **scope)
        return token

    async def account(
        self, role: Role = Role.GUARD, *, site_id: int | None = None, username: str | None = None
    ) -> tuple[str, str]:
        """A console account; (username, password)."""
        username = username or f"{role.value}{self._next()}"
        password = f"pw-{uuid.uuid4().hex[:16]}"
        await create_account(
            self.conn,
            AccountIn(username=username, password=password, role=role, site_id=site_id),
        )
        return username, password

    async def signing_key(self, status: str = "active") -> SigningKey:
        """A signing key; the active one is made once per test (only one may exist)."""
        if status == "active" and self._active_key is not None:
            return self._active_key
        key = SigningKey.generate()
        if status == "active":
            self._active_key = key
        await self.conn.execute(
            "INSERT INTO signing_keys (kid, public_key, status) VALUES ($1, $2, $3)",
            key.key_id,
            key.public_key_bytes(),
            status,
        )
        return key

    async def person(self, **overrides: Any) -> int:
        n = self._next()
        values = {
            "kind": "staff",
            "full_name": f"Nguyễn Văn An {n}",
            "phone": f"+8491{n:07d}",
        } | overrides
        return int(
            await self.conn.fetchval(
                "INSERT INTO people (kind, full_name, phone) VALUES ($1, $2, $3) RETURNING id",
                values["kind"],
                values["full_name"],
                values["phone"],
            )
        )

    async def declaration(self, person_id: int, site_id: int, **overrides: Any) -> int:
        now = datetime.now(UTC)
        values = {
            "status": "cleared",
            "submitted_at": now - timedelta(hours=1),
            "valid_until": now + timedelta(hours=8),
        } | overrides
        return int(
            await self.conn.fetchval(
                "INSERT INTO declarations (person_id, site_id, answers, status, submitted_at,"
                " valid_until) VALUES ($1, $2, '{}', $3, $4, $5) RETURNING id",
                person_id,
                site_id,
                values["status"],
                values["submitted_at"],
                values["valid_until"],
            )
        )

    async def issued_pass(
        self,
        key: SigningKey,
        site_id: int,
        *,
        person_id: int | None = None,
        declaration_id: int | None = None,
        store: bool = True,
        **window: datetime,
    ) -> tuple[uuid.UUID, str]:
        """A signed pass (and, unless store=False, its row and holder); (id, payload)."""
        now = datetime.now(UTC).replace(microsecond=0)
        not_before = window.get("not_before", now - timedelta(hours=1))
        not_after = window.get("not_after", now + timedelta(hours=8))
        pass_id = uuid.uuid4()
        payload = issue_pass(
            key, pass_id=pass_id, site_id=site_id, not_before=not_before, not_after=not_after
        )
        if store:
            person_id = person_id or await self.person()
            declaration_id = declaration_id or await self.declaration(person_id, site_id)
            await self.conn.execute(
                "INSERT INTO passes (id, person_id, site_id, declaration_id, kid, payload,"
                " not_before, not_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                pass_id,
                person_id,
                site_id,
                declaration_id,
                key.key_id,
                payload,
                not_before,
                not_after,
            )
        return pass_id, payload


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
