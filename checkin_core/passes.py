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

import re
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from checkin_core.base45 import b45decode, b45encode
from checkin_core.keys import SigningKey, TrustList

__all__ = [
    "FORMAT_VERSION",
    "MAX_PAYLOAD_CHARS",
    "PAYLOAD_PREFIX",
    "ParsedPass",
    "PassClaims",
    "PassError",
    "PassErrorReason",
    "authenticate_pass",
    "check_claims",
    "issue_pass",
    "looks_like_pass",
    "parse_pass",
    "verify_pass",
]

FORMAT_VERSION = 1
PAYLOAD_PREFIX = "CG1:"
MAX_PAYLOAD_CHARS = 512
"""Longest input parse_pass looks at (a v1 payload is 150 characters)."""

_HEADER = struct.Struct(">B4s16sIII")
_SIG_LEN = 64
_RAW_LEN = _HEADER.size + _SIG_LEN
_UINT32_MAX = 2**32 - 1
_ASCII_WHITESPACE = " \t\r\n\v\f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PREFIX_FAMILY = re.compile(r"CG[0-9]+:")


class PassErrorReason(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_SITE = "wrong_site"
    CODE_EXPIRED = "code_expired"  # a rotating code outside its time window (rotating.py)


class PassError(Exception):
    """A payload that must not open the door; ``reason`` says why."""

    def __init__(self, reason: PassErrorReason, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else str(self.reason)


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
