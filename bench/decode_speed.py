"""Decode speed at 720p on one core: idle frames (no code) and frames with a pass.

Frames are made by a seeded generator (an office doorway, a pass held up or none); the
figure is CPU time of the decoding thread (time.thread_time), so other work on a shared
machine does not count against it, with the wall clock and the load average beside it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import qrcode

from scanner.decode import DecodeConfig, DecodePipeline

FRAME_SIZE = (1280, 720)
PASS_ALPHABET = list("ABCDEFGHJKMNPQRSTVWXYZ23456789")


def synthetic_stream(
    n_frames: int, empty_every: int, rng: np.random.Generator
) -> list[tuple[npt.NDArray[np.uint8], bool]]:
    """720p BGR frames of an office doorway: most hold one pass held up, some none."""
    w, h = FRAME_SIZE
    frames = []
    for i in range(n_frames):
        frame = _background(w, h, rng)
        has_code = i % empty_every != empty_every - 1
        if has_code:
            payload = f"CHK1.{i:04d}." + "".join(rng.choice(PASS_ALPHABET, 86))
            _paste_code(frame, payload, rng)
        noise = rng.normal(0, 4, frame.shape)
        frame = np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        frames.append((frame, has_code))
    return frames


def _background(w: int, h: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    ramp = np.linspace(rng.uniform(60, 120), rng.uniform(130, 200), w, dtype=np.float32)
    frame = np.repeat(np.tile(ramp, (h, 1))[:, :, None], 3, axis=2).astype(np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        color = tuple(int(c) for c in rng.integers(20, 235, 3))
        corner = (x + int(rng.integers(20, 300)), y + int(rng.integers(20, 200)))
        cv2.rectangle(frame, (x, y), corner, color, -1)
    for _ in range(4):
        org = (int(rng.integers(0, w - 200)), int(rng.integers(30, h)))
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(frame, "VISITORS PLEASE CHECK IN", org, font, 0.8, (30, 30, 30), 2)
    return frame


def _paste_code(frame: npt.NDArray[np.uint8], payload: str, rng: np.random.Generator) -> None:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=4)
    qr.add_data(payload)
    qr.make(fit=True)
    modules = np.asarray(qr.get_matrix(), dtype=np.uint8)
    code = np.where(modules == 1, 0, 255).astype(np.uint8)
    side = int(rng.integers(220, 360))
    code = np.asarray(cv2.resize(code, (side, side), interpolation=cv2.INTER_NEAREST), np.uint8)
    h, w = frame.shape[:2]
    x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
    jitter = rng.uniform(-0.06, 0.06, (4, 2)) * side
    src = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
    dst = (src + jitter + [x, y]).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(code, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    mask = cv2.warpPerspective(np.full_like(code, 255), matrix, (w, h), flags=cv2.INTER_NEAREST)
    shade = rng.uniform(0.75, 1.0)
    frame[mask > 0] = (warped[mask > 0, None] * shade + 10).clip(0, 255).astype(np.uint8)


def throughput(config: DecodeConfig, quick: bool) -> dict[str, Any]:
    """Frames per second of CPU time on one core, idle frames and frames with a pass."""
    rng = np.random.default_rng(42)
    frames = synthetic_stream(20 if quick else 40, empty_every=5, rng=rng)
    pipeline = DecodePipeline(config)
    for frame, _ in frames[:10]:  # warm-up: allocator, caches
        pipeline.decode_frame(frame)
    pipeline.reset_stats()
    rounds = 1 if quick else 3
    cpu: dict[bool, list[float]] = {True: [], False: []}
    work: dict[bool, list[float]] = {True: [], False: []}
    read = 0
    load = os.getloadavg()[0]
    wall = time.perf_counter()
    for _ in range(rounds):
        for frame, has_code in frames:
            t0, w0 = time.thread_time(), pipeline.stats.work_ms
            codes = pipeline.decode_frame(frame)
            cpu[has_code].append(time.thread_time() - t0)
            work[has_code].append(pipeline.stats.work_ms - w0)
            read += bool(codes) and has_code
    wall = time.perf_counter() - wall
    n = rounds * len(frames)
    return {
        "frames": n,
        "read_rate": read / len(cpu[True]),
        "cpu_ms_code": 1000 * float(np.mean(cpu[True])),
        "cpu_ms_idle": 1000 * float(np.mean(cpu[False])),
        "fps_code": 1 / float(np.mean(cpu[True])),
        "fps_idle": 1 / float(np.mean(cpu[False])),
        "work_ms_code": float(np.mean(work[True])),
        "work_ms_idle": float(np.mean(work[False])),
        "wall_fps": n / wall,
        "load_average": load,
    }
