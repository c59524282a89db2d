"""The QR decoding libraries behind one small interface: a grayscale image in, codes out.

zxing-cpp (the optional `zxing` extra) also reports the symbols it located but could not
decode; the pipeline spends its fallbacks on those places.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Polygon = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Decoded:
    text: str
    polygon: Polygon  # corner points in the frame's pixel coordinates
    view: str = ""  # which view and decoder read it, e.g. "raw/zxing-cpp"


@dataclass(frozen=True)
class Reading:
    """One decoder's answer on one image: the codes, and symbols located but not read."""

    codes: list[Decoded]
    located: list[Polygon]


class DecoderUnavailable(RuntimeError):
    """The decoding library behind a decoder is not installed."""


class Decoder(Protocol):
    name: str
    # Estimated CPU milliseconds per megapixel decoded (measured on the bench machine):
    # the unit of the pipeline's per-frame budget, so the work done does not depend on load.
    ms_per_mpix: float

    def read(self, gray: Image) -> Reading: ...


class PyzbarDecoder:
    """ZBar through pyzbar, restricted to QR codes (dark on light only)."""

    name = "pyzbar"
    ms_per_mpix = 16.0

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except ImportError as e:  # pyzbar raises ImportError when libzbar is missing
            raise DecoderUnavailable(
                f"pyzbar cannot load ZBar ({e}); install the zbar library (apt install libzbar0)"
            ) from e
        self._pyzbar = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def read(self, gray: Image) -> Reading:
        codes = [
            Decoded(
                text=r.data.decode("utf-8", errors="replace"),
                polygon=tuple((int(p.x), int(p.y)) for p in r.polygon),
            )
            for r in self._pyzbar.decode(gray, symbols=self._symbols)
        ]
        return Reading(codes, [])

    def decode(self, gray: Image) -> list[Decoded]:
        return self.read(gray).codes


class ZxingDecoder:
    """zxing-cpp: faster than ZBar, reads light-on-dark codes and high versions too."""

    name = "zxing-cpp"
    ms_per_mpix = 2.0

    def __init__(self) -> None:
        try:
            import zxingcpp
        except ImportError as e:
            raise DecoderUnavailable(
                "the zxing-cpp decoder needs the optional dependency: pip install .[zxing]"
            ) from e
        self._zxing: Any = zxingcpp
        self._formats = zxingcpp.BarcodeFormat.QRCode

    def read(self, gray: Image) -> Reading:
        codes: list[Decoded] = []
        located: list[Polygon] = []
        for r in self._zxing.read_barcodes(gray, formats=self._formats, return_errors=True):
            pos = r.position
            corners = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
            polygon = tuple((int(p.x), int(p.y)) for p in corners)
            if r.valid:
                codes.append(Decoded(text=r.text, polygon=polygon))
            else:
                located.append(polygon)
        return Reading(codes, located)

    def decode(self, gray: Image) -> list[Decoded]:
        return self.read(gray).codes


DECODERS: dict[str, Callable[[], Decoder]] = {
    PyzbarDecoder.name: PyzbarDecoder,
    "zbar": PyzbarDecoder,
    ZxingDecoder.name: ZxingDecoder,
    "zxing": ZxingDecoder,
}


def make_decoder(name: str) -> Decoder:
    """Build a decoder by name: "pyzbar" (alias "zbar") or "zxing-cpp" (alias "zxing")."""
    try:
        factory = DECODERS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(DECODERS))
        raise ValueError(f"unknown QR decoder {name!r}; choose one of: {known}") from None
    return factory()


def available(name: str) -> bool:
    try:
        make_decoder(name)
    except DecoderUnavailable:
        return False
    return True
