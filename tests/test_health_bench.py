"""The health desk benchmark (`python -m bench --health-only`) at a tiny size: it runs the
real re-screen and case code on set-based seeds, and replaces only its part of the doc."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import health_bench, summary
from bench.__main__ import HEALTH_HEADING, health_section, machine, write_section


def test_the_health_bench_measures_and_replaces_only_its_part_of_the_doc(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", server_url)
    result = health_bench.measure(
        ["--declarations", "2000", "--events", "4000", "--people", "60", "--touch", "0.05"]
    )
    rescreen, case = result["rescreen"], result["case"]
    assert rescreen["declarations"] == 2000
    assert 0 < rescreen["suspended"] == rescreen["rescreened"] < 2000  # rules: review
    assert case["cases"] == health_bench.RUNS and case["contacts_each"] > 0
    assert case["events"] > 3000 and case["max_ms"] >= case["median_ms"] > 0
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "\n".join(
            [
                "# Benchmarks",
                "",
                "## Summary",
                "",
                "| scenario | figure | ceiling (same run) | ratio | machine |",
                "|---|---:|---:|---:|---|",
                "| kept row | 1 | 1 | 1.0 | m |",
                f"| {summary.HEALTH_ROW_PREFIXES[0]}9 declarations: old | 9 ms | 1 | 9 | m |",
                "",
                "## Audit export and contact tracing",
                "",
                "kept section",
                "",
                "## Decoding",
                "",
                "kept too",
            ]
        )
    )
    command = "python -m bench --health-only"
    rows = summary.to_markdown(summary.health_rows(result), machine()).splitlines()[2:]
    for _ in range(2):  # a second run replaces the first's section and rows
        write_section(
            doc, health_section(result, command), rows, summary.HEALTH_ROW_PREFIXES, "## Decoding"
        )
    text = doc.read_text()
    lines = text.splitlines()
    assert "9 declarations: old" not in text and "kept section" in text and "kept too" in text
    assert text.count(HEALTH_HEADING) == 1 and text.count("| re-screen of 2,000") == 1
    assert lines.index(HEALTH_HEADING) < lines.index("## Decoding")
    assert f"`{command}`" in text
