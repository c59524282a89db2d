"""Base45 (RFC 9285): bytes as the QR alphanumeric alphabet, which QR packs at 5.5 bits
a character (why the pass uses it: checkin_core.passes)."""

from __future__ import annotations

_B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_INDEX = {c: i for i, c in enumerate(_B45_ALPHABET)}


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
