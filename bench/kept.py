"""Sections of docs/benchmarks.md written by other commands (`make chaos-ha`) or by
hand: a full `make bench` rewrites the file and puts them back at its end as they were."""

from __future__ import annotations

from pathlib import Path

KEPT_HEADINGS = (
    "## PostgreSQL failover",
    "## PgBouncer in front of PostgreSQL",  # --pgbouncer-only: it needs a TCP server
    "## Decoding and latency on 2026-12-07: notes by hand",
)


def kept_sections(out: Path) -> str:
    if not out.exists():
        return ""
    lines = out.read_text(encoding="utf-8").splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(KEPT_HEADINGS):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("## ")), None)
            kept += [*lines[i : end or len(lines)], ""]
    return "\n".join(kept)
