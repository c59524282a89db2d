"""A highly available PostgreSQL the HA chaos test owns: one etcd and two PostgreSQL 15
nodes under Patroni, on ports of their own, in a temp dir, torn down with the test.

Patroni runs from its own venv (.venv-ha, made by `make chaos-ha` with Debian's Python:
PostgreSQL refuses root, so Patroni runs as the `postgres` user, who cannot read a
Python kept under /root). etcd is Debian's `etcd-server`; PostgreSQL is the machine's 15.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.ha_config import etcd_args, patroni_config, patroni_yaml
from tests.cli_helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
PATRONI = Path(os.environ.get("PATRONI_BIN", ROOT / ".venv-ha" / "bin" / "patroni"))
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def missing() -> str | None:
    """Why the cluster cannot start here, or None."""
    for what, path in (("patroni", PATRONI), ("etcd", Path(ETCD)), ("postgres", PG_BIN)):
        if not path.exists():
            return f"{what} not found at {path}: run `make chaos-ha`"
    user = "postgres" if os.geteuid() == 0 else None
    try:  # as root Patroni runs as postgres, who must reach the checkout and its venv
        argv = [str(PATRONI), "--version"]
        subprocess.run(argv, user=user, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"{PATRONI} does not run as {user or 'this user'} ({e}): is the checkout readable?"
    return None


@dataclass
class Node:
    name: str
    pg_port: int
    api_port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def api(self, path: str) -> tuple[int, dict[str, Any]]:
        """A GET on the node's Patroni REST API: (status, JSON body); 0 if it is down."""
        url = f"http://127.0.0.1:{self.api_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, {}
        except (OSError, ValueError):
            return 0, {}


@dataclass
class HaCluster:
    root: Path
    etcd_port: int
    nodes: list[Node]
    user: str | None
    etcd: subprocess.Popen[bytes] | None = None
    logs: list[Any] = field(default_factory=list)

    @classmethod
    def create(cls) -> HaCluster:
        root = Path(tempfile.mkdtemp(prefix="cgw-ha-"))
        root.chmod(0o755)
        user = "postgres" if os.geteuid() == 0 else None  # PostgreSQL refuses root
        nodes = [Node(f"pg{i}", free_port(), free_port(), root / f"pg{i}") for i in range(2)]
        return cls(root, free_port(), nodes, user)

    def url(self, database: str = "postgres") -> str:
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in self.nodes)
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def node_url(self, node: Node, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{node.pg_port}/{database}"

    # --- lifetime -----------------------------------------------------------------
    def start(self, limit_s: float = 120.0) -> None:
        peer = free_port()
        argv = [ETCD, *etcd_args(self.root / "etcd", self.etcd_port, peer)]
        self.etcd = self._spawn("etcd", argv)
        self._until(self._etcd_healthy, limit_s, "etcd healthy")
        for node in self.nodes:
            node.dir.mkdir(mode=0o700)
            config = node.dir / "patroni.yml"
            ports = (node.pg_port, node.api_port)
            settings = patroni_config(node.name, *ports, node.dir, self.etcd_port, PG_BIN)
            config.write_text(patroni_yaml(settings))
            if self.user is not None:
                shutil.chown(node.dir, self.user, self.user)
                shutil.chown(config, self.user, self.user)
        self.start_node(self.nodes[0])
        self._until(lambda: self.nodes[0].api("/primary")[0] == 200, limit_s, "first primary")
        self.start_node(self.nodes[1])
        self.wait_synchronous(limit_s)

    def start_node(self, node: Node) -> None:
        node.proc = self._spawn(
            node.name, [str(PATRONI), str(node.dir / "patroni.yml")], user=self.user
        )

    def stop(self) -> None:
        """Patroni stops its PostgreSQL on SIGTERM; anything left is killed by pid."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(30)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
            pid = node.postmaster_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.etcd is not None and self.etcd.poll() is None:
            self.etcd.terminate()
            self.etcd.wait(30)
        for log in self.logs:
            log.close()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # --- faults -------------------------------------------------------------------
    def primary(self) -> Node | None:
        for node in self.nodes:
            if node.api("/primary")[0] == 200:
                return node
        return None

    def standby(self) -> Node:
        primary = self.primary()
        return next(n for n in self.nodes if n is not primary)

    def kill_postmaster(self, node: Node) -> int:
        """SIGKILL the node's postmaster (Patroni itself lives on)."""
        pid = node.postmaster_pid()
        assert pid is not None, f"{node.name} has no postmaster"
        os.kill(pid, signal.SIGKILL)
        return pid

    def members(self) -> list[dict[str, Any]]:
        for node in self.nodes:
            status, body = node.api("/cluster")
            if status == 200:
                return list(body.get("members", []))
        return []

    def roles(self) -> dict[str, tuple[str, str]]:
        """Member name -> (role, state), as Patroni reports them."""
        return {m["name"]: (m["role"], m["state"]) for m in self.members()}

    def wait_synchronous(self, limit_s: float) -> None:
        """Until one node leads and the other is its streaming synchronous standby."""

        def ok() -> bool:
            roles = sorted(self.roles().values())
            return roles == [("leader", "running"), ("sync_standby", "streaming")]

        self._until(ok, limit_s, "a leader and a streaming sync standby")

    def wait_restarted(self, node: Node, killed: int, limit_s: float) -> None:
        """Until Patroni has started the node's PostgreSQL again (a standby by then)."""

        def ok() -> bool:
            return node.postmaster_pid() not in (None, killed) and node.api("/health")[0] == 200

        self._until(ok, limit_s, f"{node.name} restarted")

    async def wait_synchronous_async(self, limit_s: float) -> None:
        await asyncio.to_thread(self.wait_synchronous, limit_s)

    # --- helpers ------------------------------------------------------------------
    def _spawn(
        self, name: str, argv: list[str], *, user: str | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")
        self.logs.append(log)
        env: Mapping[str, str] = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8"}
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            user=user,
            cwd=self.root,
            start_new_session=True,
        )

    def _etcd_healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.etcd_port}/health"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _until(self, ok: Callable[[], bool], limit_s: float, what: str) -> None:
        end = time.monotonic() + limit_s
        while not ok():
            if time.monotonic() > end:
                raise AssertionError(f"HA cluster: no {what} in {limit_s:.0f}s\n{self.log_tail()}")
            for proc in [self.etcd, *(n.proc for n in self.nodes)]:
                if proc is not None and proc.poll() is not None:
                    raise AssertionError(f"HA cluster: a process exited\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, chars: int = 2500) -> str:
        parts = []
        for log in sorted(self.root.glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)
