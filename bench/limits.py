"""Open-file limits for the load generator and the services it starts.

A simulated kiosk holds one socket, and so does the service for it: 1,000 kiosks are
1,000 descriptors on each side, past the usual soft limit of 1,024. The bench raises
its own soft RLIMIT_NOFILE up to the hard limit (no privilege needed); the services
and load processes it starts inherit it. It never touches the hard limit.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

WANTED = 65536
# Beyond the sockets: the interpreter, its libraries, the pool's connections, pipes.
SPARE = 256


@dataclass(frozen=True)
class OpenFiles:
    before: int
    soft: int
    hard: int


def raise_open_files(needed: int) -> OpenFiles:
    """Raise the soft limit towards WANTED; fail clearly if `needed` cannot fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = WANTED if hard == resource.RLIM_INFINITY else min(hard, WANTED)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    raised = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if raised != resource.RLIM_INFINITY and raised < needed + SPARE:
        raise RuntimeError(
            f"{needed} sockets need about {needed + SPARE} open files, but the hard limit is "
            f"{hard}: raise it (ulimit -Hn, or LimitNOFILE= / docker --ulimit nofile=) "
            "or run fewer kiosks"
        )
    return OpenFiles(before=soft, soft=raised, hard=hard)


def open_files(pid: int) -> int:
    """How many descriptors a process holds now (0 if it is gone)."""
    try:
        return len(os.listdir(Path(f"/proc/{pid}/fd")))
    except OSError:
        return 0
