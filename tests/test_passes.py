import base64
import hashlib
import io
import pickle
import random
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import qrcode
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pyzbar import pyzbar
from qrcode.constants import ERROR_CORRECT_M

from checkin_core.base45 import b45decode, b45encode
from checkin_core.keys import KeyStatus, SigningKey, TrustList
from checkin_core.passes import (
    MAX_PAYLOAD_CHARS,
    PAYLOAD_PREFIX,
    PassClaims,
    PassError,
    PassErrorReason,
    issue_pass,
    looks_like_pass,
    parse_pass,
    verify_pass,
)

_rng = random.Random(42)
KEY = SigningKey.from_bytes(_rng.randbytes(32))
OTHER_KEY = SigningKey.from_bytes(_rng.randbytes(32))
TRUST = TrustList([KEY.trusted_key()])
NOW = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
PASS_ID = uuid.UUID(int=_rng.getrandbits(128), version=4)
SITE = 1234
LEEWAY = timedelta(seconds=30)
B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
HEADER = struct.Struct(">B4s16sIII")
# Byte offsets in the decoded payload, one per field.
OFFSETS = {
    "version": 0,
    "kid": 1,
    "pass_id": 5,
    "site_id": 24,
    "not_before": 28,
    "not_after": 32,
    "signature": 33,
    "signature_end": 96,
}

no_db = settings(database=None, deadline=None)


def make_pass(key: SigningKey = KEY, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "pass_id": PASS_ID,
        "site_id": SITE,
        "not_before": NOW - timedelta(hours=1),
        "not_after": NOW + timedelta(hours=8),
    }
    return issue_pass(key, **(claims | overrides))


def forge(
    key: SigningKey,
    *,
    version: int = 1,
    kid: str | None = None,
    site_id: int = SITE,
    not_before: int = 1_714_546_800,
    not_after: int = 1_714_579_200,
) -> str:
    """Sign arbitrary header fields with the raw key, bypassing issue_pass's checks."""
    kid_bytes = bytes.fromhex(kid or key.key_id)
    header = HEADER.pack(version, kid_bytes, PASS_ID.bytes, site_id, not_before, not_after)
    signature = Ed25519PrivateKey.from_private_bytes(key.to_bytes()).sign(b"CG1:" + header)
    return PAYLOAD_PREFIX + b45encode(header + signature)


def reason_of(payload: str, trust: TrustList = TRUST, **kwargs: Any) -> PassErrorReason:
    with pytest.raises(PassError) as info:
        verify_pass(payload, trust, now=kwargs.pop("now", NOW), **kwargs)
    return info.value.reason


def qr_version(text: str) -> int:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    return int(qr.version)


def tamper(payload: str, offset: int, xor: int = 0x01) -> str:
    raw = bytearray(b45decode(payload.removeprefix(PAYLOAD_PREFIX)))
    raw[offset] ^= xor
    return PAYLOAD_PREFIX + b45encode(bytes(raw))


# --- happy paths ---------------------------------------------------------------------


def test_round_trip() -> None:
    claims = verify_pass(make_pass(), TRUST, now=NOW, site_id=SITE)
    assert claims == PassClaims(
        pass_id=PASS_ID,
        site_id=SITE,
        key_id=KEY.key_id,
        not_before=NOW - timedelta(hours=1),
        not_after=NOW + timedelta(hours=8),
    )


def test_payload_is_compact_alphanumeric_and_deterministic() -> None:
    payload = make_pass()
    assert payload.startswith("CG1:")
    assert len(payload) == 150
    assert set(payload) <= set(B45_ALPHABET)
    assert payload == make_pass()
    assert qr_version(payload) == 6


def test_qr_png_round_trip() -> None:
    payload = make_pass()
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=4)
    qr.add_data(payload)
    qr.make(fit=True)
    png = io.BytesIO()
    qr.make_image().save(png)
    png.seek(0)
    (decoded,) = pyzbar.decode(Image.open(png))
    assert decoded.type == "QRCODE"
    assert verify_pass(decoded.data.decode("ascii"), TRUST, now=NOW).pass_id == PASS_ID


def test_sub_second_parts_are_truncated() -> None:
    payload = make_pass(not_after=NOW + timedelta(hours=8, microseconds=999_999))
    assert parse_pass(payload).claims.not_after == NOW + timedelta(hours=8)


def test_surrounding_whitespace_is_stripped() -> None:
    assert verify_pass(f" \t{make_pass()}\r\n", TRUST, now=NOW).pass_id == PASS_ID


def test_looks_like_pass() -> None:
    assert looks_like_pass(make_pass())
    assert looks_like_pass("\nCG2:ANYTHING")
    assert not looks_like_pass("https://example.com/CG1:")


# --- each error reason ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("version", "malformed"),
        ("kid", "unknown_key"),
        ("pass_id", "bad_signature"),
        ("site_id", "bad_signature"),
        ("not_before", "bad_signature"),
        ("not_after", "bad_signature"),
        ("signature", "bad_signature"),
        ("signature_end", "bad_signature"),
    ],
)
def test_tampered_field(field: str, expected: str) -> None:
    assert reason_of(tamper(make_pass(), OFFSETS[field])) == expected


@pytest.mark.parametrize("cut", [1, 2, 3, 50, 146, 150])
def test_truncated_is_malformed(cut: int) -> None:
    assert reason_of(make_pass()[:-cut]) == "malformed"


MALFORMED = {
    "empty": "",
    "prefix-only": "CG1:",
    "lowercase-prefix": "cg1:" + make_pass()[4:],
    "other-prefix": "CG2:" + make_pass()[4:],
    "lowercase": make_pass().lower(),
    "inner-newline": make_pass()[:80] + "\n" + make_pass()[80:],
    "non-ascii": make_pass()[:-1] + "é",
    "lone-surrogate": make_pass()[:-1] + "\ud800",
    "trailing-chars": make_pass() + "00",
    "too-long": make_pass() + " " * MAX_PAYLOAD_CHARS,
    "huge": "CG1:" + "0" * 10**6,
    "version-2": forge(KEY, version=2),
    "site-0": forge(KEY, site_id=0),
    "empty-window": forge(KEY, not_before=1_714_579_200),
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(payload: str) -> None:
    assert reason_of(payload) == "malformed"


def test_resigned_with_other_key_under_faked_kid() -> None:
    assert reason_of(forge(OTHER_KEY, kid=KEY.key_id)) == "bad_signature"


def test_unknown_key() -> None:
    assert reason_of(make_pass(OTHER_KEY)) == "unknown_key"


def test_validity_window_edges() -> None:
    payload = make_pass(not_before=NOW, not_after=NOW + timedelta(hours=1))
    for now in (NOW - LEEWAY, NOW + timedelta(hours=1) + LEEWAY - timedelta(seconds=1)):
        assert verify_pass(payload, TRUST, now=now, leeway=LEEWAY).pass_id == PASS_ID
    early = NOW - LEEWAY - timedelta(seconds=1)
    assert reason_of(payload, now=early, leeway=LEEWAY) == "not_yet_valid"
    assert reason_of(payload, now=NOW + timedelta(hours=1) + LEEWAY) == "expired"


def test_expired_and_not_yet_valid_with_zero_leeway() -> None:
    payload = make_pass(not_before=NOW, not_after=NOW + timedelta(hours=1))
    assert reason_of(payload, now=NOW - timedelta(seconds=1), leeway=timedelta(0)) == (
        "not_yet_valid"
    )
    assert reason_of(payload, now=NOW + timedelta(hours=1), leeway=timedelta(0)) == "expired"


def test_now_in_another_timezone() -> None:
    hanoi = NOW.astimezone(timezone(timedelta(hours=7)))
    assert verify_pass(make_pass(), TRUST, now=hanoi).site_id == SITE


def test_wrong_site() -> None:
    assert reason_of(make_pass(), site_id=SITE + 1) == "wrong_site"


def test_checks_run_in_documented_order() -> None:
    late = NOW + timedelta(days=30)
    assert reason_of(make_pass(OTHER_KEY), now=late, site_id=1) == "unknown_key"
    assert reason_of(forge(OTHER_KEY, kid=KEY.key_id), now=late, site_id=1) == "bad_signature"
    assert reason_of(make_pass(), now=late, site_id=1) == "expired"


def test_pass_error_shape() -> None:
    err = PassError(PassErrorReason.EXPIRED, "at noon")
    assert err.reason == "expired"
    assert str(err) == "expired: at noon"
    assert pickle.loads(pickle.dumps(err)).reason == "expired"


def test_verify_rejects_naive_now_and_negative_leeway() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify_pass(make_pass(), TRUST, now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="leeway"):
        verify_pass(make_pass(), TRUST, now=NOW, leeway=timedelta(seconds=-1))


@pytest.mark.parametrize(
    "overrides",
    [
        {"site_id": 0},
        {"site_id": 2**32},
        {"site_id": True},
        {"not_before": NOW.replace(tzinfo=None)},
        {"not_after": NOW - timedelta(hours=1)},
        {"not_after": datetime(2107, 1, 1, tzinfo=UTC)},
        {"not_before": datetime(1969, 12, 31, tzinfo=UTC)},
    ],
)
def test_issue_rejects_bad_claims(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_pass(**overrides)


# --- keys and trust lists ------------------------------------------------------------


def test_signing_key_round_trip_and_ids() -> None:
    clone = SigningKey.from_bytes(KEY.to_bytes())
    public = base64.urlsafe_b64decode(KEY.public_key_b64() + "=")
    assert clone.key_id == KEY.key_id == hashlib.sha256(public).digest()[:4].hex()
    assert len(public) == 32 and "=" not in KEY.public_key_b64()
    assert KEY.to_bytes().hex() not in repr(KEY)
    with pytest.raises(ValueError):
        SigningKey.from_bytes(b"\x00" * 31)


def test_generated_keys_differ() -> None:
    assert SigningKey.generate().key_id != SigningKey.generate().key_id


def test_trust_list_json_round_trip() -> None:
    trust = TrustList([KEY.trusted_key(), OTHER_KEY.trusted_key(KeyStatus.RETIRING)])
    doc = trust.to_json()
    assert doc["keys"][1] == {
        "kid": OTHER_KEY.key_id,
        "alg": "Ed25519",
        "public_key": OTHER_KEY.public_key_b64(),
        "status": "retiring",
    }
    assert TrustList.from_json(doc) == trust
    assert KEY.key_id in trust and len(trust) == 2


def test_key_rotation() -> None:
    old_pass, new_pass = make_pass(KEY), make_pass(OTHER_KEY)
    rotating = TrustList([KEY.trusted_key(KeyStatus.RETIRING), OTHER_KEY.trusted_key()])
    assert verify_pass(old_pass, rotating, now=NOW).key_id == KEY.key_id
    assert verify_pass(new_pass, rotating, now=NOW).key_id == OTHER_KEY.key_id
    rotated = TrustList.from_json({"keys": [OTHER_KEY.trusted_key().to_json()]})
    assert reason_of(old_pass, trust=rotated) == "unknown_key"
    assert verify_pass(new_pass, rotated, now=NOW).key_id == OTHER_KEY.key_id


def _entry(**overrides: Any) -> dict[str, Any]:
    return KEY.trusted_key().to_json() | overrides


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {},
        {"keys": {}},
        {"keys": [], "extra": 1},
        {"keys": [None]},
        {"keys": [{k: v for k, v in _entry().items() if k != "status"}]},
        {"keys": [_entry(extra="x")]},
        {"keys": [_entry(alg="RS256")]},
        {"keys": [_entry(status="revoked")]},
        {"keys": [_entry(status=1)]},
        {"keys": [_entry(kid=OTHER_KEY.key_id)]},
        {"keys": [_entry(kid=KEY.key_id.upper())]},
        {"keys": [_entry(public_key=KEY.public_key_b64() + "=")]},
        {"keys": [_entry(public_key=KEY.public_key_b64()[:-1])]},
        {"keys": [_entry(public_key=KEY.public_key_b64()[:-1] + "!")]},
        {"keys": [_entry(public_key=KEY.public_key_b64()[:-1] + "é")]},
        {"keys": [_entry(), _entry()]},
    ],
)
def test_trust_list_rejects_bad_documents(doc: object) -> None:
    with pytest.raises(ValueError):
        TrustList.from_json(doc)


# --- base45 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
    ],
)
def test_base45_rfc9285_vectors(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


@pytest.mark.parametrize("text", ["GGW", "A", "ABCD", "a0", "ZZ"])
def test_base45_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        b45decode(text)


@no_db
@given(st.binary())
def test_base45_round_trip(raw: bytes) -> None:
    assert b45decode(b45encode(raw)) == raw


# --- properties ----------------------------------------------------------------------

_any_char = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from(B45_ALPHABET),
    st.sampled_from(" \t\r\n"),
)


def _never_verifies(payload: str) -> None:
    with pytest.raises(PassError):
        verify_pass(payload, TRUST, now=NOW)


@no_db
@given(st.one_of(st.text(_any_char), st.text(_any_char).map(PAYLOAD_PREFIX.__add__)))
def test_random_text_never_verifies(text: str) -> None:
    _never_verifies(text)


@no_db
@given(st.binary(max_size=300))
def test_random_bytes_never_verify(raw: bytes) -> None:
    _never_verifies(raw.decode("latin-1"))
    _never_verifies(PAYLOAD_PREFIX + b45encode(raw))


@no_db
@given(st.binary(min_size=92, max_size=92))
def test_random_body_under_trusted_kid_never_verifies(rest: bytes) -> None:
    _never_verifies(PAYLOAD_PREFIX + b45encode(b"\x01" + bytes.fromhex(KEY.key_id) + rest))


@no_db
@given(st.data())
def test_single_character_mutation_never_verifies(data: st.DataObject) -> None:
    payload = make_pass()
    i = data.draw(st.integers(0, len(payload) - 1))
    char = data.draw(_any_char.filter(lambda c: c != payload[i]))
    _never_verifies(payload[:i] + char + payload[i + 1 :])


@no_db
@given(st.integers(0, 96), st.integers(1, 255))
def test_single_byte_mutation_never_verifies(offset: int, xor: int) -> None:
    _never_verifies(tamper(make_pass(), offset, xor))


@no_db
@given(st.integers(0, 149))
def test_truncation_never_verifies(length: int) -> None:
    _never_verifies(make_pass()[:length])


@no_db
@given(
    pass_id=st.uuids(),
    site_id=st.integers(1, 2**32 - 1),
    not_before=st.datetimes(datetime(2020, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    duration=st.timedeltas(timedelta(seconds=1), timedelta(days=366)),
)
def test_qr_version_at_most_10(
    pass_id: uuid.UUID, site_id: int, not_before: datetime, duration: timedelta
) -> None:
    payload = issue_pass(
        OTHER_KEY,
        pass_id=pass_id,
        site_id=site_id,
        not_before=not_before,
        not_after=not_before + duration,
    )
    assert len(payload) == 150
    assert qr_version(payload) <= 10
    assert verify_pass(payload, TrustList([OTHER_KEY.trusted_key()]), now=not_before).site_id == (
        site_id
    )
