"""The simulated kiosks' arithmetic: when each scan is due, and the tally of what came
back, as figures (bench/kiosk_load.py runs the kiosks; the attack benchmark cuts its
phases out of the samples with `window`)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any


def first_scan_at(plan: dict[str, Any], k: int) -> float:
    """Open loop: kiosk k of n starts k/n of an interval late, so that scans arrive
    evenly, not as n at once every interval (which would measure a burst's queue)."""
    interval = plan.get("interval_s") or 0.0
    return float(plan["start_at"]) + interval * k / len(plan["tokens"])


def due_at(plan: dict[str, Any], next_at: float) -> float:
    """When the next scan is due: open loop, by the schedule (so a kiosk behind it still
    sends the scans due before the end, as people already at the door still scan);
    closed loop, now."""
    return next_at if plan.get("interval_s") else time.time()


def lateness(plan: dict[str, Any], due: float) -> float:
    """How long after it was due a scan goes out, when latency counts from the schedule."""
    if not (plan.get("from_schedule") and plan.get("interval_s")):
        return 0.0
    return max(0.0, time.time() - due)


def scan_message(payload: str) -> dict[str, Any]:
    return {
        "type": "scan",
        "event_id": str(uuid.uuid4()),
        "payload": payload,
        "seen_at": datetime.now(UTC).isoformat(),
    }


def new_tally() -> dict[str, Any]:
    return {"latencies": [], "reasons": Counter(), "errors": 0}


def record(
    out: dict[str, Any], plan: dict[str, Any], sent: float, answer: dict[str, Any], *, ok: bool
) -> None:
    now = time.time()
    took = time.perf_counter() - sent
    if now < plan["measure_from"]:
        return
    _count(out, answer, took, ok=ok)
    if plan.get("samples"):
        out["samples"].append([now - took, took if ok else None, _reason(answer, ok=ok)])
    if ok and plan.get("record_acks"):
        out["acks"][answer["event_id"]] = now


def _count(tally: dict[str, Any], answer: dict[str, Any], took: float, *, ok: bool) -> None:
    tally["reasons"][_reason(answer, ok=ok)] += 1
    if ok:
        tally["latencies"].append(took)
    else:  # a 503 or an error message: counted, not timed as a decision
        tally["errors"] += 1


def _reason(answer: dict[str, Any], *, ok: bool) -> str:
    if ok:
        return str(answer.get("reason") or "?")
    error = answer.get("error")
    return str(answer.get("code") or (error or {}).get("code") or "?")


def window(
    samples: list[list[Any]], since: float, to: float, slow_after_s: float | None
) -> dict[str, Any]:
    """The figures of the scans due from `since` to `to` (wall-clock times)."""
    tally = new_tally()
    for due, took, reason in samples:
        if since <= due < to:
            tally["reasons"][reason] += 1
            if took is None:
                tally["errors"] += 1
            else:
                tally["latencies"].append(took)
    return figures(tally, to - since, slow_after_s)


def figures(tally: dict[str, Any], seconds: float, slow_after_s: float | None) -> dict[str, Any]:
    """Decisions, their rate and latency percentiles, and what was not a decision."""
    lat = sorted(tally["latencies"])

    def pct(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else None

    return {
        "decisions": len(lat),
        "per_second": round(len(lat) / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "reasons": dict(tally["reasons"]),
        "errors": tally["errors"],
        **({"slow": sum(1 for t in lat if t > slow_after_s)} if slow_after_s is not None else {}),
    }
