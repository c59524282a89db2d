"""The published OpenAPI document, and schemathesis against the running service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.web.openapi import DOCUMENTS_KEY, build_spec
from tests.cli_helpers import env_for, free_port, run_cli, wait_ready


async def test_document_lists_every_route_with_its_access(
    client: TestClient[Any, Any], app: Any
) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert spec["openapi"].startswith("3.")
    operations = {
        (method.upper(), path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    routes = {
        (r.method, r.resource.get_info().get("path") or r.resource.get_info()["formatter"])
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    assert set(operations) == routes
    assert operations[("GET", "/healthz")]["security"] == []
    create_gate = operations[("POST", "/api/v1/sites/{site_id}/gates")]
    assert create_gate["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GateIn"
    }
    assert create_gate["parameters"][0]["schema"]["type"] == "integer"
    # Made once at start, not per request (a public caller could repeat that at will):
    # what is served is the stored document, and it is today's.
    made = app[DOCUMENTS_KEY]
    assert spec == build_spec(app)
    assert await (await client.get("/api/v1/openapi.json")).read() == made.spec_json
    assert app[DOCUMENTS_KEY] is made
    assert "GateIn" in spec["components"]["schemas"]
    docs = await client.get("/api/v1/docs")
    assert docs.status == 200 and "/api/v1/sites/{site_id}/gates" in await docs.text()


SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is not installed")
def test_schemathesis_finds_no_server_error(db_url: str, tmp_path: Path) -> None:
    """Every route, fed generated input with an admin token: never a 500, and every
    response fits the document."""
    env = env_for(db_url, tmp_path)
    created = run_cli("token", "create", "--role", "admin", env=env)
    assert created.returncode == 0, created.stderr
    port = free_port()
    env |= {"CHECKIN_PORT": str(port), "CHECKIN_LOG_LEVEL": "ERROR"}
    service = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", service, 60)  # type: ignore[arg-type]
        done = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"http://127.0.0.1:{port}/api/v1/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "10",
                "--generation-deterministic",
                "-H",
                f"Authorization: Bearer {created.stdout.strip()}",
                "--exclude-path-regex",
                "stream",  # WebSockets: tested in their own modules
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ) | {"NO_COLOR": "1"},
            check=False,
        )
    finally:
        service.terminate()
        service.wait(timeout=20)
    assert done.returncode == 0, done.stdout[-6000:]
