"""A seeded phone-screen benchmark: rendered passes shown on simulated phone screens.

Each frame is made from a seed, never stored: a pass rendered on a phone screen (light,
or dark mode with light modules on a dark screen), its pixels drawn as RGB subpixel
stripes with the dark grid between them (screen door), held at an angle (perspective)
in front of a 1280x720 or 640x480 camera, small, medium or large in the picture, with a
reflection of the room on the glass, sometimes a glare spot or motion blur, sensor
noise and JPEG. Conditions cycle by frame number, so each is seen in every combination.

    .venv/bin/python -m bench.phone_screens [--frames 100] [--decoder auto]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import qrcode

from scanner.decode import DecodeConfig, DecodePipeline, config_for

Frame = npt.NDArray[np.uint8]
SIZES = {"small": (0.2, 0.25), "medium": (0.25, 0.40), "large": (0.55, 0.75)}  # of height
RESOLUTIONS = ((1280, 720), (640, 480))
SUBPIXEL_BLEED = 0.4
GRID_LEVEL = 0.55
LENS_PSF = 0.6  # camera pixels (sigma)
ALPHABET = list("ABCDEFGHJKMNPQRSTVWXYZ23456789")


@dataclass(frozen=True)
class Shot:
    text: str
    dark: bool
    size: str
    resolution: tuple[int, int]
    motion: bool
    glare: bool

    def conditions(self) -> list[str]:
        out = ["dark mode" if self.dark else "light mode", self.size, f"{self.resolution[1]}p"]
        out += ["motion blur"] * self.motion + ["glare"] * self.glare
        return out


def shots(n: int, seed: int = 20) -> list[Shot]:
    rng = np.random.default_rng(seed)
    return [
        Shot(
            text="CHK1." + "".join(rng.choice(ALPHABET, 60 + 10 * (i % 4))),
            dark=i % 4 == 1,
            size=tuple(SIZES)[i % 3],
            resolution=RESOLUTIONS[(i // 2) % 2],
            motion=i % 5 == 2,
            glare=i % 7 == 3,
        )
        for i in range(n)
    ]


def screen_image(text: str, dark: bool, module: int) -> Frame:
    """The phone's screen in RGB, one array pixel per screen pixel."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    modules = np.asarray(qr.get_matrix(), dtype=bool)
    ink, paper, screen = (225, 28, 18) if dark else (20, 250, 245)
    code = np.where(modules, ink, paper).astype(np.uint8)
    code = np.kron(code, np.ones((module, module), np.uint8))
    side = code.shape[0]
    h, w = int(side * 1.9), int(side * 1.15)
    out = np.full((h, w), screen, np.uint8)
    top, left = int(side * 0.45), (w - side) // 2
    out[top : top + side, left : left + side] = code
    return np.repeat(out[:, :, None], 3, axis=2)


def subpixels(rgb: Frame) -> Frame:
    """Each screen pixel as 3x3 camera-side texels: R, G, B stripes (each bleeding a
    little into the others) and a darker row of grid; exposed as a camera would."""
    h, w = rgb.shape[:2]
    lit = rgb.astype(np.float32)
    out = np.zeros((h * 3, w * 3, 3), np.float32)
    for c in range(3):  # BGR order: stripe c carries channel 2 - c (R first)
        stripe = lit * SUBPIXEL_BLEED
        stripe[:, :, 2 - c] = lit[:, :, 2 - c]
        out[0::3, c::3] = stripe
        out[1::3, c::3] = stripe
    out[2::3] *= GRID_LEVEL
    exposure = 255 / ((1 + 2 * SUBPIXEL_BLEED) / 3 * (2 + GRID_LEVEL) / 3 * 255) * 0.9
    return np.clip(out * exposure, 0, 255).astype(np.uint8)


def render(shot: Shot, rng: np.random.Generator) -> Frame:
    w, h = shot.resolution
    frame = _room(w, h, rng)
    texture = subpixels(screen_image(shot.text, shot.dark, module=int(rng.integers(5, 9))))
    th, tw = texture.shape[:2]
    lo, hi = SIZES[shot.size]
    code_side = rng.uniform(lo, hi) * h  # the code's side in the picture
    scale = code_side / (tw / 1.15)
    ph, pw = th * scale, tw * scale
    cx = rng.uniform(pw / 2, max(pw / 2 + 1, w - pw / 2))
    cy = h / 2 + rng.uniform(-0.1, 0.1) * h
    angle = math.radians(rng.uniform(-20, 20))
    quad = _tilted(cx, cy, pw, ph, angle, rng)
    # The lens: a point spreads over about LENS_PSF camera pixels before the sensor
    # samples it (without it, the warp would alias the texels as no lens does).
    texture = np.asarray(cv2.GaussianBlur(texture, (0, 0), LENS_PSF / scale), np.uint8)
    src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, quad)
    warped = cv2.warpPerspective(texture, matrix, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), matrix, (w, h)) > 127
    screen = warped.astype(np.float32) * rng.uniform(0.75, 1.0)
    screen += _reflection(w, h, rng)
    if shot.glare:
        screen += _glare(w, h, quad, rng)
    out = frame.astype(np.float32)
    out[mask] = screen[mask]
    if shot.motion:
        out = _motion(out, rng)
    out += rng.normal(0, 3, out.shape)
    jpeg = np.clip(out, 0, 255).astype(np.uint8)
    _, buf = cv2.imencode(".jpg", jpeg, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 92))])
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)


def _room(w: int, h: int, rng: np.random.Generator) -> Frame:
    frame = np.full((h, w, 3), rng.integers(90, 170), np.uint8)
    for _ in range(10):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        color = tuple(int(c) for c in rng.integers(20, 235, 3))
        cv2.rectangle(frame, (x, y), (x + int(rng.integers(20, w // 4)), y + 80), color, -1)
    return frame


def _tilted(
    cx: float, cy: float, pw: float, ph: float, angle: float, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    corners = np.array([[-pw, -ph], [pw, -ph], [pw, ph], [-pw, ph]], np.float32) / 2
    corners *= 1 + rng.uniform(-0.08, 0.08, (4, 1))  # the phone tilted towards the camera
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.asarray(corners @ rot.T + (cx, cy), np.float32)


def _reflection(w: int, h: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    # The room on the glass: a faint, soft copy of bright shapes.
    layer = np.zeros((h, w), np.float32)
    for _ in range(4):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(layer, (x, y), (x + w // 5, y + h // 3), float(rng.uniform(15, 40)), -1)
    return np.asarray(cv2.GaussianBlur(layer, (0, 0), 25), np.float32)[:, :, None]


def _glare(
    w: int, h: int, quad: npt.NDArray[np.float32], rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    layer = np.zeros((h, w), np.float32)
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    centre = (int(rng.uniform(x0, x1)), int(rng.uniform(y0, y1)))
    axes = (int((x1 - x0) * 0.12) + 2, int((y1 - y0) * 0.06) + 2)
    cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 160.0, -1)
    return np.asarray(cv2.GaussianBlur(layer, (0, 0), max(axes) / 2), np.float32)[:, :, None]


def _motion(image: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    length = int(rng.integers(5, 10)) * image.shape[0] // 720 + 2
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return np.asarray(cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6)), np.float32)


def run(config: DecodeConfig, frames: int = 100, seed: int = 20) -> dict[str, Any]:
    pipeline = DecodePipeline(config)
    rng = np.random.default_rng(seed)
    per: dict[str, list[bool]] = {}
    for shot in shots(frames, seed):
        read = shot.text in {c.text for c in pipeline(render(shot, rng))}
        for condition in ["all", *shot.conditions()]:
            per.setdefault(condition, []).append(read)
    return {
        "frames": frames,
        "seed": seed,
        "conditions": {c: {"read": sum(v), "frames": len(v)} for c, v in sorted(per.items())},
        "work_ms_per_frame": pipeline.stats.work_ms / frames,
    }


def count_table(first: str, names: list[str], rows: dict[str, list[tuple[int, int]]]) -> list[str]:
    """A markdown table of found/total (percent), a column per name."""
    lines = ["| " + " | ".join([first, *names]) + " |", "|---|" + "---:|" * len(names)]
    for label, counts in rows.items():
        cells = [f"{n}/{total} ({100 * n / max(1, total):.0f} %)" for n, total in counts]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def to_markdown(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    first = results[names[0]]
    rows = {
        condition: [
            (
                results[n]["conditions"][condition]["read"],
                results[n]["conditions"][condition]["frames"],
            )
            for n in names
        ]
        for condition in first["conditions"]
    }
    head = (
        f"Phone screens: {first['frames']} seeded frames (bench/phone_screens.py, seed "
        f"{first['seed']}); passes read / frames"
    )
    return "\n".join([head, "", *count_table("condition", names, rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phone_screens", description=__doc__)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--decoder", default="auto")
    parser.add_argument("--save", help="write the frames as PNG into this folder, to look at")
    args = parser.parse_args(argv)
    if args.save:
        rng = np.random.default_rng(args.seed)
        for i, shot in enumerate(shots(args.frames, args.seed)):
            cv2.imwrite(f"{args.save}/{i:03d}.png", render(shot, rng))
    result = run(config_for(args.decoder), args.frames, args.seed)
    print(to_markdown({args.decoder: result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
