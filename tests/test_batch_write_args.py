"""The batch write names its arguments (service.checkin.plan): every name is one of
checkin_batch_write's parameters in the migrated database, and none is left out."""

from __future__ import annotations

import asyncpg

from service.checkin.plan import WRITE_ARGS, WRITE_SQL


async def test_the_batch_write_names_every_parameter_of_the_function(
    conn: asyncpg.Connection,
) -> None:
    names = await conn.fetchval(
        "SELECT proargnames FROM pg_proc WHERE proname = 'checkin_batch_write'"
    )
    assert sorted(names) == sorted(WRITE_ARGS)
    assert all(f"{name} => $" in WRITE_SQL for name in WRITE_ARGS)
