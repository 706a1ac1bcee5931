"""A real MLflow tracking server on loopback (SQLite backend store, served artifacts) for the MLflow registry
tests. The server comes from its own virtualenv (``make mlflow-server`` builds ``.mlflow-server/``: the full
``mlflow`` package conflicts with this project's pins); ``CRT_MLFLOW_SERVER`` may name another ``mlflow``
executable. Locally a missing server or client skips; under ``CI=true`` it fails (the feature would go untested).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STARTUP_SECONDS = 180  # migrations of a fresh SQLite store take ~30 s on a busy 2-core machine


def require(ok: bool, reason: str) -> None:
    """Skip locally, fail under CI=true."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing MLflow is a failure, not a skip)")
    pytest.skip(reason)


def server_executable() -> str | None:
    for candidate in (os.environ.get("CRT_MLFLOW_SERVER"), str(ROOT / ".mlflow-server" / "bin" / "mlflow")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MlflowServer:
    uri: str  # http://127.0.0.1:PORT
    artifacts: Path  # the server's artifact store (what a tamper test alters)
    log: Path

    @property
    def url(self) -> str:
        return f"mlflow+{self.uri}"


@contextmanager
def mlflow_server(folder: Path) -> Iterator[MlflowServer]:
    """Start ``mlflow server`` on a free loopback port with its store under ``folder``; stopped on exit."""
    # a busy 2-core CI machine answers slowly: MLflow's client waits up to 60 s per call in the tests (the registry
    # only sets its own default, 10 s, when the variable is unset)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    exe = server_executable()
    require(exe is not None, "no MLflow server executable: run `make mlflow-server` (or set CRT_MLFLOW_SERVER)")
    assert exe is not None
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(f"http://127.0.0.1:{port}", folder / "artifacts", folder / "server.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITRISK_", "MLFLOW_"))}
    # no job runner: it starts eight huey consumers, each importing MLflow (GenAI evaluations and trace roll-ups,
    # nothing the model registry uses), which cost more than the server itself on a busy 2-core machine
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    with open(server.log, "wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own executable, fixed arguments
            [exe, "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
             "--artifacts-destination", str(server.artifacts), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}: {server.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{server.uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up after {STARTUP_SECONDS} s: {server.log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield server
    finally:
        with _quiet():
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker (its own session)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with _quiet():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:
        pass


def artifact_file(server: MlflowServer, run_id: str, relative: str) -> Path:
    """The file an artifact of ``run_id`` is stored in on the server's disk."""
    found = [p for p in server.artifacts.rglob(relative) if run_id in p.parts]
    assert len(found) == 1, f"{relative} of run {run_id}: {found}"
    return found[0]


__all__ = ["MlflowServer", "artifact_file", "free_port", "mlflow_server", "require", "server_executable"]
