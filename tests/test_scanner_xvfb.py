"""The kiosk's window on a plain X server (Xvfb, no window manager) at 1280x800: the
real kiosk (`python -m scanner`, with its screen) against the real service.

Skipped when Xvfb is not installed (`make test` installs it: scripts/system-deps.sh
xvfb). With KIOSK_SCREENSHOTS set (`make screenshots`), the X screen with the kiosk's
verdict is saved as kiosk-fullscreen.png.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from aiohttp import web

from scanner.screen import GREEN, ONLINE, Display
from service.web.auth import Role
from tests.factory import Factory
from tests.kiosk_helpers import Shot, write_video
from tests.test_scanner_e2e import ROOT, free_port

SCREEN = (1280, 800)
TOOLS = ("Xvfb", "xwininfo", "xwd")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="Xvfb, xwininfo or xwd missing (apt-get install xvfb x11-utils x11-apps)",
)
SCREENSHOTS = os.environ.get("KIOSK_SCREENSHOTS")
WINDOW = Display.WINDOW
CHECKIN_TOKEN = "CHECKIN_KIOSK_TOKEN"


@pytest.fixture
def x_display() -> Iterator[str]:
    """A bare X server (no window manager) of 1280x800; its display name."""
    read, write = os.pipe()
    server = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write),
            "-screen",
            "0",
            "{}x{}x24".format(*SCREEN),
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def window_geometry(display: str) -> tuple[int, int, int, int] | None:
    """(width, height, x, y) of the kiosk's top-level window, if it is mapped."""
    tree = subprocess.run(
        ["xwininfo", "-root", "-children", "-display", display],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in tree.splitlines():
        if f'"{WINDOW}"' in line:
            size, _, place = line.split(")")[-1].split()[0].partition("+")
            width, height = map(int, size.split("x"))
            x, y = map(int, place.split("+"))
            return width, height, x, y
    return None


def grab(display: str) -> npt.NDArray[np.uint8]:
    """The whole X screen as BGR, from `xwd` (a 32-bit TrueColor dump)."""
    raw = subprocess.run(
        ["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True
    ).stdout
    header = np.frombuffer(raw[:100], ">u4")
    size, width, height = int(header[0]), int(header[4]), int(header[5])
    bits, line, colours = int(header[11]), int(header[12]), int(header[19])
    assert bits == 32, f"xwd gave {bits} bits a pixel"
    start = size + 12 * colours
    pixels = np.frombuffer(raw[start : start + line * height], np.uint8).reshape(height, line)
    bgrx = pixels[:, : width * 4].reshape(height, width, 4)
    if int(header[7]) == 1:  # MSBFirst: XRGB
        bgrx = bgrx[:, :, ::-1]
    return np.ascontiguousarray(bgrx[:, :, :3])


def share_of(image: npt.NDArray[np.uint8], rgb: tuple[int, int, int]) -> float:
    near = np.abs(image.astype(int) - np.array(rgb[::-1])).sum(axis=2) < 40
    return float(near.mean())


async def start_kiosk(
    display: str, server: str, token: str, video: Path, data: Path, *extra: str
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    log = os.open(data.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scanner",
            "--server",
            server,
            "--source",
            str(video),
            "--data-dir",
            str(data),
            "--verdict-seconds",
            "30",
            *extra,
            cwd=ROOT,
            env=env | {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb", CHECKIN_TOKEN: token},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
    finally:
        os.close(log)


def save(image: npt.NDArray[np.uint8], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


async def stop(kiosk: asyncio.subprocess.Process) -> None:
    if kiosk.returncode is None:
        kiosk.terminate()
        await asyncio.wait_for(kiosk.wait(), 20)


async def window_becomes(display: str, expected: tuple[int, ...]) -> None:
    """Wait for the window to be `expected` (width, height[, x, y]): OpenCV maps it at
    its default size first, and the kiosk's size follows a moment later."""
    seen: list[tuple[int, int, int, int] | None] = [None]

    def settled() -> bool:
        seen[0] = window_geometry(display)
        return seen[0] is not None and seen[0][: len(expected)] == expected

    try:
        await until(settled, 30.0)
    except TimeoutError:
        raise AssertionError(f"the window stayed {seen[0]}, not {expected}") from None


async def until(check: Any, limit_s: float = 60.0) -> Any:
    """Poll `check` (blocking: run in a thread) until it returns something truthy."""
    async with asyncio.timeout(limit_s):
        while True:
            found = await asyncio.to_thread(check)
            if found is not None and found is not False:
                return found
            await asyncio.sleep(0.2)


@pytest.fixture
async def service(aiohttp_server: Any, app: web.Application) -> AsyncIterator[str]:
    server = await aiohttp_server(app, port=free_port())
    yield str(server.make_url("")).rstrip("/")


async def test_the_kiosk_fills_a_bare_x_screen_and_shows_the_verdict_on_it(
    x_display: str, service: str, factory: Factory, tmp_path: Path
) -> None:
    site = await factory.site()
    gate = await factory.gate(site, name="Cổng chính — vào", direction="entrance")
    token = await factory.token(Role.KIOSK, gate_id=gate)
    _, payload = await factory.issued_pass(await factory.signing_key(), site)
    video = write_video(
        tmp_path / "door.avi", [Shot(None, 1.5), Shot(payload, 0.6), Shot(None, 40)], fps=10
    )
    kiosk = await start_kiosk(x_display, service, token, video, tmp_path / "k")
    try:
        # The whole screen, from its top left corner: not 400x300 in a corner.
        await window_becomes(x_display, (*SCREEN, 0, 0))

        def verdict_shown() -> npt.NDArray[np.uint8] | None:
            screen = grab(x_display)
            return screen if share_of(screen, GREEN) > 0.3 else None

        screen = await until(verdict_shown)
        assert screen.shape == (SCREEN[1], SCREEN[0], 3)
        bar = screen[: SCREEN[1] // 14]
        assert share_of(bar, ONLINE) > 0.005  # the status bar says online, not offline
        assert share_of(screen[-SCREEN[1] // 2 :], GREEN) > 0.6  # the verdict, big
        if SCREENSHOTS:
            save(screen, Path(SCREENSHOTS) / "kiosk-fullscreen.png")
    finally:
        await stop(kiosk)
    log = (tmp_path / "k.log").read_text()
    assert "offline mode" not in log  # the service was up: never "offline" at start
    assert "connecting" in log and "online" in log


async def test_a_window_of_the_size_asked_for_during_development(
    x_display: str, factory: Factory, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "blank.avi", [Shot(None, 40)], fps=10)
    unreachable = f"http://127.0.0.1:{free_port()}"
    kiosk = await start_kiosk(
        x_display, unreachable, "any-token", video, tmp_path / "k", "--window", "640x400"
    )
    log = tmp_path / "k.log"
    try:
        await window_becomes(x_display, (640, 400))
        # It says offline once its first connection attempt has failed, not before.
        await until(lambda: log.exists() and "offline mode" in log.read_text())
    finally:
        await stop(kiosk)
