"""The trust list at the kiosk: fetched from ``GET /api/v1/keys``, cached on disk.

The cache lets the kiosk check signatures from its first second, including when it
starts while the service is unreachable.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from checkin_core.keys import TrustList

logger = logging.getLogger(__name__)

KEYS_PATH = "/api/v1/keys"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write a JSON file so that a reader (or a crash) sees the old or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        logger.warning("ignoring unreadable %s: %s", path, e)
        return None


class TrustCache:
    """The current trust list, mirrored in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.trust = TrustList()
        self.fetched_at: float | None = None  # monotonic time of the last good fetch
        self.loaded = False  # a trust list is known (from disk or the service)

    def load(self) -> bool:
        obj = read_json(self.path)
        if obj is None:
            return False
        try:
            self.trust = TrustList.from_json(obj)
        except ValueError as e:
            logger.warning("ignoring cached trust list %s: %s", self.path, e)
            return False
        self.loaded = True
        return True

    def update(self, trust: TrustList) -> bool:
        """Take a freshly fetched list; write it to disk when it changed."""
        self.fetched_at = time.monotonic()
        changed = not self.loaded or trust != self.trust
        self.trust = trust
        self.loaded = True
        if changed:
            write_json_atomic(self.path, trust.to_json())
            logger.info("trust list updated: %s", ", ".join(k.kid for k in trust) or "no keys")
        return changed

    def is_fresh(self, max_age: float) -> bool:
        return self.fetched_at is not None and time.monotonic() - self.fetched_at < max_age


async def fetch_trust(session: aiohttp.ClientSession, server: str, *, limit_s: float) -> TrustList:
    """GET the trust list; raise aiohttp.ClientError, TimeoutError or ValueError."""
    async with session.get(
        server.rstrip("/") + KEYS_PATH, timeout=aiohttp.ClientTimeout(total=limit_s)
    ) as resp:
        resp.raise_for_status()
        return TrustList.from_json(await resp.json())
