"""The one table at the top of docs/benchmarks.md: every scenario's headline figure next
to the ceiling measured in the same run, their ratio, and the machine.

Throughput ratios are figure / ceiling (1.0: as fast as the ceiling). Latency ratios
are figure / floor (1.0: no slower than the bare database operation). Where no
same-run ceiling exists (tracing, decode speed), the goal is given and marked so.
"""

from __future__ import annotations

from typing import Any

from bench import attack_bench, checkin_bench, fanout_bench, health_bench
from bench import ceilings as pgbench_ceilings

# Every attack row starts so: `--attacks-only` replaces these rows and keeps the others.
ATTACK_ROW_PREFIX = "door p99 under "
# And every health desk row so (`--health-only`).
HEALTH_ROW_PREFIXES = ("re-screen of ", "case trace + suspend over ")


def _ms(p50: float | None, p99: float | None) -> str:
    return f"{p50} / {p99} ms"


def _ratio(figure: float | None, ceiling: float | None, digits: int = 2) -> str:
    return f"{figure / ceiling:.{digits}f}" if figure is not None and ceiling else "-"


def rows(
    checkin: dict[str, Any],
    fanout: dict[str, Any],
    export: dict[str, Any],
    trace: dict[str, Any],
    decode: dict[str, Any],
    health: dict[str, Any],
    attacks: dict[str, Any] | None = None,
) -> list[tuple[str, str, str, str]]:
    """(scenario, figure, ceiling, ratio) for each headline figure."""
    out: list[tuple[str, str, str, str]] = []
    ceilings = checkin["ceilings"]
    top = ceilings.get(pgbench_ceilings.THROUGHPUT_CEILING, {})
    floor = ceilings.get(pgbench_ceilings.LATENCY_CEILING, {})
    for s in checkin["scenarios"]:
        name = f"{s['kiosks']:,} kiosks, {'WebSocket' if s['transport'] == 'ws' else 'HTTP'}"
        peak = s["peak"]
        out.append(
            (
                f"{name}: decisions/s, closed loop",
                f"{peak['per_second']:,.0f}/s",
                f"{top.get('scans_per_s', 0):,}/s (pgbench, {top.get('what', '-')})",
                _ratio(peak["per_second"], top.get("scans_per_s")),
            )
        )
        half = s.get("half_rate")
        if half:
            out.append(
                (
                    f"{name}: p50 / p99 latency at half that rate "
                    f"(median p99 of {len(half.get('p99s_ms', [None]))} runs, and their range)",
                    f"{half['p50_ms']} / {checkin_bench.p99_text(half)} ms",
                    f"{_ms(floor.get('p50_ms'), floor.get('p99_ms'))} (pgbench, 1 client)",
                    f"{_ratio(half['p50_ms'], floor.get('p50_ms'), 1)} / "
                    f"{_ratio(half['p99_ms'], floor.get('p99_ms'), 1)}",
                )
            )
    lock = ceilings.get("pgbench_1_per_tx", {})
    spread = ceilings.get("pgbench_1_per_tx_many_sites", {})
    if lock and spread:
        out.append(
            (
                "one site's chain lock: scans/s, 1 scan/tx (pgbench, 32 clients)",
                f"{lock['scans_per_s']:,}/s",
                f"{spread['scans_per_s']:,}/s (pgbench, {spread['what']})",
                _ratio(lock["scans_per_s"], spread["scans_per_s"]),
            )
        )
    c = fanout.get("ceiling", {})
    for s in fanout.get("scenarios", []):
        out.append(
            (
                f"fan-out at {fanout['rate']:.0f} scans/s to {fanout_bench.scenario_name(s)}: "
                "p50 / p99",
                _ms(s["p50_ms"], s["p99_ms"]),
                f"{_ms(c.get('p50_ms'), c.get('p99_ms'))} (raw LISTEN/NOTIFY, asyncpg)",
                f"{_ratio(s['p50_ms'], c.get('p50_ms'), 1)} / "
                f"{_ratio(s['p99_ms'], c.get('p99_ms'), 1)}",
            )
        )
    out.append(
        (
            f"CSV export of {export['events']:,} events: rows/s",
            f"{export['export_rows_per_s']:,}/s",
            f"{export['copy_rows_per_s']:,}/s (COPY TO STDOUT)",
            f"{export['ratio']:.2f}",
        )
    )
    out.append(
        (
            f"contact trace, 14 days of {trace['stays']:,} stays: slowest of {trace['traced']}",
            f"{trace['max_ms']} ms",
            f"{trace['goal_ms']:.0f} ms (goal, not measured)",
            _ratio(trace["max_ms"], trace["goal_ms"]),
        )
    )
    out += health_rows(health)
    out += decode_rows(decode)
    return out + (attack_rows(attacks) if attacks else [])


def health_rows(health: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The health desk's two rows (each starts with one of HEALTH_ROW_PREFIXES)."""
    out = []
    for what, part in (
        (
            f"{HEALTH_ROW_PREFIXES[0]}{health['rescreen']['declarations']:,} declarations",
            "rescreen",
        ),
        (f"{HEALTH_ROW_PREFIXES[1]}{health['case']['events']:,} events", "case"),
    ):
        slowest = health[part]["max_ms"]
        out.append(
            (
                f"{what}: slowest of {health_bench.RUNS} runs",
                f"{slowest} ms",
                f"{health['goal_ms']:.0f} ms (goal, not measured)",
                _ratio(slowest, health["goal_ms"]),
            )
        )
    return out


def attack_rows(attacks: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The kiosks' p99 under each attack against the quiet p99 of the same run."""
    out = []
    rate = attacks["kiosks"] / attacks["interval_s"]
    for run in attacks["runs"]:
        quiet = run["quiet"]
        for a in run["attacks"]:
            k = a["kiosks"]
            name = attack_bench.attack_name(a["attack"], attacks["clients"], attacks["events"])
            ratio = attack_bench.ratio(k, quiet)
            met = "met" if attack_bench.met(k, quiet) else "not met"
            out.append(
                (
                    f"{ATTACK_ROW_PREFIX}{name}, {run['limits']} "
                    f"({attacks['kiosks']} kiosks at {rate:,.0f} scans/s)",
                    f"{k['p99_ms']} ms",
                    f"{quiet['p99_ms']} ms (quiet p99, same run; goal ≤ {attack_bench.GOAL}×)",
                    f"{'-' if ratio is None else f'{ratio:.2f}'} ({met})",
                )
            )
    return out


def to_markdown(table: list[tuple[str, str, str, str]], machine: str) -> str:
    lines = [
        "| scenario | figure | ceiling (same run) | ratio | machine |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {s} | {f} | {c} | {r} | {machine} |" for s, f, c, r in table]
    return "\n".join(lines)


DECODE_ROW_PREFIX = "decode, "


def decode_rows(decode: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    out = []
    variants = decode.get("photos", {}).get("variants", {})
    default = variants.get("default (zxing-cpp + pyzbar)")
    if default:
        avg = default["category_average"]
        out.append(
            (
                f"{DECODE_ROW_PREFIX}{decode['photos']['images']} photographs: default "
                "pipeline, average over categories",
                f"{100 * avg:.1f} %",
                "85 % (goal; the best published, a commercial SDK: 83.3 %)",
                _ratio(avg, 0.85),
            )
        )
    speed = decode.get("throughput", {}).get("default")
    if speed:
        fps = min(speed["fps_idle"], speed["fps_code"])
        out.append(
            (
                f"{DECODE_ROW_PREFIX}720p, one core, CPU time: default pipeline, "
                "frames/s (the slower of idle and with a pass)",
                f"{fps:.0f} fps",
                "30 fps (goal: the camera's rate)",
                _ratio(fps, 30.0),
            )
        )
    return out
