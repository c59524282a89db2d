"""`checkin-scanner`: the kiosk at a door."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from scanner import decode_cli
from scanner.capture import CAMERA_RESOLUTION, SourceSpec
from scanner.debounce import DEFAULT_COOLDOWN_S
from scanner.decode import DecoderUnavailable, config_for
from scanner.kiosk import Kiosk
from scanner.kiosk_config import KioskConfig
from scanner.screen import FontMissing, find_font
from scanner.verdict import OFFLINE_POLICIES
from scanner.window import Size, parse_size

TOKEN_ENV = "CHECKIN_KIOSK_TOKEN"


def positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def window_size(text: str) -> Size:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def camera_resolution(text: str) -> tuple[int, int] | None:
    if text.strip().lower() == "native":
        return None
    return window_size(text)


def _has_display() -> bool:
    # OpenCV's Qt aborts the whole process when it finds no display: check first.
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="checkin-scanner",
        description=(
            "The check-in kiosk: reads QR passes from a camera, checks them, asks the "
            "service and shows the verdict (MỜI VÀO, TẠM BIỆT or TỪ CHỐI). The gate comes from "
            "the kiosk token. Scans are kept in a local outbox until the service has them."
        ),
        epilog=(
            "examples:\n"
            "  checkin-scanner --server http://10.0.0.5:8080 --token $TOKEN --source 0\n"
            "  checkin-scanner --server http://10.0.0.5:8080 --source rtsp://cam/1 --headless "
            "--on-allow 'gpio-pulse 17'\n"
            "  checkin-scanner decode pass.png photos/ --json   (what the kiosk reads, and how)\n"
            "keys on the screen: q or Esc quits. Ctrl-C or SIGTERM stops cleanly."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--server", required=True, help="service base URL, e.g. http://10.0.0.5:8080"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"kiosk token (bound to one gate); default: ${TOKEN_ENV}, which keeps it "
        "out of the process list",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="camera index (0), video file, RTSP/HTTP stream URL, or a folder of images",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no window: print one JSON line per verdict on stdout (event_id, decision, "
        "reason, message_vi, message_en, name, offline, latency_ms, frame, ...)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".kiosk-data"),
        help="folder for the outbox, the trust list cache and the gate cache "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--decoder",
        default="auto",
        choices=["auto", "pyzbar", "zbar", "zxing", "zxing-cpp"],
        help="QR decoders: auto (the default) is zxing-cpp first and ZBar as a second "
        "opinion when the zxing extra is installed, else ZBar alone",
    )
    parser.add_argument(
        "--cooldown",
        type=non_negative,
        default=DEFAULT_COOLDOWN_S,
        help="seconds before the same code, shown again, counts as a new scan; a code that "
        "stays in view is one scan (default: %(default)s)",
    )
    parser.add_argument(
        "--on-allow",
        metavar="CMD",
        help="command to run when the door should open (no shell; gets CHECKIN_EVENT_ID, "
        "CHECKIN_DECISION, CHECKIN_REASON, CHECKIN_OFFLINE in its environment)",
    )
    parser.add_argument(
        "--on-deny", metavar="CMD", help="command to run on a denial (as --on-allow)"
    )
    parser.add_argument(
        "--offline-policy",
        choices=OFFLINE_POLICIES,
        help="when the service cannot be reached: deny everyone (fail secure) or allow passes "
        "with a valid signature for this site; default: the gate's own setting",
    )
    parser.add_argument(
        "--loop",
        action="store_true",
        help="replay a video file or folder forever instead of stopping at its end",
    )
    parser.add_argument(
        "--fps",
        type=positive,
        help="frames per second to read from a file or folder (default: the file's own "
        "rate; 2 for a folder); live sources are read as they deliver",
    )
    parser.add_argument(
        "--resolution",
        type=camera_resolution,
        default=CAMERA_RESOLUTION,
        metavar="WxH",
        help="frame size to ask a camera for, or 'native' for the camera's own "
        "(default: 1280x720; the heartbeat reports what it delivers)",
    )
    parser.add_argument(
        "--ack-timeout",
        type=positive,
        default=1.5,
        help="seconds to wait for the service's answer before the offline policy decides "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--heartbeat",
        type=positive,
        default=5.0,
        help="seconds between heartbeats (default: %(default)s)",
    )
    parser.add_argument(
        "--trust-refresh",
        type=positive,
        default=300.0,
        help="seconds between trust list refreshes (default: %(default)s)",
    )
    parser.add_argument(
        "--verdict-seconds",
        type=positive,
        default=3.0,
        help="how long a verdict stays on screen (default: %(default)s)",
    )
    parser.add_argument(
        "--font", help="TrueType font with Vietnamese diacritics (default: DejaVu Sans Bold)"
    )
    screen = parser.add_mutually_exclusive_group()
    screen.add_argument(
        "--fullscreen",
        dest="window",
        action="store_const",
        const=None,
        help="fill the whole screen, with or without a window manager (the default)",
    )
    screen.add_argument(
        "--window",
        type=window_size,
        metavar="WxH",
        help="a window of this size instead, e.g. 960x600 (for development)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logs go to stderr",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["decode"]:
        return decode_cli.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.token:
        parser.error(f"--token is required (or set {TOKEN_ENV})")
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    source = SourceSpec.parse(args.source)
    if source.kind == "file" and not Path(str(source.target)).is_file():
        parser.error(f"--source {args.source!r} is not a camera index, URL, folder or file")
    if not args.headless and sys.platform == "linux" and not _has_display():
        parser.exit(2, "checkin-scanner: no display (DISPLAY is not set); use --headless\n")
    try:
        config_for(args.decoder)
        if not args.headless:
            find_font(args.font)
    except (DecoderUnavailable, FontMissing, ValueError) as e:
        parser.exit(2, f"checkin-scanner: {e}\n")
    config = KioskConfig(
        server=args.server,
        token=args.token,
        source=source,
        data_dir=args.data_dir,
        headless=args.headless,
        decoder=args.decoder,
        cooldown=args.cooldown,
        on_allow=args.on_allow,
        on_deny=args.on_deny,
        offline_policy=args.offline_policy,
        loop=args.loop,
        fps=args.fps,
        resolution=args.resolution,
        ack_timeout=args.ack_timeout,
        heartbeat_s=args.heartbeat,
        trust_refresh_s=args.trust_refresh,
        verdict_seconds=args.verdict_seconds,
        font=args.font,
        window=args.window,
    )

    async def run() -> int:
        return await Kiosk(config).run()

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
