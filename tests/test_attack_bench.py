"""The attack benchmark (`make bench`, `python -m bench --attacks-only`) at a tiny size:
real service processes, kiosks and attackers, 1-second phases. It must produce every
attack's row under both limit settings with figures that hang together, and update
its part of docs/benchmarks.md in place. No time is asserted: the machine is shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import attack_bench, summary
from bench.__main__ import write_attacks

# What each attack may be answered: its success, or a refusal by a limit or a queue.
EXPECTED_STATUSES = {
    "login": {"401", "429", "503"},
    "declarations": {"201", "429", "503"},
    "export": {"200", "429", "503"},
    "png": {"200", "429", "503"},
}


@pytest.fixture(scope="module")
def result(server_url: str) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", server_url)  # the run's server, its own database
        return attack_bench.run(kiosks=5, seconds=1.0, events=1000, interval_s=0.2)


def test_every_attack_is_measured_under_both_limits(result: dict[str, Any]) -> None:
    assert [r["limits"] for r in result["runs"]] == [label for label, _, _ in attack_bench.LIMITS]
    # Each export is an event of the site's log too, so the next export has one row more.
    attackers = [a["attacker"] for r in result["runs"] for a in r["attacks"]]
    exports = [e for e in attackers if e["attack"] == "export"]
    longest_export = result["events"] + sum(e["requests"] + 1 for e in exports)
    for run in result["runs"]:
        assert run["kiosks_failed"] == 0, run["kiosk_errors"]
        assert [a["attack"] for a in run["attacks"]] == list(attack_bench.ATTACKS)
        for phase in [run["quiet"]] + [a["kiosks"] for a in run["attacks"]]:
            assert phase["decisions"] > 0, run
            assert phase["p50_ms"] <= phase["p99_ms"] <= phase["max_ms"]
            assert 0 <= phase["slow"] <= phase["decisions"]
        for a in run["attacks"]:
            attacker = a["attacker"]
            assert attacker["failed"] == 0, attacker["first_errors"]
            assert set(attacker["statuses"]) <= EXPECTED_STATUSES[a["attack"]]
            assert sum(attacker["statuses"].values()) == attacker["requests"]
            assert attacker["refused_429"] + attacker["refused_503"] <= attacker["requests"]
            assert attack_bench.ratio(a["kiosks"], run["quiet"]) is not None
            if a["attack"] == "export":  # whole exports, and at most one cut short
                assert 0 <= attacker["rows"] <= (attacker["requests"] + 1) * longest_export


def test_the_table_has_a_row_per_phase(result: dict[str, Any]) -> None:
    table = attack_bench.to_markdown(result).splitlines()
    rows = table[2:]
    assert len(rows) == len(attack_bench.LIMITS) * (1 + len(attack_bench.ATTACKS))
    for attack in attack_bench.ATTACKS:
        name = attack_bench.attack_name(attack, result["clients"], result["events"])
        assert sum(row.startswith(f"| {name} |") for row in rows) == len(attack_bench.LIMITS)
    assert all(
        ("| met |" in row) != ("| **not met** |" in row) for row in rows if "quiet" not in row
    )


def test_attacks_only_replaces_its_part_of_the_doc(result: dict[str, Any], tmp_path: Path) -> None:
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
                f"| {summary.ATTACK_ROW_PREFIX}an old attack | 9 ms | 1 ms | 9.00 | m |",
                "",
                attack_bench.HEADING,
                "",
                "an old table",
                "",
                "## Fan-out: scan recorded to console",
                "",
                "kept section",
                "",
            ]
        )
    )
    section = attack_bench.section(result, "python -m bench --attacks-only", 1.0)
    write_attacks(doc, section, result)
    text = doc.read_text()
    assert "an old attack" not in text and "an old table" not in text
    assert "| kept row |" in text and "kept section" in text
    lines = text.splitlines()
    new_rows = [line for line in lines if line.startswith("| " + summary.ATTACK_ROW_PREFIX)]
    assert len(new_rows) == len(attack_bench.LIMITS) * len(attack_bench.ATTACKS)
    # The new rows stay in the summary table, before the attack section.
    assert lines.index(new_rows[-1]) < lines.index(attack_bench.HEADING)
    assert lines[lines.index(new_rows[-1]) + 1] == ""
    assert text.count(attack_bench.HEADING) == 1
    assert "`python -m bench --attacks-only`" in text
