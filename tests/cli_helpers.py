"""Running `checkin-gateway` as a person would: admin commands, and the service itself."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = re.compile(r"cgw_[A-Za-z0-9_-]{43}")
BANNER_RULE = "======================================================"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def env_for(db_url: str | None, data_dir: Path) -> dict[str, str]:
    """The environment of a person's shell: no log level asked for, this database (None:
    the embedded one in data_dir) and data folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CHECKIN_LOG_LEVEL")}
    if db_url:
        env["DATABASE_URL"] = db_url
    env["CHECKIN_DATA_DIR"] = str(data_dir)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"service exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} not ready within {seconds}s")


@dataclass
class Served:
    """What a `serve` run printed: the banner (stdout) while it runs, stderr once stopped."""

    base: str
    banner: str = ""
    stderr: str = ""
    tokens: dict[str, str] = field(default_factory=dict)  # the demo's, by purpose


@contextlib.contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[Served]:
    """`checkin-gateway serve ARGS` until ready; stopped with Ctrl-C (SIGINT) on exit,
    which must end it cleanly."""
    port = free_port()
    served = Served(base=f"http://127.0.0.1:{port}")
    with subprocess.Popen(
        [sys.executable, "-m", "service", "serve", *args],
        env=env | {"CHECKIN_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:  # closes the pipes and waits, however this ends
        try:
            wait_ready(f"{served.base}/readyz", proc, 60)
            if "--demo" in args:  # the banner is written whole before the service listens
                served.banner, served.tokens = _read_banner(proc)
            yield served
            proc.send_signal(signal.SIGINT)
            _, served.stderr = proc.communicate(timeout=30)
            assert proc.returncode == 0, served.stderr
        finally:
            if proc.poll() is None:
                proc.kill()


def _read_banner(proc: subprocess.Popen[str]) -> tuple[str, dict[str, str]]:
    assert proc.stdout is not None
    lines: list[str] = []
    while not (lines and lines[-1].rstrip() == BANNER_RULE):
        line = proc.stdout.readline()
        assert line, "the service stopped before its banner ended: " + "".join(lines)
        lines.append(line)
    banner = "".join(lines)
    tokens = {}
    for purpose in ("admin", "guard", "auditor", "kiosk-entrance", "kiosk-exit"):
        found = re.search(rf"^  {purpose} +({TOKEN.pattern})$", banner, re.M)
        assert found, banner
        tokens[purpose] = found.group(1)
    return banner, tokens


def http_status(url: str, token: str, body: bytes | None = None) -> int:
    """The status of a request with this bearer token (POST when there is a body)."""
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
