"""Synthetic camera frames for the decode and kiosk tests: QR codes warped into scenes."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt
import qrcode

Frame = npt.NDArray[np.uint8]


def qr_image(text: str, module: int) -> Frame:
    """The code as a grey image, `module` pixels per module, with its quiet zone."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    modules = np.asarray(qr.get_matrix(), dtype=np.uint8)
    image = np.where(modules == 1, 0, 255).astype(np.uint8)
    return np.kron(image, np.ones((module, module), np.uint8))


def place(frame: Frame, code: Frame, quad: Sequence[tuple[float, float]]) -> Frame:
    """Warp ``code`` onto ``quad`` (clockwise from top-left) of ``frame``."""
    side = code.shape[0]
    src = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, np.array(quad, np.float32))
    h, w = frame.shape[:2]
    warped = cv2.warpPerspective(code, matrix, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full_like(code, 255), matrix, (w, h)) > 127
    out = frame.copy()
    out[mask] = warped[mask]
    return out
