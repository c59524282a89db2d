"""How big the door screen is, and the `--window WxH` option.

A kiosk often runs under a bare X server with no window manager, where OpenCV's
full-screen request is ignored (it asks the window manager, and there is none). So the
kiosk reads the X screen's size itself (libX11 through ctypes: no extra package, and
present wherever OpenCV's Qt window can open), renders at that size and places its
window at the top left corner. With several monitors that is the whole X screen.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re

logger = logging.getLogger(__name__)

Size = tuple[int, int]
FALLBACK: Size = (1280, 720)  # when the screen cannot be asked
_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")


def parse_size(text: str) -> Size:
    """'1280x800' -> (1280, 800); ValueError for anything else."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x800")
    width, height = int(match[1]), int(match[2])
    if not (160 <= width <= 16384 and 120 <= height <= 16384):
        raise ValueError(f"{text!r}: the window must be 160x120 to 16384x16384")
    return width, height


def x_screen_size(display: str | None = None) -> Size | None:
    """The size of the default screen of the X display ($DISPLAY), or None."""
    name = display if display is not None else os.environ.get("DISPLAY")
    if not name:
        return None
    path = ctypes.util.find_library("X11")
    if path is None:
        return None
    try:
        x11 = ctypes.CDLL(path)
    except OSError:
        return None
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
    x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(name.encode())
    if not handle:
        return None
    try:
        screen = x11.XDefaultScreen(handle)
        size = int(x11.XDisplayWidth(handle, screen)), int(x11.XDisplayHeight(handle, screen))
    finally:
        x11.XCloseDisplay(handle)
    return size if size[0] > 0 and size[1] > 0 else None


def door_screen_size(window: Size | None) -> Size:
    """The size to render at: the `--window` asked for, else the whole screen."""
    if window is not None:
        return window
    size = x_screen_size()
    if size is None:
        logger.warning("cannot read the screen size; drawing at %dx%d", *FALLBACK)
        return FALLBACK
    return size
