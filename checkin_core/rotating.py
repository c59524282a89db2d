"""Rotating passes: a pass bound to a phone's key, shown as a QR that changes every 15 s.

Pure (no I/O), shared by the kiosk and the service, like ``checkin_core.passes``.

The phone's pass page makes an Ed25519 key pair (WebCrypto, private key not
extractable) and sends the public key with the pass link's key; the service answers a
*bound pass*, signed by the issuer, that names the device key. Every 15 s the page shows
a new code: the bound pass plus the device's signature over (pass id, time step). A
verifier checks, with no network: the issuer's signature (the pass is ours and names
this device key), the device's signature (the code was made by the phone holding the
private key), then the time step (the code was made just now). A screenshot or a
forwarded photo holds one step's code: it is refused with ``code_expired`` once the
verifier's clock is past the next step, at most 2 steps (30 s) after it was made.

Format, version 2
-----------------

The QR text is ``"CG2:" + base45(raw)``, ``raw`` 197 bytes::

    offset size  field
         0    1  version       0x02
         1    4  key id        of the issuer's key (as in version 1)
         5   16  pass id       UUID bytes
        21    4  site id       uint32 big-endian
        25    4  not_before    uint32 Unix seconds
        29    4  not_after     uint32 Unix seconds
        33   32  device key    raw Ed25519 public key of the phone
        65   64  issuer sig    Ed25519 over b"CG2:" + raw[0:65]      (the bound pass ends here)
       129    4  time step     uint32 big-endian, floor(unix seconds / 15)
       133   64  device sig    Ed25519 over b"CG2D:" + pass id + time step

296 characters: a version 10 QR code at level M (alphanumeric capacity 311), the most
a webcam reads off a phone screen reliably (measured in tests/test_rotating.py).
"""

from __future__ import annotations

import base64
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from checkin_core.base45 import b45decode
from checkin_core.keys import SigningKey, TrustList
from checkin_core.passes import (
    MAX_PAYLOAD_CHARS,
    PassClaims,
    PassError,
    PassErrorReason,
    authenticate_pass,
    check_claims,
)

__all__ = [
    "BOUND_PREFIX",
    "STEP_S",
    "TOLERANCE_STEPS",
    "RotatingClaims",
    "authenticate_any",
    "bound_pass_b64",
    "check_presented",
    "device_message",
    "is_rotating",
    "time_step",
]

BOUND_PREFIX = "CG2:"
BOUND_VERSION = 2
STEP_S = 15
TOLERANCE_STEPS = 1  # a code is good in its own step and the next (and one ahead, for skew)
DEVICE_TAG = b"CG2D:"

_HEADER = struct.Struct(">B4s16sIII32s")
_STEP = struct.Struct(">I")
_SIG = 64
_BOUND_LEN = _HEADER.size + _SIG
_RAW_LEN = _BOUND_LEN + _STEP.size + _SIG
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RotatingClaims(PassClaims):
    """The claims of an authentic rotating code: the pass's, and when the code was made."""

    device_key: bytes
    step: int


def time_step(at: datetime) -> int:
    return int((at - _EPOCH) // timedelta(seconds=STEP_S))


def device_message(pass_id: uuid.UUID, step: int) -> bytes:
    """What the phone signs for one time step."""
    return DEVICE_TAG + pass_id.bytes + _STEP.pack(step)


def bound_pass_b64(
    key: SigningKey,
    *,
    pass_id: uuid.UUID,
    site_id: int,
    not_before: datetime,
    not_after: datetime,
    device_key: bytes,
) -> str:
    """The issuer-signed bound pass (raw[0:129]) in base64url, for the phone's page."""
    if len(device_key) != 32:
        raise ValueError("a device key is 32 raw Ed25519 public key bytes")
    nb, na = (int((t - _EPOCH).total_seconds()) for t in (not_before, not_after))
    header = _HEADER.pack(
        BOUND_VERSION, bytes.fromhex(key.key_id), pass_id.bytes, site_id, nb, na, device_key
    )
    signed = header + key._sign(BOUND_PREFIX.encode("ascii") + header)
    return base64.urlsafe_b64encode(signed).rstrip(b"=").decode("ascii")


def is_rotating(payload: str) -> bool:
    return payload.lstrip(" \t\r\n\v\f").startswith(BOUND_PREFIX)


def _malformed(detail: str) -> PassError:
    return PassError(PassErrorReason.MALFORMED, detail)


def _verify(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _authenticate_code(payload: str, trust: TrustList) -> RotatingClaims:
    if len(payload) > MAX_PAYLOAD_CHARS or not payload.isascii():
        raise _malformed("payload too long or not ASCII")
    text = payload.strip(" \t\r\n\v\f")
    try:
        raw = b45decode(text[len(BOUND_PREFIX) :])
    except ValueError as e:
        raise _malformed(f"bad base45: {e}") from e
    if len(raw) != _RAW_LEN:
        raise _malformed(f"expected {_RAW_LEN} bytes, got {len(raw)}")
    version, kid, pid, site_id, nb, na, device = _HEADER.unpack_from(raw)
    if version != BOUND_VERSION or site_id == 0 or nb >= na:
        raise _malformed("bad header")
    key = trust.get(kid.hex())
    if key is None:
        raise PassError(PassErrorReason.UNKNOWN_KEY, f"kid {kid.hex()}")
    prefix = BOUND_PREFIX.encode("ascii")
    if not key.verify(raw[_HEADER.size : _BOUND_LEN], prefix + raw[: _HEADER.size]):
        raise PassError(PassErrorReason.BAD_SIGNATURE, f"kid {kid.hex()}")
    pass_id = uuid.UUID(bytes=pid)
    (step,) = _STEP.unpack_from(raw, _BOUND_LEN)
    if not _verify(device, raw[_BOUND_LEN + _STEP.size :], device_message(pass_id, step)):
        raise PassError(PassErrorReason.BAD_SIGNATURE, "device signature")
    return RotatingClaims(
        pass_id=pass_id,
        site_id=site_id,
        key_id=kid.hex(),
        not_before=datetime.fromtimestamp(nb, tz=UTC),
        not_after=datetime.fromtimestamp(na, tz=UTC),
        device_key=device,
        step=step,
    )


def authenticate_any(payload: str, trust: TrustList) -> PassClaims:
    """The claims of a static pass (version 1) or of a rotating code (version 2, as
    RotatingClaims), whatever the time; PassError as ``authenticate_pass`` otherwise.
    Depends only on the payload and the trust list, so callers may cache it."""
    if isinstance(payload, str) and is_rotating(payload):
        return _authenticate_code(payload, trust)
    return authenticate_pass(payload, trust)


def check_presented(
    claims: PassClaims,
    *,
    now: datetime,
    site_id: int | None = None,
    skew: timedelta = timedelta(0),
) -> PassClaims:
    """``check_claims``, then for a rotating code its time step against ``now + skew``
    (the verifier's clock corrected by its measured skew against the service)."""
    check_claims(claims, now=now, site_id=site_id)
    if isinstance(claims, RotatingClaims):
        current = time_step(now + skew)
        if abs(claims.step - current) > TOLERANCE_STEPS:
            raise PassError(
                PassErrorReason.CODE_EXPIRED, f"code of step {claims.step}, now {current}"
            )
    return claims
