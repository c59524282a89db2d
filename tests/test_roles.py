"""The role matrix: every route declares who may call it, and the middleware holds to it."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.web.auth import PUBLIC, Role, access_of
from tests.factory import bearer

A, G, U, K, H = Role.ADMIN, Role.GUARD, Role.AUDITOR, Role.KIOSK, Role.HEALTH

# Route name -> who may call it. A new route must be added here, on purpose.
EXPECTED: dict[str, frozenset[Role]] = {
    "healthz": PUBLIC,
    "openapi": PUBLIC,
    "api_docs": PUBLIC,
    "readyz": PUBLIC,
    "sites": frozenset({A, G, U, H}),
    "create_site": frozenset({A}),
    "site": frozenset({A, G, U, H}),
    "create_gate": frozenset({A}),
    "kiosk_stream": frozenset({K}),
    "scans": frozenset({K}),
    "scans_batch": frozenset({K}),
    "kiosk_heartbeat": frozenset({K}),
    "kiosk_sync": frozenset({K}),
    "events_stream": frozenset({A, G, U, H}),
    "create_override": frozenset({G, A}),
    "create_id_check": frozenset({G, A}),
    "manual_exit": frozenset({G, A}),
    "confirm_presence": frozenset({G, A}),
    "webhook": frozenset({A, U}),
    "set_webhook": frozenset({A}),
    "delete_webhook": frozenset({A}),
    "presence": frozenset({G, A, U, H}),
    "kiosks": frozenset({G, A, U}),
    "deny_list": frozenset({A, G, U}),
    "add_to_deny_list": frozenset({A}),
    "remove_from_deny_list": frozenset({A}),
    "keys": PUBLIC,
    "create_declaration": PUBLIC,
    "review_declaration": frozenset({A, G, H}),
    "review_queue": frozenset({A, G, H}),
    "person": frozenset({A, G, U, H}),
    "revoke_person_passes": frozenset({A}),
    "revoke_pass": frozenset({A}),
    "pass_qr_png": PUBLIC,
    "pass_qr_svg": PUBLIC,
    "site_rules": frozenset({A, G, U, H}),
    "set_site_rules": frozenset({A}),
    "site_door_rules": frozenset({A, G, U}),
    "set_site_door_rules": frozenset({A}),
    "flagged_areas": frozenset({A, G, U, H}),
    "add_flagged_area": frozenset({A, H}),
    "update_flagged_area": frozenset({A, H}),
    "delete_flagged_area": frozenset({A, H}),
    "declare_form": PUBLIC,
    "declare_submit": PUBLIC,
    "declaration_result": PUBLIC,
    "pass_print": PUBLIC,
    "pass_phone": PUBLIC,
    "pass_bind": PUBLIC,
    "pass_manifest": PUBLIC,
    "pass_service_worker": PUBLIC,
    "static": PUBLIC,
    "audit_events": frozenset({A, U}),
    "audit_verify": frozenset({A, U}),
    "person_movements": frozenset({A, G, U, H}),
    "people_search": frozenset({A, G, U, H}),
    "site_occupancy": frozenset({A, G, U}),
    "site_report": frozenset({A, U, H}),
    "trace": frozenset({A, U, H}),
    "console_login_form": PUBLIC,
    "console_login": PUBLIC,
    "console_logout": frozenset({G, A, U, H}),
    "console": frozenset({G, A, U, H}),
    "console_rollcall": frozenset({G, A, U}),
    "accounts": frozenset({A}),
    "create_account": frozenset({A}),
    "disable_account": frozenset({A}),
    "security_alerts": frozenset({A}),
    # the health officer's desk (issue 19)
    "create_test": frozenset({A, H}),
    "person_tests": frozenset({A, H, U}),
    "create_case": frozenset({A, H}),
    "case": frozenset({A, H, U}),
    "case_contacts": frozenset({A, H, U}),
    "suspend_contacts": frozenset({A, H}),
    "suspensions": frozenset({A, H, G, U}),
    "clear_suspensions": frozenset({A, H}),
    "tests_due": frozenset({A, H}),
    "tests_due_page": frozenset({A, H}),
    "health_report": frozenset({A, H, U}),
    "health_report_page": frozenset({A, H, U}),
    "case_report_csv": frozenset({A, H, U}),
    "case_report_page": frozenset({A, H, U}),
}


def named_routes(app: web.Application) -> dict[str, web.AbstractRoute]:
    routes = {}
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        name = route.name or (route.resource and route.resource.name)
        assert name, f"route {route} has no name"
        routes[name] = route
    return routes


def test_every_route_declares_its_access(app: web.Application) -> None:
    declared = {name: access_of(r.handler) for name, r in named_routes(app).items()}
    assert declared == EXPECTED


def url_of(route: web.AbstractRoute, site_id: int, gate_id: int) -> str:
    params = {
        "site_id": str(site_id),
        "gate_id": str(gate_id),
        "person_id": "1",
        "entry_id": "1",
        "case_id": "1",
    }
    params |= {
        "declaration_id": "1",
        "area_id": "1",
        "pass_id": "00000000-0000-4000-8000-000000000000",
        "filename": "declare.css",
        "username": "nobody",
    }
    assert route.resource is not None
    info = route.resource.get_info()
    if "path" in info:
        return str(info["path"])
    wanted = {k: v for k, v in params.items() if "{" + k in info["formatter"]}
    return str(route.resource.url_for(**wanted))


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_role_matrix(
    client: TestClient[Any, Any],
    app: web.Application,
    tokens: dict[Role, str],
    site_id: int,
    gate_id: int,
    name: str,
) -> None:
    route = named_routes(app)[name]
    url = url_of(route, site_id, gate_id)
    allowed = EXPECTED[name]

    anonymous = await client.request(route.method, url, allow_redirects=False)
    if allowed == PUBLIC:
        # (The login form refuses a post without its CSRF cookie: its own check.)
        assert anonymous.status not in (401, 403) or name == "console_login"
        return
    if url.startswith("/console"):  # a browser page: to the login form
        assert anonymous.status == 303, await anonymous.text()
    else:
        assert anonymous.status == 401, await anonymous.text()
    wrong = await client.request(route.method, url, headers=bearer("cgw_not-a-real-token"))
    assert wrong.status == 401
    for role, token in tokens.items():
        resp = await client.request(route.method, url, headers=bearer(token), json={})
        if role in allowed:
            assert resp.status not in (401, 403), (role, await resp.text())
        else:
            assert resp.status == 403, (role, await resp.text())
            assert (await resp.json())["error"]["code"] == "forbidden"
