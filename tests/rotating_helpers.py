"""A phone's side of a rotating pass, as service/web/static/pass-phone.js does it."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from checkin_core.base45 import b45encode
from checkin_core.keys import SigningKey
from checkin_core.rotating import BOUND_PREFIX, device_message
from service.passes.keys import KEYS_KEY
from service.passes.links import PASS_LINKS_KEY


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class Phone:
    pass_id: uuid.UUID
    bound: bytes
    key: Ed25519PrivateKey

    def code(self, step: int) -> str:
        """The QR text the page shows in time step ``step``."""
        signature = self.key.sign(device_message(self.pass_id, step))
        return BOUND_PREFIX + b45encode(self.bound + step.to_bytes(4, "big") + signature)


def link_key(app: web.Application, pass_id: uuid.UUID) -> str:
    return app[PASS_LINKS_KEY].key_for(pass_id)


def hold_key(app: web.Application, key: SigningKey) -> None:
    """Give the service the private half of a factory-made active key (its data folder)."""
    store = app[KEYS_KEY]
    if store.load(key.key_id) is None:
        store.save(key)


async def bind_phone(
    client: TestClient[Any, Any] | aiohttp.ClientSession,
    app: web.Application,
    pass_id: uuid.UUID,
    key: SigningKey,
) -> Phone:
    """A new device key, bound through POST /passes/{id}/bind as the page binds it."""
    hold_key(app, key)
    device = Ed25519PrivateKey.generate()
    public = device.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    resp = await client.post(
        f"/passes/{pass_id}/bind",
        params={"key": link_key(app, pass_id)},
        json={"device_key": b64url(public)},
    )
    assert resp.status == 200, await resp.text()
    bound = (await resp.json())["bound"]
    return Phone(pass_id, base64.urlsafe_b64decode(bound + "=" * (-len(bound) % 4)), device)
