"""The demo site of `make run`: one site, an entrance and an exit, a few staff, and
tokens and console logins that stay the same from one start to the next.

Tokens are kept in the database only as hashes, so the demo keeps its own (and the
console passwords) in a file of the data folder (mode 0600, replaced atomically) and
prints them at every start: a kiosk left running across a restart keeps working.
`serve --demo --reset-demo` makes new ones and revokes the old.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from service.declarations.policy import SiteRules
from service.identity.accounts import (
    AccountIn,
    LoginState,
    login_state,
    new_password,
    reset_account,
)
from service.people.fields import normalize_phone
from service.people.staff_import import COLUMNS, import_staff
from service.web.auth import Role, create_token, lookup_token

DEMO_SITE_CODE = "demo"
DEMO_LABEL_PREFIX = "demo:"
CREDENTIALS_FILE = "demo-credentials.json"

# The demo scans printed passes (an image file, no phone): its site lets them in.
UPSERT_SITE_SQL = """
INSERT INTO sites (code, name, capacity, checkin_rules)
VALUES ($1, $2, $3, '{"static_pass": "allow"}')
ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code
RETURNING id, (xmax = 0) AS created, declaration_rules
"""
UPSERT_GATE_SQL = """
INSERT INTO gates (site_id, name, direction) VALUES ($1, $2, $3)
ON CONFLICT (site_id, name) DO UPDATE SET name = EXCLUDED.name
RETURNING id
"""
REVOKE_DEMO_TOKENS_SQL = """
UPDATE api_tokens SET revoked_at = now()
WHERE starts_with(label, $1) AND revoked_at IS NULL
"""
STAFF_PRESENT_SQL = "SELECT count(*) FROM people WHERE kind = 'staff' AND phone = ANY($1)"


@dataclass(frozen=True)
class DemoStaff:
    full_name: str
    phone: str  # as a person types it
    position: str
    risk_level: str


# One per kind of test cadence under the default rules: a test from today or
# yesterday, one from the last week, none.
DEMO_STAFF = (
    DemoStaff("Trần Thị Mai", "0901 000 001", "Kiểm tra viên hàng hóa", "very_high"),
    DemoStaff("Lê Văn Hùng", "0901 000 002", "Cán bộ tiếp nhận hồ sơ", "high"),
    DemoStaff("Phạm Thu Hà", "0901 000 003", "Kế toán", "low"),
)
DEMO_ORGANISATION = "Chi cục Hải quan (demo)"
# The site-bound ones are bound to the demo site.
LOGINS = (("guard", Role.GUARD), ("y.te", Role.HEALTH), ("admin", Role.ADMIN))
SITE_BOUND = (Role.GUARD, Role.HEALTH)


@dataclass(frozen=True)
class DemoSite:
    site_id: int
    entrance_gate_id: int
    exit_gate_id: int
    tokens: dict[str, str]  # what each token is for -> the token
    logins: dict[str, str]  # console username -> its saved password
    login_states: dict[str, LoginState]  # "ok" unless changed or disabled since
    staff: list[tuple[DemoStaff, int | None]]  # with the days within which a test is due
    credentials_file: Path
    notes: list[str] = field(default_factory=list)  # what this start changed, and why


async def seed_demo(
    conn: asyncpg.Connection, credentials_file: Path, *, reset: bool = False
) -> DemoSite:
    """Create what of the demo is missing; keep the saved tokens and logins that still
    work (`reset`: make all anew, revoking the earlier demo tokens)."""
    notes: list[str] = []
    async with conn.transaction():
        site = await conn.fetchrow(
            UPSERT_SITE_SQL, DEMO_SITE_CODE, "Chi cục Hải quan (demo) — Trụ sở chính", 200
        )
        site_id = site["id"]
        entrance = await conn.fetchval(UPSERT_GATE_SQL, site_id, "Cổng chính — vào", "entrance")
        exit_ = await conn.fetchval(UPSERT_GATE_SQL, site_id, "Cổng chính — ra", "exit")
        saved = None if reset or site["created"] else _read_saved(credentials_file, site_id, notes)
        if saved is None:
            if reset:
                notes.append("--reset-demo: new tokens and console passwords; the old are revoked.")
            elif not site["created"]:
                notes.append(
                    f"No saved demo logins in {credentials_file}: new tokens and console "
                    "passwords; the old demo tokens are revoked."
                )
            await conn.execute(REVOKE_DEMO_TOKENS_SQL, DEMO_LABEL_PREFIX)
            saved = {"tokens": {}, "logins": {}}
        wanted = {
            "admin": (Role.ADMIN, None, None),
            "guard": (Role.GUARD, site_id, None),
            "auditor": (Role.AUDITOR, None, None),
            "kiosk-entrance": (Role.KIOSK, None, entrance),
            "kiosk-exit": (Role.KIOSK, None, exit_),
        }
        tokens = {}
        for purpose, (role, scope, gate) in wanted.items():
            token = saved["tokens"].get(purpose)
            if token is not None and not await _works(conn, token, role, gate, purpose):
                notes.append(f"The saved {purpose} token was revoked: this is a new one.")
                token = None
            if token is None:
                _, token = await create_token(
                    conn, role=role, site_id=scope, gate_id=gate, label=DEMO_LABEL_PREFIX + purpose
                )
            tokens[purpose] = token
        logins, states = await _logins(conn, saved["logins"], site_id, notes)
        await _ensure_staff(conn, always=reset)
        # Inside the transaction: if the file cannot be written, nothing is changed.
        write_private_json(
            credentials_file,
            {"what": "checkin-gateway demo logins: secret", "site_id": site_id}
            | {"tokens": tokens, "logins": logins},
        )
    rules = SiteRules.model_validate(site["declaration_rules"])
    staff = [(s, getattr(rules.test_cadence_days, s.risk_level)) for s in DEMO_STAFF]
    return DemoSite(
        site_id, entrance, exit_, tokens, logins, states, staff, credentials_file, notes
    )


def _read_saved(path: Path, site_id: int, notes: list[str]) -> dict[str, Any] | None:
    """The saved tokens and logins if they are of this demo site, else None (and why)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("site_id") != site_id:
            notes.append(f"{path} is of another database's demo site.")
            return None
        return {"tokens": dict(saved["tokens"]), "logins": dict(saved["logins"])}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        notes.append(f"{path} could not be read ({type(e).__name__}).")
        return None


async def _works(
    conn: asyncpg.Connection, token: str, role: Role, gate: int | None, purpose: str
) -> bool:
    found = await lookup_token(conn, token)
    return (
        found is not None
        and found.role is role
        and found.gate_id == gate
        and found.label == DEMO_LABEL_PREFIX + purpose
    )


async def _logins(
    conn: asyncpg.Connection, saved: dict[str, str], site_id: int, notes: list[str]
) -> tuple[dict[str, str], dict[str, LoginState]]:
    """The saved console passwords; an account missing is made. One changed (`account
    password`) or disabled since is left alone: someone did it on purpose."""
    logins: dict[str, str] = {}
    states: dict[str, LoginState] = {}
    for username, role in LOGINS:
        password = saved.get(username)
        state = "missing" if password is None else await login_state(conn, username, password)
        if state == "missing" or password is None:
            password = password or new_password()
            site = site_id if role in SITE_BOUND else None
            await reset_account(
                conn, AccountIn(username=username, password=password, role=role, site_id=site)
            )
            state = "ok"
        elif state != "ok":
            notes.append(
                f"The console login {username} was {state} since the demo made it: "
                "its password is not shown (--reset-demo sets a new one)."
            )
        logins[username] = password
        states[username] = state
    return logins, states


async def _ensure_staff(conn: asyncpg.Connection, *, always: bool) -> None:
    """Import the demo staff (through the staff import) when one of them is missing."""
    phones = [normalize_phone(s.phone) for s in DEMO_STAFF]
    if not always and await conn.fetchval(STAFF_PRESENT_SQL, phones) == len(phones):
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, COLUMNS)
    writer.writeheader()
    for s in DEMO_STAFF:
        writer.writerow(
            {
                "full_name": s.full_name,
                "phone": s.phone,
                "organisation": DEMO_ORGANISATION,
                "position": s.position,
                "risk_level": s.risk_level,
            }
        )
    text.seek(0)
    result = await import_staff(conn, text, actor="demo")
    if not result.ok:  # the rows are ours: a failure is a bug, not bad input
        raise RuntimeError(f"demo staff import failed: {result.errors}")


def write_private_json(path: Path, obj: Any) -> None:
    """Replace `path` with `obj` as JSON, readable by its owner only (0600): a reader
    or a crash sees the old file or the new one, never a part, never a looser mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # an old temporary file keeps its mode otherwise
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
