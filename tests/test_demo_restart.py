"""`serve --demo` started again and again, as `make run` is: the real service, twice or
more on one data folder and database. Its tokens and logins stay the same (a kiosk left
running keeps working), `--reset-demo` makes new ones, and it says what it changed."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from service.cli.demo import CREDENTIALS_FILE
from service.identity.accounts import login_state
from tests.cli_helpers import Served, env_for, http_status, run_cli, serving
from tests.declaring import declaration

HEARTBEAT = "/api/v1/kiosk/heartbeat"
# What the embedded server and its library said at INFO, and the warning they raise
# without XDG_RUNTIME_DIR: none of it may reach the terminal (the service's own INFO may).
EMBEDDED_NOISE = re.compile(r"pgserver|initdb|pg_ctl|RuntimeDirWarning|XDG_RUNTIME_DIR")


def saved(data_dir: Path) -> dict[str, dict[str, str]]:
    path = data_dir / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def login_password(banner: str, username: str) -> str:
    found = re.search(rf"^  {username} +/ (\S+)", banner, re.M)
    assert found, banner
    return found.group(1)


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A data folder outside pytest's own: run as root, pgserver runs PostgreSQL as the
    `pgserver` user, and any pytest starting meanwhile makes /tmp/pytest-of-root 0700
    again, which locks that user out of its files (seen: initdb failed halfway)."""
    with tempfile.TemporaryDirectory(prefix="cgw-demo-") as folder:
        yield Path(folder)


def test_make_run_twice_on_the_embedded_database_keeps_tokens_and_is_quiet(
    embedded_data_dir: Path,
) -> None:
    tmp_path = embedded_data_dir
    env = env_for(None, tmp_path)
    with serving(env, "--demo") as first:
        assert http_status(first.base + HEARTBEAT, first.tokens["kiosk-entrance"], b"{}") == 204
    with serving(env, "--demo") as second:
        # The kiosk's token of the first run is still good: a kiosk left running goes on.
        assert http_status(second.base + HEARTBEAT, first.tokens["kiosk-entrance"], b"{}") == 204
    assert second.tokens == first.tokens
    assert login_password(second.banner, "guard") == login_password(first.banner, "guard")
    assert saved(tmp_path)["tokens"] == first.tokens
    assert "Note:" not in second.banner  # nothing changed, nothing to say
    for run in (first, second):
        # Only warnings and errors of the embedded server, none here; no RuntimeDirWarning.
        assert not EMBEDDED_NOISE.search(run.stderr), run.stderr
        assert all(json.loads(line) for line in run.stderr.splitlines())  # JSON lines only
        assert run.banner.lstrip().startswith("================ checkin-gateway demo")
    listed = run_cli("token", "list", env=env)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    rows = {line.split()[-1]: line for line in listed.stdout.splitlines()[1:]}
    assert sorted(rows) == sorted(f"demo:{purpose}" for purpose in first.tokens)
    # Used in both runs (written when each stopped), the others never.
    assert re.match(
        r"\d+ +kiosk +gate \d+ +\S+ \S+ +\d{4}-\d\d-\d\d \d\d:\d\dZ ", rows["demo:kiosk-entrance"]
    ), rows
    assert rows["demo:kiosk-exit"].split()[-2] == "never"


async def test_reset_demo_revokes_and_a_lost_file_is_said(db_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, tmp_path)
    with serving(env, "--demo") as first:
        pass
    with serving(env, "--demo", "--reset-demo") as reset:
        assert "Note: --reset-demo" in reset.banner
        for purpose, token in first.tokens.items():
            assert http_status(reset.base + "/api/v1/sites", token) == 401, purpose
        assert http_status(reset.base + "/api/v1/sites", reset.tokens["admin"]) == 200
    assert not set(first.tokens.values()) & set(reset.tokens.values())
    assert saved(tmp_path)["tokens"] == reset.tokens
    conn = await asyncpg.connect(db_url)
    try:
        guard = login_password(reset.banner, "guard")
        assert guard != login_password(first.banner, "guard")
        assert await login_state(conn, "guard", guard) == "ok"
    finally:
        await conn.close()

    (tmp_path / CREDENTIALS_FILE).unlink()
    with serving(env, "--demo") as lost:
        assert f"No saved demo logins in {tmp_path / CREDENTIALS_FILE}" in lost.banner
        assert http_status(lost.base + "/api/v1/sites", reset.tokens["admin"]) == 401
        assert http_status(lost.base + "/api/v1/sites", lost.tokens["admin"]) == 200
    assert saved(tmp_path)["tokens"] == lost.tokens
    listed = run_cli("token", "list", "--all", env=env)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert listed.stdout.count("demo:kiosk-exit") == 3  # the three generations
    assert sum(1 for line in listed.stdout.splitlines() if line.endswith("demo:guard")) == 3


def readme_block(containing: str) -> str:
    """The README's one shell block that holds `containing`."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if containing in b]
    assert len(blocks) == 1, blocks
    return blocks[0]


def demo_site_id(served: Served) -> int:
    site = re.search(r"Demo site id: (\d+)", served.banner)
    assert site, served.banner
    return int(site.group(1))


def run_readme(block: str, served: Served, cwd: Path) -> str:
    """Run a README block as a person would paste it, against this service."""
    script = (
        block.replace("http://127.0.0.1:8080", served.base)
        .replace("KIOSK_ENTRANCE_TOKEN", served.tokens["kiosk-entrance"])
        .replace('"site_id": 1,', f'"site_id": {demo_site_id(served)},')
        .replace(".venv/bin/python", sys.executable)
    )
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readme_scan_without_a_camera_works_across_a_restart(
    db_url: str, tmp_path: Path
) -> None:
    env = env_for(db_url, tmp_path)
    scan_block = readme_block("/api/v1/scans")
    with serving(env, "--demo") as first:
        run_readme(readme_block("/api/v1/declarations"), first, tmp_path)  # once
        entered = json.loads(run_readme(scan_block, first, tmp_path))
    assert (entered["decision"], entered["reason"]) == ("allow", "welcome")
    with serving(env, "--demo") as second:
        again = json.loads(run_readme(scan_block, second, tmp_path))
        # A pass's PNG (what its page downloads), read back with the README's decoder line.
        body = json.dumps(declaration(demo_site_id(second), phone="0912 000 111")).encode()
        filed = urllib.request.Request(
            f"{second.base}/api/v1/declarations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(filed, timeout=10) as resp:
            issued = json.load(resp)["pass"]
        with urllib.request.urlopen(second.base + issued["qr_png_url"], timeout=10) as png:
            (tmp_path / "pass.png").write_bytes(png.read())
        decoded = run_readme(readme_block("pyzbar"), second, tmp_path)
    assert second.tokens == first.tokens
    assert (again["decision"], again["reason"]) == ("deny", "already_inside")
    assert decoded == issued["payload"] + "\n"
