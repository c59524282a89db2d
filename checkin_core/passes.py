"""Signed check-in passes: payload format, Ed25519 signing and offline verification.

Pure module (no I/O) depending only on ``cryptography`` and the standard library, because
the kiosk (``scanner/``) imports it too.

Payload format, version 1
-------------------------

The QR code holds the ASCII text ``"CG1:" + base45(raw)`` where ``raw`` is 97 bytes::

    offset size  field
         0    1  version       0x01
         1    4  key id        first 4 bytes of SHA-256(raw 32-byte Ed25519 public key)
         5   16  pass id       UUID, 16 bytes big-endian (``UUID.bytes``)
        21    4  site id       uint32 big-endian, 1 .. 2**32 - 1
        25    4  not_before    uint32 big-endian, Unix seconds UTC
        29    4  not_after     uint32 big-endian, Unix seconds UTC, > not_before
        33   64  signature     Ed25519 over b"CG1:" + raw[0:33]

The whole text is always 4 + 146 = 150 characters; ``qrcode`` puts it in a version 6
QR code at error correction level M (alphanumeric capacity 154), well under the
version 10 budget for reading a phone screen with a webcam.

Why this shape:

* A fixed binary layout has no parser to get wrong and no optional fields: a payload is
  either exactly 97 bytes with every field in range, or ``malformed``.
* Base45 (RFC 9285) maps bytes onto the QR alphanumeric alphabet (uppercase, digits,
  `` $%*+-./:``), which QR packs at 5.5 bits per character. Measured with the same
  97 bytes at level M: Base45 is 150 characters and version 6, base32 without padding
  160 characters and version 7, base64url (byte mode) 134 characters and version 8.
  EU Digital COVID Certificates chose Base45 for the same reason; it is a dozen lines.
* The ``CG1:`` prefix lets the kiosk tell our codes from any other QR code before
  decoding, and names the format generation. The version byte repeats it inside the
  signed bytes, and the prefix itself is part of the signed message: a domain
  separation tag, so a signature the key made over some other message cannot be
  passed off as a pass.
* Timestamps are uint32 Unix seconds (valid until 2106-02-07); sub-second parts of
  the datetimes given to :func:`issue_pass` are truncated.
* The key id is 32 bits: enough to pick a key among the few in a trust list (the trust
  list refuses duplicates); it is not a security boundary, the signature is.

Input handling in :func:`parse_pass` / :func:`verify_pass`: any ``str`` is accepted and
every failure is a :class:`PassError`. Strings longer than :data:`MAX_PAYLOAD_CHARS` are
refused before any other work. Surrounding ASCII whitespace (space, tab, CR, LF, VT, FF)
is stripped, because keyboard-wedge scanners and copy-paste add line endings; a valid
Base45 text never ends with a space (its last character encodes a value <= 32), so
stripping cannot damage a genuine payload. Anything non-ASCII (including lone
surrogates) and any lowercase text are ``malformed``.

Validity is the half-open window ``[not_before, not_after)`` widened by ``leeway`` on
both sides for clock skew. Keys with status ``active`` or ``retiring`` both verify; the
status only tells the service which key issues new passes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

__all__ = [
    "ALG",
    "FORMAT_VERSION",
    "MAX_PAYLOAD_CHARS",
    "PAYLOAD_PREFIX",
    "KeyStatus",
    "ParsedPass",
    "PassClaims",
    "PassError",
    "PassErrorReason",
    "SigningKey",
    "TrustList",
    "TrustedKey",
    "b45decode",
    "b45encode",
    "issue_pass",
    "key_id_for",
    "looks_like_pass",
    "parse_pass",
    "verify_pass",
]

FORMAT_VERSION = 1
PAYLOAD_PREFIX = "CG1:"
ALG = "Ed25519"
MAX_PAYLOAD_CHARS = 512
"""Longest input parse_pass looks at (a v1 payload is 150 characters)."""

_HEADER = struct.Struct(">B4s16sIII")
_SIG_LEN = 64
_RAW_LEN = _HEADER.size + _SIG_LEN
_KEY_ID_LEN = 4
_UINT32_MAX = 2**32 - 1
_ASCII_WHITESPACE = " \t\r\n\v\f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PREFIX_FAMILY = re.compile(r"CG[0-9]+:")

_B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_INDEX = {c: i for i, c in enumerate(_B45_ALPHABET)}


class PassErrorReason(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_SITE = "wrong_site"


class PassError(Exception):
    """A payload that must not open the door; ``reason`` says why."""

    def __init__(self, reason: PassErrorReason, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else str(self.reason)


class KeyStatus(StrEnum):
    ACTIVE = "active"
    RETIRING = "retiring"


@dataclass(frozen=True)
class PassClaims:
    pass_id: uuid.UUID
    site_id: int
    key_id: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class ParsedPass:
    """A structurally valid payload whose signature has not been checked yet."""

    version: int
    claims: PassClaims
    signed_message: bytes
    signature: bytes


# --- Base45 (RFC 9285) ---------------------------------------------------------------


def b45encode(data: bytes) -> str:
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        e, rest = divmod(n, 45 * 45)
        d, c = divmod(rest, 45)
        out += (_B45_ALPHABET[c], _B45_ALPHABET[d], _B45_ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (_B45_ALPHABET[c], _B45_ALPHABET[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """Decode strict Base45; raise ValueError on a bad character, length or value."""
    if len(text) % 3 == 1:
        raise ValueError("base45 length leaves a dangling character")
    try:
        digits = [_B45_INDEX[c] for c in text]
    except KeyError as e:
        raise ValueError("character outside the base45 alphabet") from e
    out = bytearray()
    for i in range(0, len(digits), 3):
        chunk = digits[i : i + 3]
        if len(chunk) == 3:
            n = chunk[0] + chunk[1] * 45 + chunk[2] * 45 * 45
            if n > 0xFFFF:
                raise ValueError("base45 triple out of range")
            out += n.to_bytes(2, "big")
        else:
            n = chunk[0] + chunk[1] * 45
            if n > 0xFF:
                raise ValueError("base45 pair out of range")
            out.append(n)
    return bytes(out)


# --- Keys ----------------------------------------------------------------------------


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


# --- Passes --------------------------------------------------------------------------


def _to_timestamp(name: str, value: datetime) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    ts = (value - _EPOCH) // timedelta(seconds=1)
    if not 0 <= ts <= _UINT32_MAX:
        raise ValueError(f"{name} is outside 1970-01-01 .. 2106-02-07")
    return ts


def _from_timestamp(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def issue_pass(
    key: SigningKey,
    *,
    pass_id: uuid.UUID,
    site_id: int,
    not_before: datetime,
    not_after: datetime,
) -> str:
    """Sign a pass and return its QR payload text. Raise ValueError on bad claims."""
    if isinstance(site_id, bool) or not 1 <= site_id <= _UINT32_MAX:
        raise ValueError("site_id must be an integer in 1 .. 2**32 - 1")
    nb = _to_timestamp("not_before", not_before)
    na = _to_timestamp("not_after", not_after)
    if nb >= na:
        raise ValueError("not_before must be earlier than not_after (in whole seconds)")
    header = _HEADER.pack(FORMAT_VERSION, bytes.fromhex(key.key_id), pass_id.bytes, site_id, nb, na)
    signature = key._sign(PAYLOAD_PREFIX.encode("ascii") + header)
    return PAYLOAD_PREFIX + b45encode(header + signature)


def looks_like_pass(text: str) -> bool:
    """Cheap check that a decoded QR text is one of our passes, of any format generation."""
    return _PREFIX_FAMILY.match(text.lstrip(_ASCII_WHITESPACE)) is not None


def _malformed(detail: str) -> PassError:
    return PassError(PassErrorReason.MALFORMED, detail)


def parse_pass(payload: str) -> ParsedPass:
    """Check a payload's structure (not its signature); raise PassError(malformed)."""
    if not isinstance(payload, str):
        raise _malformed("payload is not text")
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise _malformed("payload too long")
    if not payload.isascii():
        raise _malformed("payload is not ASCII")
    text = payload.strip(_ASCII_WHITESPACE)
    if not text.startswith(PAYLOAD_PREFIX):
        raise _malformed("unknown prefix")
    try:
        raw = b45decode(text[len(PAYLOAD_PREFIX) :])
    except ValueError as e:
        raise _malformed(f"bad base45: {e}") from e
    if len(raw) != _RAW_LEN:
        raise _malformed(f"expected {_RAW_LEN} bytes, got {len(raw)}")
    version, kid, pass_id, site_id, nb, na = _HEADER.unpack_from(raw)
    if version != FORMAT_VERSION:
        raise _malformed(f"unsupported version {version}")
    if site_id == 0:
        raise _malformed("site id 0")
    if nb >= na:
        raise _malformed("empty validity window")
    claims = PassClaims(
        pass_id=uuid.UUID(bytes=pass_id),
        site_id=site_id,
        key_id=kid.hex(),
        not_before=_from_timestamp(nb),
        not_after=_from_timestamp(na),
    )
    return ParsedPass(
        version=version,
        claims=claims,
        signed_message=PAYLOAD_PREFIX.encode("ascii") + raw[: _HEADER.size],
        signature=raw[_HEADER.size :],
    )


def verify_pass(
    payload: str,
    trust: TrustList,
    *,
    now: datetime,
    site_id: int | None = None,
    leeway: timedelta = timedelta(seconds=30),
) -> PassClaims:
    """Return the claims of a genuine, currently valid pass, or raise PassError.

    Checks run in order: malformed, unknown_key, bad_signature, not_yet_valid/expired,
    wrong_site (only when ``site_id`` is given). A naive ``now`` or a negative
    ``leeway`` is a programming error and raises ValueError.
    """
    return check_claims(authenticate_pass(payload, trust), now=now, site_id=site_id, leeway=leeway)


def authenticate_pass(payload: str, trust: TrustList) -> PassClaims:
    """The claims of a pass signed by a trusted key (malformed, unknown_key or
    bad_signature otherwise), whatever its validity window. The result depends only
    on the payload and the trust list, so callers may cache it."""
    parsed = parse_pass(payload)
    claims = parsed.claims
    key = trust.get(claims.key_id)
    if key is None:
        raise PassError(PassErrorReason.UNKNOWN_KEY, f"kid {claims.key_id}")
    if not key.verify(parsed.signature, parsed.signed_message):
        raise PassError(PassErrorReason.BAD_SIGNATURE, f"kid {claims.key_id}")
    return claims


def check_claims(
    claims: PassClaims,
    *,
    now: datetime,
    site_id: int | None = None,
    leeway: timedelta = timedelta(seconds=30),
) -> PassClaims:
    """Raise not_yet_valid, expired or wrong_site (when ``site_id`` is given)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if leeway < timedelta(0):
        raise ValueError("leeway must not be negative")
    if now + leeway < claims.not_before:
        raise PassError(PassErrorReason.NOT_YET_VALID, f"valid from {claims.not_before}")
    if now - leeway >= claims.not_after:
        raise PassError(PassErrorReason.EXPIRED, f"expired at {claims.not_after}")
    if site_id is not None and site_id != claims.site_id:
        raise PassError(PassErrorReason.WRONG_SITE, f"pass is for site {claims.site_id}")
    return claims
