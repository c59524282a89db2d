"""An offline allow against the gate's policy: a door that opened while the kiosk could
not reach us, where the gate's offline policy says it must not have.

The gate's policy is `deny` (nobody enters offline), or `verify-offline` and the code was
no valid pass here. A kiosk started with `--offline-policy verify-offline` at a `deny`
gate, a stale cached policy, or a tampered kiosk all look like this. The event still
records what the door did; its detail gets `offline_against_policy` and the consoles
raise an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from checkin_core.passes import PassErrorReason

if TYPE_CHECKING:
    from service.checkin.wire import ScanItem

# Read only for batches that replay an offline allow (rare): the hot path stays as it is.
GATE_POLICIES_SQL = "SELECT id, offline_policy FROM gates WHERE id = ANY($1::bigint[])"
# Why an offline allow broke its gate's policy (the event's detail, `offline_against_policy`).
POLICY_DENY = "gate_policy_deny"  # the gate's offline policy is deny: nobody may enter offline
NOT_A_VALID_PASS = "not_a_valid_pass"  # verify-offline, but the code is no valid pass here
PASS_ERRORS = frozenset(e.value for e in PassErrorReason)


async def offline_policies(conn: asyncpg.Connection, items: Sequence[ScanItem]) -> dict[int, str]:
    """The offline policies of the gates whose kiosks replay an offline allow."""
    gate_ids = {i.gate_id for i in items if i.scan.offline and i.scan.offline.verdict == "allow"}
    if not gate_ids:
        return {}
    rows = await conn.fetch(GATE_POLICIES_SQL, list(gate_ids))
    return {r["id"]: r["offline_policy"] for r in rows}


def against_policy(policy: str | None, pass_error: str | None) -> str | None:
    """Why a door that opened offline broke its gate's offline policy, if it did: the
    policy lets nobody in offline, or lets in only valid passes and this was none."""
    if policy != "verify-offline":
        return POLICY_DENY
    if pass_error is not None:
        return NOT_A_VALID_PASS
    return None
