"""Secrets in the links to a pass's own pages: the printable page and the QR images.

The QR code carries the pass id in clear, so an id is no secret: anyone with a photo of
someone's QR has it. The links the declarer gets therefore carry a key of their own,
an HMAC of the pass id under a server secret kept in the data folder next to the
signing keys (``<data_dir>/pass-links.secret``, 32 random bytes, mode 0600; shared
by replicas that share the folder, as the signing keys are). Nothing is stored per pass.
Without the right key those pages answer as for a pass that does not exist.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import uuid
from pathlib import Path

from aiohttp import web

_SECRET_BYTES = 32
_KEY_BYTES = 16  # 128 bits: not guessable, and short enough for a printed URL
_PURPOSE = b"pass-link:"


class PassLinks:
    """Keys for the links of passes, from one data folder's secret (read once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._secret: bytes | None = None

    def _load(self) -> bytes:
        if self._secret is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                # Written aside, then linked in whole: a racing replica's file wins, and
                # nobody reads a half-written one.
                aside = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}")
                fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(_SECRET_BYTES))
                with contextlib.suppress(FileExistsError):
                    os.link(aside, self.path)
                aside.unlink()
            secret = self.path.read_bytes()
            if len(secret) != _SECRET_BYTES:
                raise RuntimeError(f"{self.path} must hold {_SECRET_BYTES} bytes")
            self._secret = secret
        return self._secret

    def key_for(self, pass_id: uuid.UUID) -> str:
        digest = hmac.new(self._load(), _PURPOSE + pass_id.bytes, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_KEY_BYTES]).rstrip(b"=").decode("ascii")

    def valid(self, pass_id: uuid.UUID, key: str | None) -> bool:
        if not key or len(key) > 64 or not key.isascii():  # compare_digest takes ASCII only
            return False
        return hmac.compare_digest(self.key_for(pass_id), key)


PASS_LINKS_KEY = web.AppKey("pass_links", PassLinks)


def pass_links_for(data_dir: Path) -> PassLinks:
    return PassLinks(data_dir / "pass-links.secret")
