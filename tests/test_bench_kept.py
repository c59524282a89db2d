"""A full `make bench` rewrites docs/benchmarks.md and keeps the sections that other
commands write (`make chaos-ha`'s failover figures)."""

from __future__ import annotations

from pathlib import Path

from bench.kept import kept_sections


def test_the_failover_section_is_kept_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text(
        "# Benchmarks\n\n## Summary\n\nold\n\n## PostgreSQL failover (make chaos-ha)\n\n"
        "| kill | 3.0 s |\n\n## Decoding\n\nold decode\n",
        encoding="utf-8",
    )
    kept = kept_sections(out)
    assert kept.startswith("## PostgreSQL failover (make chaos-ha)\n")
    assert "| kill | 3.0 s |" in kept
    assert "old" not in kept and "Decoding" not in kept


def test_a_file_without_it_keeps_nothing(tmp_path: Path) -> None:
    assert kept_sections(tmp_path / "missing.md") == ""
    (tmp_path / "b.md").write_text("# Benchmarks\n\n## Summary\n", encoding="utf-8")
    assert kept_sections(tmp_path / "b.md") == ""
