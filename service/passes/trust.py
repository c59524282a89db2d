"""Authenticating pass payloads against the published keys, with a cache.

The signature check is the costly part of a scan (an Ed25519 verification); its
result depends only on the payload and the trust list, so it is cached per payload
and the cache is dropped whenever the trust list changes.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import asyncpg

from checkin_core.keys import TrustList
from checkin_core.passes import PassClaims, PassError
from checkin_core.rotating import authenticate_any
from service.passes.keys import trust_list

Checked = tuple[PassClaims | None, str | None]  # claims if genuine; error reason if not


class PassAuthenticator:
    def __init__(self, *, max_age_s: float = 5.0, cache_size: int = 65536) -> None:
        self.trust = TrustList()
        self.max_age_s = max_age_s
        self.cache_size = cache_size
        self._loaded_at = float("-inf")
        self._unknown_key_seen = False
        self._cache: OrderedDict[str, Checked] = OrderedDict()

    async def refresh(self, conn: asyncpg.Connection) -> None:
        """Reload the trust list when it is old, or soon after an unknown key was seen
        (a key rotated on another instance)."""
        age = time.monotonic() - self._loaded_at
        if age < self.max_age_s and not (self._unknown_key_seen and age > 1.0):
            return
        trust = await trust_list(conn)
        self._loaded_at = time.monotonic()
        self._unknown_key_seen = False
        if trust != self.trust:
            self.trust = trust
            self._cache.clear()

    def authenticate(self, payload: str) -> Checked:
        found = self._cache.get(payload)
        if found is not None:
            self._cache.move_to_end(payload)
            return found
        try:
            result: Checked = (authenticate_any(payload, self.trust), None)
        except PassError as e:
            result = (None, e.reason.value)
            if e.reason == "unknown_key":
                self._unknown_key_seen = True
        if len(payload) <= 512:  # longer ones are never passes: not worth the memory
            self._cache[payload] = result
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result
