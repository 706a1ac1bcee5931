"""The environment ``bench/api_load.py`` runs in: a scratch data dir (SQLite, or a scratch PostgreSQL
database created and dropped), a model, a machine client, the real server as a subprocess, and a
private Redis that the benchmark may kill (never the machine's Redis)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backend.models.signing import DEV_KEY_FILE  # where a data dir keeps its model signing key

ROOT = Path(__file__).resolve().parent.parent
MODEL_CACHE = ROOT / "var" / "bench" / "api_load_models"
KEY_DATA_DIR = ROOT / "var" / "bench" / "api_load_data"  # the data dir whose key signed the cached model
CLIENT_NAME = "load-bench"
# the benchmark is one client at hundreds of requests per second: the per-client limit (600/min by
# default) is raised so the limiter is exercised (every request is counted) but never refuses
BENCH_RATE_LIMIT = 1_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    return free_port()


@dataclass
class Scratch:
    root: Path
    database_url: str  # "" = SQLite under root
    registry: Path
    client_id: str = ""
    client_secret: str = ""
    pg_admin: str = ""
    pg_name: str = ""
    templates: Path = field(default_factory=Path)

    def settings(self) -> Any:
        from backend.container.settings import load_settings

        db = {"url": self.database_url} if self.database_url else {}
        return load_settings(data_dir=self.root, database=db, model={"registry_dir": self.registry})

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITRISK_")}
        env.update({"CREDITRISK_DATA_DIR": str(self.root), "CREDITRISK_MODEL__REGISTRY_DIR": str(self.registry),
                    "CREDITRISK_API__RATE_LIMIT_PER_MINUTE": str(BENCH_RATE_LIMIT), "PYTHONUNBUFFERED": "1"})
        if self.database_url:
            env["CREDITRISK_DATABASE__URL"] = self.database_url
        env.update(extra)
        return env


def _model(root: Path, retrain: bool, registry: Path | None) -> Path:
    """A registry with a champion: ``registry`` if given, else the cached bench model (trained once with
    the default ensemble size on 4,000 synthetic rows, ~15 s). The cached model is signed by a key of its
    own (``var/bench/api_load_data/secrets``), copied into ``root`` with it: every scratch data dir would
    otherwise make a key of its own, refuse the model as unsigned and serve nothing (503 "model")."""
    from backend.models.registry import Registry
    from backend.training.train import train_and_register

    src, key = registry, None
    if src is None:
        src, key = MODEL_CACHE, KEY_DATA_DIR / DEV_KEY_FILE
        if retrain or not (src / "creditrisk").exists() or not key.exists():
            shutil.rmtree(src, ignore_errors=True)
            shutil.rmtree(KEY_DATA_DIR, ignore_errors=True)
            before = os.environ.get("CREDITRISK_DATA_DIR")
            os.environ["CREDITRISK_DATA_DIR"] = str(KEY_DATA_DIR)  # the signing key is made (and found) there
            try:
                t0 = time.perf_counter()
                report = train_and_register(None, rows=4000, seed=3, registry_root=src, name="creditrisk", cv_folds=2)
                Registry(src, name="creditrisk").promote(report["version"], gates_required=False)
            finally:
                if before is None:
                    os.environ.pop("CREDITRISK_DATA_DIR", None)
                else:
                    os.environ["CREDITRISK_DATA_DIR"] = before
            print(f"trained the bench model in {time.perf_counter() - t0:.0f} s ({src})")
    dest = root / "models"
    shutil.copytree(src, dest)
    if key is not None:
        (root / DEV_KEY_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(key, root / DEV_KEY_FILE)
    return dest


def prepare(*, database_url: str, retrain: bool, registry: Path | None, n_templates: int = 2000) -> Scratch:
    import sqlalchemy as sa
    from api_load_gen import write_templates

    from backend.container import build_services
    from backend.domain import parse_key_factors
    from backend.identity.clients import ApiClientService
    from backend.training.synthetic import generate

    root = Path(tempfile.mkdtemp(prefix="api-load-"))
    scratch = Scratch(root=root, database_url="", registry=_model(root, retrain, registry))
    if database_url:
        url = sa.make_url(database_url.replace("postgresql://", "postgresql+psycopg://", 1)
                          if database_url.startswith("postgresql://") else database_url)
        scratch.pg_name = f"creditrisk_bench_{uuid.uuid4().hex[:10]}"
        scratch.pg_admin = url.set(database="postgres").render_as_string(hide_password=False)
        admin = sa.create_engine(scratch.pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{scratch.pg_name}"'))
        admin.dispose()
        scratch.database_url = url.set(database=scratch.pg_name).render_as_string(hide_password=False)
    svc = build_services(scratch.settings(), migrate=True)
    try:
        clients = ApiClientService(svc.db, svc.clock, rounds=svc.settings.auth.bcrypt_rounds)
        info, secret = clients.add(CLIENT_NAME, role="risk_manager", scopes=["score", "decisions:read", "explain"],
                                   actor="bench")
        scratch.client_id, scratch.client_secret = info.client_id, secret
    finally:
        svc.close()
    frame = generate(n_templates, seed=17).drop(columns=["default", "pd_true", "application_id", "applied_at"],
                                                errors="ignore")
    apps = [{k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()
             if v is not None and not (isinstance(v, float) and math.isnan(v))} for rec in frame.to_dict("records")]
    for app in apps:  # the generator writes a file's "21;01" text; the API takes the bureau's codes as a list
        if "bureau_key_factors" in app:
            app["bureau_key_factors"] = list(parse_key_factors(app["bureau_key_factors"]))
    scratch.templates = root / "templates.tsv"
    write_templates(apps, scratch.templates)
    return scratch


def cleanup(scratch: Scratch, *, keep: bool) -> None:
    if scratch.pg_name and not keep:
        import sqlalchemy as sa

        admin = sa.create_engine(scratch.pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch.pg_name}" WITH (FORCE)'))
        admin.dispose()
    if not keep:
        shutil.rmtree(scratch.root, ignore_errors=True)


class Server:
    """``creditrisk serve`` as a subprocess on a free loopback port (pinned to ``cpus`` when given)."""

    def __init__(self, scratch: Scratch, *, workers: int, cpus: str | None, name: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "backend", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", str(workers), "--log-level", "warning"]
        if cpus is not None:
            cmd = ["taskset", "-c", cpus, *cmd]
        self.log = scratch.root / f"server-{name}.log"
        with self.log.open("w") as fh:
            self.proc = subprocess.Popen(cmd, env=scratch.env(**env), cwd=scratch.root, stdout=fh,  # noqa: S603
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.scratch = scratch
        self._wait_ready()

    def _wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}); see {self.log}")
            try:
                if httpx.get(self.url + "/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the server was not ready after {timeout:.0f} s; see {self.log}")

    def token(self) -> str:
        res = httpx.post(self.url + "/oauth/token", data={"grant_type": "client_credentials",
                                                           "client_id": self.scratch.client_id,
                                                           "client_secret": self.scratch.client_secret}, timeout=30)
        res.raise_for_status()
        return str(res.json()["access_token"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class PrivateRedis:
    """A redis-server of our own on a free port (no persistence), so we may stop it."""

    def __init__(self, root: Path) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",  # noqa: S607
                                      "--save", "", "--appendonly", "no", "--dir", str(root)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def score_some(server: Server, token: str, templates: list[dict[str, Any]], n: int, prefix: str) -> list[str]:
    """Score ``n`` applications (batches of 100) and return their decision ids (for explanation phases)."""
    from api_load_gen import body_for

    ids: list[str] = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        for start in range(0, n, 100):
            apps = [json.loads(body_for(templates, prefix, i)) for i in range(start, min(n, start + 100))]
            res = c.post("/v1/score", json={"applications": apps})
            res.raise_for_status()
            ids += [r["decision_id"] for r in res.json()["results"]]
    return ids
