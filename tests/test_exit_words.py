"""An exit says goodbye: the words of the decision, and of the console's events, at an
exit gate (17.2). The words come from checkin_core.reasons; these tests check what the
service sends, over the API and the console feed."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.checkin_helpers import make_door, scan
from tests.factory import Factory, bearer
from tests.test_fanout import receive_events

Client = TestClient[Any, Any]


async def test_the_decision_at_an_exit_says_goodbye(client: Client, factory: Factory) -> None:
    door = await make_door(factory)
    person = await factory.person(full_name="Nguyễn Văn An")
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)

    entry = await scan(client, door.kiosk[door.entrance], payload)
    assert (entry["headline_vi"], entry["headline_en"]) == ("MỜI VÀO", "WELCOME")

    leaving = await scan(client, door.kiosk[door.exit], payload)
    assert (leaving["decision"], leaving["reason"], leaving["direction"]) == (
        "allow",
        "goodbye",
        "out",
    )
    assert (leaving["headline_vi"], leaving["headline_en"]) == ("TẠM BIỆT", "GOODBYE")
    assert leaving["message_vi"].startswith("Tạm biệt") and "Mời" not in leaving["message_vi"]
    assert leaving["name"] == "N. V. An"

    # Trying to come in through the exit: refused, with words about this gate's way.
    wrong_way = await scan(client, door.kiosk[door.exit], payload, direction="in")
    assert (wrong_way["decision"], wrong_way["reason"]) == ("deny", "wrong_direction")
    assert (wrong_way["headline_vi"], wrong_way["headline_en"]) == ("TỪ CHỐI", "DENIED")
    assert wrong_way["message_en"] == "This gate is for leaving only"
    # And leaving through an entrance.
    wrong_way = await scan(client, door.kiosk[door.entrance], payload, direction="out")
    assert wrong_way["message_en"] == "This gate is for entering only"


async def test_the_console_feed_has_the_exit_words(client: Client, factory: Factory) -> None:
    door = await make_door(factory)
    person = await factory.person(full_name="Trần Thị Bình")
    _, payload = await factory.issued_pass(door.key, door.site_id, person_id=person)
    url = f"/api/v1/events/stream?site_id={door.site_id}&after_seq=0"
    async with client.ws_connect(url, headers=bearer(door.guard)) as console:
        assert (await console.receive_json())["type"] == "hello"
        await scan(client, door.kiosk[door.entrance], payload)
        await scan(client, door.kiosk[door.exit], payload)
        await scan(client, door.kiosk[door.exit], payload)  # not inside any more
        # Leaving through an entrance, let out by the guard.
        refused = await scan(client, door.kiosk[door.entrance], payload, direction="out")
        resp = await client.post(
            "/api/v1/overrides",
            json={"event_id": refused["event_id"], "reason": "Cửa ra đang sửa"},
            headers=bearer(door.guard),
        )
        assert resp.status == 201, await resp.text()
        entry, leaving, again, wrong_way, override = await receive_events(console, 5)
    assert entry["message_en"] == "Welcome"
    assert (leaving["direction"], leaving["message_vi"]) == ("out", "Tạm biệt, hẹn gặp lại")
    assert again["reason"] == "goodbye" and again["warnings"] == ["not_inside"]
    assert wrong_way["message_vi"] == "Cổng này chỉ dùng để vào; hãy ra ở cổng ra"
    assert (override["kind"], override["direction"]) == ("override", "out")
    assert (override["message_vi"], override["message_en"]) == (
        "Bảo vệ đã cho phép ra",
        "Let out by the guard",
    )
