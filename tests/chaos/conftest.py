"""Chaos tests: steady load from simulated kiosks while something breaks, then a count.

`make test` runs the short version (each fault once, a few seconds of load);
`make chaos` (``pytest tests/chaos --chaos-full``) runs more kiosks for longer, every
fault several times, and prints a summary line per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from service.platform.db import init_connection
from service.platform.migrations import migrate
from tests.chaos.cluster import PgCluster, free_port
from tests.chaos.gateway import Gateway
from tests.chaos.rig import FULL, SHORT, Rig, Scale, make_site

SUMMARY: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-full",
        action="store_true",
        default=False,
        help="chaos tests at full scale: more kiosks, longer load, every fault repeated",
    )


def chaos_scale(config: pytest.Config) -> Scale:
    # The option exists only when this conftest is loaded first (pytest tests/chaos).
    return FULL if config.getoption("--chaos-full", default=False) else SHORT


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.chaos)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    scale = chaos_scale(metafunc.config)
    if "chaos_round" in metafunc.fixturenames:
        metafunc.parametrize("chaos_round", range(1, scale.rounds + 1), ids=lambda r: f"round{r}")
    if "cutoff" in metafunc.fixturenames:
        # The service stopped cuts every kiosk off, as kill -9 does: only in the full run.
        ways = ["cable", "service_stopped"] if scale is FULL else ["cable"]
        metafunc.parametrize("cutoff", ways)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("chaos")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture
def scale(request: pytest.FixtureRequest) -> Scale:
    return chaos_scale(request.config)


@pytest.fixture
def summary() -> list[str]:
    """Lines for the end of the run (and printed at once)."""
    return SUMMARY


@pytest.fixture(scope="session")
def cluster() -> Iterator[PgCluster]:
    """A PostgreSQL of our own, with a migrated template database."""
    root = Path(tempfile.mkdtemp(prefix="cgw-chaos-pg-"))
    pg = PgCluster.create(root)
    pg.start()

    async def template() -> None:
        admin = await asyncpg.connect(pg.url())
        await admin.execute('CREATE DATABASE "chaos_tmpl"')
        await admin.close()
        conn = await asyncpg.connect(pg.url("chaos_tmpl"))
        await migrate(conn)
        await conn.close()

    try:
        asyncio.run(template())
        yield pg
    finally:
        if pg.running():
            pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


async def watchdog(request: pytest.FixtureRequest, after_s: float) -> None:
    """A test still running long after any of its waits should have given up is stuck
    somewhere without a timeout: show where every task is, then stop the run."""
    await asyncio.sleep(after_s)
    lines = [f"chaos: {request.node.nodeid} stuck after {after_s:.0f}s; tasks:"]
    for task in asyncio.all_tasks():
        lines.append(f"  {task!r}")
        lines += ["    " + line for f in task.get_stack() for line in traceback.format_stack(f, 1)]
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # past the test's captured output
            reporter.write_line("\n".join(lines))
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
async def rig(
    cluster: PgCluster, scale: Scale, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    name = f"chaos_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(cluster.url())
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "chaos_tmpl"')
    await admin.close()
    db_url = cluster.url(name)
    conn = await asyncpg.connect(db_url)
    try:
        await init_connection(conn)
        site = await make_site(conn, scale)
    finally:
        await conn.close()
    gateway = Gateway(db_url, free_port(), tmp_path / "service")
    dog = asyncio.create_task(watchdog(request, 4 * scale.limit_s))
    try:
        yield Rig(scale, cluster, db_url, site, gateway, tmp_path)
    finally:
        dog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dog
        await gateway.kill()
        if not cluster.running():  # a test that failed with the database down
            await cluster.start_async()
        admin = await asyncpg.connect(cluster.url())
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
