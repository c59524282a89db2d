"""The house rules: the import contracts (pyproject.toml), no private names taken across
packages, and a kiosk that runs without the server's packages."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("checkin_core", "service", "scanner")
SERVER_ONLY = (
    "asyncpg",
    "pgserver",
    "argon2",
    "aiohttp_session",
    "aiohttp_jinja2",
    "jinja2",
    "service",
)
# The scanner's own tests, which need no service (the end-to-end ones start one).
KIOSK_TESTS = [
    "tests/test_scanner_capture.py",
    "tests/test_scanner_debounce.py",
    "tests/test_scanner_kiosk.py",
    "tests/test_scanner_knowledge.py",
    "tests/test_scanner_outbox.py",
    "tests/test_scanner_screen.py",
    "tests/test_scanner_trust.py",
    "tests/test_decode.py",
]


# A file one reads in a sitting. Aside: SQL (schema and migrations), vendored libraries.
MAX_FILE_LINES = 420
SIZED = ("*.py", "*.js", "*.html", "*.css")
VENDORED = {"qrcode-generator.js", "noble-ed25519.js"}
# The scan's path, where each step reads top to bottom (docs/architecture.md).
SCAN_PATH = (
    "scanner/capture.py",
    "scanner/decode.py",
    "scanner/kiosk.py",
    "scanner/scan_life.py",
    "scanner/link.py",
    "service/checkin/kiosk_stream.py",
    "service/checkin/batcher.py",
    "service/checkin/batch.py",
    "service/checkin/state.py",
    "service/checkin/decision.py",
    "service/checkin/plan.py",
    "service/events/log.py",
    "service/events/fanout.py",
)
MAX_SCAN_PATH_FUNCTION_LINES = 60


def test_no_source_file_is_too_long_to_read_in_a_sitting() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for top in (*SOURCES, "bench")
        for pattern in SIZED
        for path in (ROOT / top).rglob(pattern)
        if path.name not in VENDORED
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_function_on_the_scan_path_is_long() -> None:
    long = {}
    for name in SCAN_PATH:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_SCAN_PATH_FUNCTION_LINES:
                    long[f"{name}:{node.name}"] = lines
    assert long == {}


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]["contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in done.stdout


def test_every_service_package_has_its_layer() -> None:
    """A package left out of the layers contract would be held to nothing."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    listed = {name.strip() for layer in layers for name in layer.split("|")}
    packages = {
        f"service.{p.name}" for p in (ROOT / "service").iterdir() if (p / "__init__.py").exists()
    }
    assert packages - listed == set()


def _package_of(module: str) -> str:
    """service.checkin.batch -> service.checkin; checkin_core.passes -> checkin_core."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "service" and len(parts) > 2 else parts[0]


def _private_imports() -> list[str]:
    found = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                    continue
                if _package_of(node.module) == _package_of(module):
                    continue
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.append(f"{module}: from {node.module} import {alias.name}")
    return found


def test_no_package_takes_another_s_private_names() -> None:
    assert _private_imports() == []


def test_the_kiosk_s_dependencies_leave_the_server_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = " ".join(project["dependencies"])
    for name in ("asyncpg", "pgserver", "argon2", "aiohttp-session", "aiohttp-jinja2"):
        assert name not in base, f"{name} is installed with the kiosk"
        assert any(name in dep for dep in project["optional-dependencies"]["server"])


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is not installed on a kiosk", name=name)
        return None
sys.meta_path.insert(0, Block())
"""


def test_the_scanner_runs_without_the_server_s_packages(tmp_path: Path) -> None:
    """The scanner's tests, in a Python where the server's packages cannot be imported
    (no conftest: it builds the service)."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(blocked=SERVER_ONLY))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    probe = subprocess.run(
        [sys.executable, "-c", "import scanner.__main__, scanner.kiosk; import asyncpg"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "asyncpg is not installed on a kiosk" in probe.stderr, probe.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--noconftest",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::pytest.PytestUnknownMarkWarning",
            *KIOSK_TESTS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


RENDER_FROM_WHEEL = """
from aiohttp import web
import service.web.pages as pages
env = pages.setup_pages(web.Application())
print(pages.__file__)
print(env.get_template("message.html").render(
    lang="vi", title="<b>", message="m", back_url="/", back="b"))
"""


def test_a_wheel_install_migrates_a_fresh_database(tmp_path: Path, empty_db_url: str) -> None:
    """The schema and migrations travel inside the package (importlib.resources)."""
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("checkin_gateway-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": empty_db_url}
    run = tmp_path / "elsewhere"  # not the source tree: only the wheel can be imported
    run.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "import service.platform.migrations as m; print(m.SCHEMA_FILE)"],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site)), where.stdout
    # The pages' templates travel too: the package loader finds them in the wheel.
    rendered = subprocess.run(
        [sys.executable, "-c", RENDER_FROM_WHEEL],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.startswith(str(site)) and "&lt;b&gt;" in rendered.stdout
    done = subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "schema.sql" in done.stdout + done.stderr
