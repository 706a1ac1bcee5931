"""`creditrisk api clients|keys` and `creditrisk serve` (a real uvicorn on a free loopback port)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from proc_helpers import free_port, wait_until_ok
from typer.testing import CliRunner

from backend.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(cli_env, model_registry):
    shutil.copytree(model_registry, cli_env / "models")
    return cli_env


def run(*args):
    return runner.invoke(app, list(args))


def test_clients_add_list_revoke(env):
    res = run("api", "clients", "add", "los-core", "--role", "risk_manager", "--scopes", "score,decisions:read")
    assert res.exit_code == 0, res.output
    lines = dict(line.split(None, 1) for line in res.output.splitlines() if line.startswith("client_"))
    secret = lines["client_secret"].split()[0]
    assert lines["client_id"].startswith("crc_") and secret.startswith("crs_")
    listed = run("api", "clients", "list", "--json")
    assert listed.exit_code == 0 and secret not in listed.output
    rows = json.loads(listed.output)
    assert rows[0]["name"] == "los-core" and rows[0]["scopes"] == ["score", "decisions:read"]
    assert run("api", "clients", "add", "los-core", "--scopes", "score").exit_code == 2  # exists
    bad = run("api", "clients", "add", "robot", "--scopes", "override")
    assert bad.exit_code == 2 and "cannot hold 'override'" in bad.output
    assert run("api", "clients", "revoke", "los-core").exit_code == 0
    assert json.loads(run("api", "clients", "list", "--json").output)[0]["revoked_at"]
    assert run("api", "clients", "revoke", "los-core").exit_code == 2


def test_keys_rotate_list_remove(env):
    first = run("api", "keys", "list")
    assert first.exit_code == 0 and "signs and verifies" in first.output
    old = first.output.split()[0]
    assert run("api", "keys", "remove", old).exit_code == 2  # the active key
    assert run("api", "keys", "rotate").exit_code == 0
    listed = run("api", "keys", "list").output
    assert f"{old}  ES256  verifies" in listed and listed.count("signs and verifies") == 1
    assert run("api", "keys", "remove", old).exit_code == 0
    assert old not in run("api", "keys", "list").output
    printed = run("api", "keys", "rotate", "--print", "--alg", "EdDSA")
    ring = json.loads(printed.output)
    assert len(ring["keys"]) == 2 and ring["active"] != old


def test_serve_runs_uvicorn_on_loopback(env):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--port", str(port)], cwd=env,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ok(f"{base}/health/live", proc, seconds=60, name="the API", log=lambda: "")
        ready = httpx.get(f"{base}/health/ready", timeout=5)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        res = httpx.post(f"{base}/v1/score", json={"loan_amount": 5000}, timeout=5)
        assert res.status_code == 401 and res.headers["x-request-id"]
        assert "/v1/score" in httpx.get(f"{base}/openapi.json", timeout=5).json()["paths"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    access = [json.loads(x) for x in out.decode().splitlines() if x.startswith('{"ts"')]
    scored = [x for x in access if x["route"] == "/v1/score"]
    assert len(scored) == 1 and scored[0]["status"] == 401 and scored[0]["problem"] == "unauthorized"
    assert all(set(x) >= {"request_id", "method", "status", "duration_ms"} for x in access)


def test_serve_with_several_workers_keeps_them(env):
    """`serve --workers 2`: both workers start and serve. uvicorn's supervisor used to kill every worker that had
    not answered its health check within 5 s, i.e. while it was still importing the product: none ever served."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--port", str(port), "--workers", "2"],
                            cwd=env, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ok(f"{base}/health/ready", proc, seconds=180, name="serve --workers 2", log=lambda: "")
        time.sleep(8)  # past the supervisor's old 5 s health-check window, with both workers up
        assert all(httpx.get(f"{base}/health/live", timeout=5).status_code == 200 for _ in range(20))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    log = out.decode()
    assert "died" not in log and "failed to start" not in log, log[-2000:]
    assert log.count("Started server process") == 2, log[-2000:]
