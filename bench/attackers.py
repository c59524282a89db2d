"""Attackers for the attack benchmark: `clients` clients, each on a connection of its
own, calling one route as fast as it answers for `seconds` from start_at (wall-clock;
later if the process could not start by then), then stopping by themselves: a request
in flight at the end is waited for (at most DRAIN_LIMIT_S), so that when the process
ends, the service has no work of this attack left (an export in flight is cut off at
the end instead: closing it ends it).
Their own process, so that their load does not share an event loop with the kiosks
whose latency is measured.

    python -m bench.attackers PLAN.json   -> prints one JSON line of results

Attacks (the plan's "attack"), none of them needs a kiosk token:
- login: POST /console/login with random usernames and passwords (the login form's CSRF
  token is taken from the page, as a browser or a script would);
- declarations: POST /api/v1/declarations with valid bodies, each a new visitor;
- export: GET /api/v1/audit/events?format=csv of the plan's export_site_id (with an
  auditor token), read to the end, one export after another;
- png: GET /api/v1/passes/{id}/qr.png?key=..., each client walking its share of the passes, so
  that no cache hides the rendering.

Results: requests answered, by HTTP status, and per second within the phase (those
answered after end_at counted apart); connection errors; for the export, the rows and
bytes read; when the attack began and how long its last answers took after end_at.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import string
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.export_bench import read_export
from bench.kiosk_load import run_plan

DRAIN_LIMIT_S = 60.0
CSRF_RE = re.compile(rb'name="csrf_token" value="([^"]+)"')
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi")
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc")
GIVEN = ("An", "Bình", "Cường", "Dung", "Giang", "Hà", "Hải", "Khánh", "Lan", "Mai", "Nam")
ORGANISATIONS = ("Công ty TNHH Minh Phát", "Ngân hàng Á Châu", "Bưu điện Quận 1", None)
PURPOSES = ("Làm thủ tục hải quan", "Nộp hồ sơ", "Họp với phòng kế hoạch", "Giao hàng")
AREAS = ("Hà Nội", "TP. Hồ Chí Minh", "Đà Nẵng", "Bình Dương", "Cần Thơ")
SYMPTOMS = ("fever", "cough", "sore_throat", "fatigue")

Client = Callable[[aiohttp.ClientSession, dict[str, Any], int, dict[str, Any]], Awaitable[None]]


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


def declaration_body(site_id: int, rng: random.Random) -> dict[str, Any]:
    """A valid visitor's declaration; mostly cleared, some to review (symptoms,
    contacts), all with a phone number of their own (03/05/07: not the seeds')."""
    unwell = rng.random() < 0.1
    return {
        "site_id": site_id,
        "kind": "visitor",
        "full_name": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
        "phone": "0" + rng.choice("357") + "".join(rng.choices(string.digits, k=8)),
        "organisation": rng.choice(ORGANISATIONS),
        "host_name": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
        "purpose": rng.choice(PURPOSES),
        "symptoms": rng.sample(SYMPTOMS, rng.randint(1, 2)) if unwell else [],
        "contact_f0": False,
        "contact_f1": rng.random() < 0.05,
        "travel_areas": rng.sample(AREAS, rng.randint(0, 2)),
        "vaccination_doses": rng.randint(0, 3),
    }


def _answered(out: dict[str, Any], status: int) -> None:
    out["statuses"][str(status)] += 1
    if time.time() > out["end_at"]:
        out["after_end"] += 1


async def login(
    session: aiohttp.ClientSession, plan: dict[str, Any], n: int, out: dict[str, Any]
) -> None:
    rng = random.Random()  # unseeded: no two runs send the same
    url = plan["url"] + "/console/login"
    token = ""
    while time.time() < plan["end_at"]:
        if not token:
            async with session.get(url) as r:
                found = CSRF_RE.search(await r.read())
            token = found.group(1).decode() if found else "none"
        form = {"csrf_token": token, "username": _word(rng, 8), "password": _word(rng, 14)}
        async with session.post(url, data=form, allow_redirects=False) as r:
            page = await r.read()
        _answered(out, r.status)
        found = CSRF_RE.search(page)  # a refused login's page carries the next token
        if found:
            token = found.group(1).decode()
        elif r.status == 403:  # the token went stale: fetch the form again
            token = ""


async def declarations(
    session: aiohttp.ClientSession, plan: dict[str, Any], n: int, out: dict[str, Any]
) -> None:
    rng = random.Random()  # unseeded: no two runs send the same
    url = plan["url"] + "/api/v1/declarations"
    while time.time() < plan["end_at"]:
        async with session.post(url, json=declaration_body(plan["site_id"], rng)) as r:
            await r.read()
        _answered(out, r.status)


async def export(
    session: aiohttp.ClientSession, plan: dict[str, Any], n: int, out: dict[str, Any]
) -> None:
    while time.time() < plan["end_at"]:
        out["exports_started"] += 1
        try:
            await read_export(session, plan["url"], plan["token"], plan["export_site_id"], out)
        except aiohttp.ClientResponseError as e:
            _answered(out, e.status)
        else:
            _answered(out, 200)


async def png(
    session: aiohttp.ClientSession, plan: dict[str, Any], n: int, out: dict[str, Any]
) -> None:
    mine = plan["pass_paths"][n :: plan["clients"]] or plan["pass_paths"]
    i = random.randrange(len(mine))
    while time.time() < plan["end_at"]:
        url = plan["url"] + mine[i % len(mine)]
        async with session.get(url) as r:
            await r.read()
        _answered(out, r.status)
        i += 1


ATTACKS: dict[str, Client] = {
    "login": login,
    "declarations": declarations,
    "export": export,
    "png": png,
}


async def client(plan: dict[str, Any], n: int, out: dict[str, Any]) -> None:
    """One attacker until end_at, and its last request; after a failed connection it
    tries again shortly."""
    attack = ATTACKS[plan["attack"]]
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies from 127.0.0.1
    drain = 0.0 if plan["attack"] == "export" else DRAIN_LIMIT_S
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=jar) as session:
        try:
            async with asyncio.timeout_at(loop.time() + plan["end_at"] + drain - time.time()):
                while time.time() < plan["end_at"]:
                    try:
                        await attack(session, plan, n, out)
                    except (aiohttp.ClientError, OSError) as e:
                        out["failed"] += 1
                        if len(out["first_errors"]) < 5:
                            out["first_errors"].append(repr(e))
                        await asyncio.sleep(0.05)
        except TimeoutError:
            pass


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "statuses": Counter(),
        "failed": 0,
        "first_errors": [],
        "rows": 0,
        "bytes": 0,
        "exports_started": 0,
        "after_end": 0,
        "end_at": plan["end_at"],
    }
    delay = plan["start_at"] - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    began = time.time()
    plan["end_at"] = out["end_at"] = began + plan["seconds"]
    await asyncio.gather(*(client(plan, n, out) for n in range(plan["clients"])))
    drained_s = max(0.0, time.time() - plan["end_at"])
    seconds = max(1e-3, plan["end_at"] - began)
    answered = sum(out["statuses"].values())
    in_phase = answered - out["after_end"]
    result = {
        "attack": plan["attack"],
        "clients": plan["clients"],
        "began": began,
        "seconds": round(seconds, 2),
        "started_late_s": round(max(0.0, began - plan["start_at"]), 2),
        "requests": answered,
        "per_second": round(in_phase / seconds, 1),
        "answered_after_end": out["after_end"],
        "drained_s": round(drained_s, 2),
        "statuses": dict(out["statuses"]),
        "refused_429": out["statuses"]["429"],
        "refused_503": out["statuses"]["503"],
        "failed": out["failed"],
        "first_errors": out["first_errors"],
    }
    if plan["attack"] == "export":
        rows = out["rows"] - out["exports_started"]  # less each export's header line
        result |= {
            "rows": rows,
            "rows_per_second": round(rows / seconds),
            "mib": round(out["bytes"] / 2**20, 1),
        }
    return result


def main() -> int:
    sys.stdout.write(json.dumps(run_plan(run)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
