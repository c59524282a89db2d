"""A PostgreSQL cluster the chaos tests own: initdb and pg_ctl from the pgserver package.

Restarting it (fast or immediate shutdown) must never touch a server anyone else uses,
so it lives in a temp dir, listens on a port of its own, and dies with the session.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pgserver._commands

from tests.cli_helpers import free_port

BIN = pgserver._commands.POSTGRES_BIN_PATH
ShutdownMode = Literal["smart", "fast", "immediate"]


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: borrow pgserver's own user then."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


@dataclass
class PgCluster:
    root: Path
    port: int
    max_connections: int
    user: str | None

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def create(cls, root: Path, *, max_connections: int = 50) -> PgCluster:
        user = _system_user()
        root.chmod(0o755)  # the postgres user must reach its data dir and write the log
        if user is not None:
            os.chown(root, *_ids(user))
        cluster = cls(root, free_port(), max_connections, user)
        cluster._run(
            "initdb",
            *("-D", str(cluster.pgdata), "-U", "postgres"),
            *("--auth=trust", "--encoding=utf8", "--no-sync"),
        )
        return cluster

    def _run(self, exe: str, *args: str) -> None:
        # The postmaster inherits pg_ctl's stdout: a pipe there would never reach EOF.
        with open(os.devnull, "wb") as null:
            done = subprocess.run(
                [str(BIN / exe), *args],
                stdout=null,
                stderr=subprocess.PIPE,
                user=self.user,
                check=False,
                timeout=120,
            )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{exe} {args} failed: {done.stderr.decode()}\n{log}")

    def start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
            f" -c max_connections={self.max_connections} -c superuser_reserved_connections=3"
        )
        self._run("pg_ctl", *self._ctl, "-l", str(self.log), "-o", options, "start")

    def stop(self, mode: ShutdownMode = "fast") -> None:
        self._run("pg_ctl", *self._ctl, "-m", mode, "stop")

    @property
    def _ctl(self) -> tuple[str, ...]:
        return ("-D", str(self.pgdata), "-w", "-t", "60")

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    # From a running test: pg_ctl must not block the event loop the kiosks run on.
    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    async def stop_async(self, mode: ShutdownMode) -> None:
        await asyncio.to_thread(self.stop, mode)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
