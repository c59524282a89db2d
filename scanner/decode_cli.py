"""`checkin-scanner decode FILE_OR_DIR...`: why can't my kiosk read this pass?

Runs exactly the kiosk's default pipeline (scanner.decode.default_pipeline) on images and
prints each code, its corners and the view that read it, and the work it took.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from scanner.capture import IMAGE_SUFFIXES
from scanner.decode import DecodePipeline, DecoderUnavailable, config_for, default_pipeline


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="checkin-scanner decode",
        description="Decode QR codes in images with the kiosk's default configuration.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE_OR_DIR")
    parser.add_argument("--json", action="store_true", help="one JSON line per image")
    parser.add_argument(
        "--decoder",
        default="auto",
        choices=["auto", "pyzbar", "zbar", "zxing", "zxing-cpp"],
        help="as the kiosk's --decoder (default: %(default)s, the kiosk's default)",
    )
    return parser


def images(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
        else:
            yield path


def decode_file(pipeline: DecodePipeline, path: Path) -> dict[str, Any]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        return {"path": str(path), "error": "not a readable image"}
    before = pipeline.stats.work_ms
    codes = pipeline(np.asarray(image, np.uint8))
    return {
        "path": str(path),
        "size": [int(image.shape[1]), int(image.shape[0])],
        "codes": [
            {"text": c.text, "polygon": [list(p) for p in c.polygon], "view": c.view} for c in codes
        ],
        "work_ms": round(pipeline.stats.work_ms - before, 1),
    }


def print_result(result: dict[str, Any], out: TextIO) -> None:
    if "error" in result:
        print(f"{result['path']}: {result['error']}", file=out)
        return
    w, h = result["size"]
    codes = result["codes"]
    print(
        f"{result['path']} ({w}x{h}): {len(codes)} code(s), work {result['work_ms']} ms", file=out
    )
    for c in codes:
        corners = " ".join(f"{x},{y}" for x, y in c["polygon"])
        print(f"  {c['text']!r}  at {corners}  read by {c['view']}", file=out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    args = build_parser().parse_args(argv)
    try:
        pipeline = (
            default_pipeline()
            if args.decoder == "auto"
            else DecodePipeline(config_for(args.decoder))
        )
    except DecoderUnavailable as e:
        print(f"checkin-scanner decode: {e}", file=sys.stderr)
        return 2
    failed = False
    for path in images(args.paths):
        result = decode_file(pipeline, path)
        failed = failed or "error" in result
        if args.json:
            print(json.dumps(result, ensure_ascii=False), file=out)
        else:
            print_result(result, out)
    return 1 if failed else 0
