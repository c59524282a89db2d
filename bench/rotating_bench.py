"""The rotating pass check's cost per scan on the kiosk (checkin_core/rotating.py).

What a kiosk does with a decoded rotating code when it judges it offline
(scanner.verdict.judge_offline): Base45, the issuer's signature, the device's signature,
the time step. Measured in-process, one scan after another on one core, each payload a
new code (no cache can help), next to the same check of a printed (version 1) pass.
"""

from __future__ import annotations

import base64
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from checkin_core.base45 import b45encode
from checkin_core.keys import SigningKey, TrustList
from checkin_core.passes import issue_pass
from checkin_core.rotating import BOUND_PREFIX, bound_pass_b64, device_message, time_step
from scanner.verdict import judge_offline

HEADING = "## Rotating pass: the kiosk's check per scan"


def _codes(n: int) -> tuple[list[str], list[str], TrustList, datetime]:
    key = SigningKey.generate()
    now = datetime.now(UTC).replace(microsecond=0)
    window = {
        "site_id": 1,
        "not_before": now - timedelta(hours=1),
        "not_after": now + timedelta(hours=8),
    }
    rotating, printed = [], []
    step = time_step(now)
    for _ in range(n):
        pass_id = uuid.uuid4()
        device = Ed25519PrivateKey.generate()
        public = device.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        bound = bound_pass_b64(key, pass_id=pass_id, device_key=public, **window)  # type: ignore[arg-type]
        raw = base64.urlsafe_b64decode(bound + "=" * (-len(bound) % 4))
        signature = device.sign(device_message(pass_id, step))
        rotating.append(BOUND_PREFIX + b45encode(raw + step.to_bytes(4, "big") + signature))
        printed.append(issue_pass(key, pass_id=pass_id, **window))  # type: ignore[arg-type]
    return rotating, printed, TrustList([key.trusted_key()]), now


def _per_scan_us(payloads: list[str], trust: TrustList, now: datetime) -> list[float]:
    times = []
    for payload in payloads:
        started = time.perf_counter()
        verdict = judge_offline(
            payload, policy="verify-offline", trust=trust, site_id=1, now=now, printed="allow"
        )
        times.append((time.perf_counter() - started) * 1e6)
        assert verdict.decision == "allow", verdict
    return times


def run(n: int = 2000) -> dict[str, Any]:
    rotating, printed, trust, now = _codes(n)
    _per_scan_us(rotating[:50], trust, now)  # warm up
    rot = sorted(_per_scan_us(rotating, trust, now))
    static = sorted(_per_scan_us(printed, trust, now))

    def stats(xs: list[float]) -> dict[str, float]:
        return {
            "median": statistics.median(xs),
            "p99": xs[int(len(xs) * 0.99) - 1],
        }

    return {"n": n, "rotating": stats(rot), "printed": stats(static)}


def section(result: dict[str, Any], command: str) -> str:
    rot, static = result["rotating"], result["printed"]
    return "\n".join(
        [
            HEADING,
            "",
            f"Measured by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
            "(bench/rotating_bench.py): the kiosk's offline judgement",
            "(`scanner.verdict.judge_offline`) of "
            f"{result['n']:,} distinct codes, one after another on one core.",
            "A rotating code costs two Ed25519 verifications (the issuer's, the phone's);",
            "a printed pass one.",
            "",
            "| pass | median µs | p99 µs |",
            "|---|---:|---:|",
            f"| rotating (version 2) | {rot['median']:.0f} | {rot['p99']:.0f} |",
            f"| printed (version 1) | {static['median']:.0f} | {static['p99']:.0f} |",
            "",
        ]
    )
