"""Ed25519 keys of passes: the signing key that issues them, and the trust list of
public keys a verifier accepts (published at GET /api/v1/keys, cached by kiosks)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ALG = "Ed25519"
_KEY_ID_LEN = 4


class KeyStatus(StrEnum):
    ACTIVE = "active"
    RETIRING = "retiring"


def key_id_for(public_key: bytes) -> str:
    """Key id of a raw 32-byte Ed25519 public key: 8 lowercase hex characters."""
    return hashlib.sha256(public_key).digest()[:_KEY_ID_LEN].hex()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class SigningKey:
    """An Ed25519 private key that issues passes. ``repr`` never shows the secret."""

    __slots__ = ("_key", "_public_raw", "key_id")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public_raw = _raw_public(key.public_key())
        self.key_id = key_id_for(self._public_raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> SigningKey:
        if len(raw) != 32:
            raise ValueError("an Ed25519 private key is 32 raw bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def to_bytes(self) -> bytes:
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def public_key_bytes(self) -> bytes:
        return self._public_raw

    def public_key_b64(self) -> str:
        """Base64url without padding of the 32 raw public key bytes."""
        return _b64url(self._public_raw)

    def trusted_key(self, status: KeyStatus = KeyStatus.ACTIVE) -> TrustedKey:
        return TrustedKey(kid=self.key_id, public_key=self._public_raw, status=status)

    def _sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"


@dataclass(frozen=True)
class TrustedKey:
    kid: str
    public_key: bytes
    status: KeyStatus

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 raw bytes")
        if self.kid != key_id_for(self.public_key):
            raise ValueError(f"kid {self.kid!r} does not match its public key")
        object.__setattr__(self, "status", KeyStatus(self.status))

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, str]:
        return {
            "kid": self.kid,
            "alg": ALG,
            "public_key": _b64url(self.public_key),
            "status": str(self.status),
        }

    @classmethod
    def from_json(cls, obj: object) -> TrustedKey:
        if not isinstance(obj, Mapping):
            raise ValueError("a key entry must be an object")
        fields = {"kid", "alg", "public_key", "status"}
        if set(obj) != fields:
            raise ValueError(f"a key entry has exactly the fields {sorted(fields)}")
        kid, alg, public_b64, status = (obj[f] for f in ("kid", "alg", "public_key", "status"))
        if not all(isinstance(v, str) for v in (kid, alg, public_b64, status)):
            raise ValueError("key entry fields are strings")
        if alg != ALG:
            raise ValueError(f"unsupported alg {alg!r}")
        if status not in {s.value for s in KeyStatus}:
            raise ValueError(f"unknown key status {status!r}")
        public = _b64url_decode(public_b64)
        if public is None or len(public) != 32:
            raise ValueError("public_key must be 32 bytes in unpadded base64url")
        return cls(kid=kid, public_key=public, status=KeyStatus(status))


def _b64url_decode(text: str) -> bytes | None:
    """Decode canonical unpadded base64url, or None."""
    if not text.isascii() or "=" in text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64url(raw) == text else None


class TrustList:
    """The public keys a verifier accepts, as published at ``GET /api/v1/keys``.

    Rotation: add the new key as ``active`` and mark the old one ``retiring`` (passes it
    signed still verify); remove it once those passes have expired (they then fail with
    ``unknown_key``).
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self._keys: dict[str, TrustedKey] = {}
        for key in keys:
            if key.kid in self._keys:
                raise ValueError(f"duplicate kid {key.kid!r}")
            self._keys[key.kid] = key

    @classmethod
    def from_json(cls, obj: object) -> TrustList:
        """Build from the parsed JSON document; raise ValueError on any deviation."""
        if not isinstance(obj, Mapping) or set(obj) != {"keys"}:
            raise ValueError('a trust list is an object with exactly one field, "keys"')
        keys = obj["keys"]
        if not isinstance(keys, list):
            raise ValueError('"keys" must be a list')
        return cls(TrustedKey.from_json(entry) for entry in keys)

    def to_json(self) -> dict[str, Any]:
        return {"keys": [key.to_json() for key in self._keys.values()]}

    def get(self, kid: str) -> TrustedKey | None:
        return self._keys.get(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __iter__(self) -> Iterator[TrustedKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrustList) and self._keys == other._keys

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TrustList({list(self._keys.values())!r})"
