"""`checkin-gateway serve` as a real process: started, killed -9, restarted on its port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
# After a kill -9 of the service, multiprocessing's resource tracker (a process of its
# own) reports the semaphores of the QR process pool that it then cleans up.
LEAKED_AFTER_KILL = re.compile(r"resource_tracker")


@dataclass
class Gateway:
    database_url: str
    port: int
    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict)  # CHECKIN_* variables
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir / "service.log"

    async def start(self, *, ready_within_s: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHECKIN_")}
        env |= {
            "DATABASE_URL": self.database_url,
            "CHECKIN_HOST": "127.0.0.1",
            "CHECKIN_PORT": str(self.port),
            "CHECKIN_DATA_DIR": str(self.data_dir),
            "CHECKIN_LOG_LEVEL": "WARNING",
        } | self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        err = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service",
                "serve",
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
            )
        finally:
            os.close(err)
        self.starts += 1
        await self.wait_ready(ready_within_s)

    async def wait_ready(self, limit_s: float) -> None:
        """Until /readyz says ready (a safety net, not a measurement)."""
        async with aiohttp.ClientSession() as session, asyncio.timeout(limit_s):
            while True:
                if self.proc is not None and self.proc.returncode is not None:
                    raise AssertionError(f"the service exited:\n{self.log_tail()}")
                if await self.ready(session):
                    return
                await asyncio.sleep(0.1)

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(
                self.url + "/readyz", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> int | None:
        """Ctrl-C, as a person stops it; kill -9 if it does not stop in time."""
        if self.proc is None or self.proc.returncode is not None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"the service ignored SIGINT:\n{self.log_tail()}") from None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def errors_logged(self) -> list[str]:
        """ERROR lines of the service's JSON log: a 500, a crashed task, a traceback."""
        found: list[str] = []
        if not self.log.exists():
            return found
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                if LEAKED_AFTER_KILL.search(line):
                    continue  # the QR pool's tracker tidying up after a kill -9: expected
                found.append(line)  # not ours: a traceback printed by Python itself
                continue
            if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
                found.append(line)
        return found
