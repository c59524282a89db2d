"""The door's capacity counts the people likely inside, as the roll call does: a ghost
(an open stay silent longer than the site's silent_after_minutes) no longer fills the
site, and a guard's "seen" counts them again."""

from __future__ import annotations

from tests.checkin_helpers import Door, make_door, scan
from tests.factory import Factory, bearer
from tests.presence_helpers import (
    Client,
    enter,
    let_in_hours_ago,
    person_with_pass,
    set_door_rules,
)


async def likely_inside(client: Client, door: Door) -> int:
    resp = await client.get(f"/api/v1/sites/{door.site_id}/presence", headers=bearer(door.guard))
    assert resp.status == 200, await resp.text()
    count: int = (await resp.json())["likely_inside"]
    return count


async def test_a_ghost_past_the_silence_limit_no_longer_fills_the_site(
    client: Client, factory: Factory
) -> None:
    door = await make_door(factory, capacity=2)
    await set_door_rules(client, door, silent_after_minutes=60)
    ghost, ghost_pass = await person_with_pass(factory, door)
    await let_in_hours_ago(client, door, ghost_pass, hours=2)  # silent since
    passes = [(await person_with_pass(factory, door))[1] for _ in range(3)]

    await enter(client, door, passes[0])
    assert await likely_inside(client, door) == 1  # two open stays, one of them a ghost
    await enter(client, door, passes[1])  # the ghost does not take the second place
    assert await likely_inside(client, door) == 2
    full = await scan(client, door.kiosk[door.entrance], passes[2])
    assert (full["decision"], full["reason"]) == ("deny", "site_full")

    # A guard sees the ghost inside: they count again, and an exit frees a place.
    resp = await client.post(
        f"/api/v1/sites/{door.site_id}/presence/{ghost}/confirm",
        json={"status": "seen"},
        headers=bearer(door.guard),
    )
    assert resp.status == 201, await resp.text()
    assert await likely_inside(client, door) == 3
    out = await scan(client, door.kiosk[door.exit], passes[0])
    assert out["decision"] == "allow"
    still = await scan(client, door.kiosk[door.entrance], passes[2])
    assert (still["decision"], still["reason"]) == ("deny", "site_full")


async def test_without_the_silence_every_open_stay_counts(client: Client, factory: Factory) -> None:
    door = await make_door(factory, capacity=1)
    _, first = await person_with_pass(factory, door)
    _, second = await person_with_pass(factory, door)
    await let_in_hours_ago(client, door, first, hours=2)  # within the default 240 minutes
    full = await scan(client, door.kiosk[door.entrance], second)
    assert (full["decision"], full["reason"]) == ("deny", "site_full")
