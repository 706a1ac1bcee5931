"""Helpers for the SageMaker tests: the serving container as a real process on loopback, and a small
stand-in for the SageMaker runtime front end (``POST /endpoints/{name}/invocations``) that forwards to
it, so boto3's own ``sagemaker-runtime`` client can call the container over HTTP.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from proc_helpers import free_port, stop, wait_until_ok

ROOT = Path(__file__).resolve().parents[2]
SERVE_SCRIPT = ROOT / "docker" / "sagemaker" / "serve"
STARTUP_SECONDS = 90
APPLICATION = {"application_id": "APP-1", "loan_amount": 12000, "annual_income": 58000, "credit_score": 702,
               "employment_type": "full_time", "debt_to_income": 0.31}


def package_into(registry_root: Path, tmp: Path) -> tuple[Path, Any]:
    """``creditrisk deploy package`` of the champion, extracted as SageMaker does into ``tmp/opt_ml_model``."""
    from backend.models.package import build_package, extract_package
    from backend.models.registry import Registry

    info = build_package(Registry(registry_root, name="creditrisk"), "champion", tmp / "model.tar.gz")
    return extract_package(info.path, tmp / "opt_ml_model"), info


def verify_key() -> str:
    """The public key of the session's model signing key (what a serving container is given)."""
    import base64

    from backend.models.signing import private_from_b64, public_raw

    private = private_from_b64(os.environ["CREDITRISK_MODEL__SIGNING_KEY"])
    return base64.b64encode(public_raw(private.public_key())).decode()


@contextmanager
def serving_process(model_dir: Path, log_path: Path, *, registry_dir: Path | None = None) -> Iterator[str]:
    """Run ``docker/sagemaker/serve`` (the container's entry) on a free loopback port; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITRISK_", "SAGEMAKER_"))}
    env.update(SM_MODEL_DIR=str(model_dir), SAGEMAKER_BIND_TO_PORT=str(port), CREDITRISK_SERVING_HOST="127.0.0.1",
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
               CREDITRISK_DATA_DIR=str(log_path.parent))
    if registry_dir is not None:
        env["CREDITRISK_MODEL__REGISTRY_DIR"] = str(registry_dir)
    env["CREDITRISK_MODEL__VERIFY_KEYS"] = verify_key()  # serving holds the public key only, never the signing key
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(SERVE_SCRIPT)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/ping", proc, seconds=STARTUP_SECONDS, name="serve", interval=0.2,
                      log=lambda: log_path.read_text(errors="replace"))
        yield url
    finally:
        stop(proc)


def post(url: str, body: bytes, content_type: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    conn.request("POST", "/invocations", body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


# -- the SageMaker runtime front end ----------------------------------------------------------------
class RuntimeShim:
    """``POST /endpoints/{endpoint}/invocations`` → the container's ``/invocations``, answered the way the
    SageMaker runtime answers (the container's 4xx becomes a ``ModelError``). ``faults`` is a list of
    what to do instead of forwarding, one per request: ``throttle`` (400 ThrottlingException), ``503``
    (ServiceUnavailable), ``500`` (InternalFailure), ``slow`` (answer after 1 s: past a short read timeout),
    ``garbage``."""

    def __init__(self, container_url: str, endpoint: str) -> None:
        self.container_url, self.endpoint = container_url, endpoint
        self.faults: list[str] = []
        self.requests: list[dict[str, Any]] = []
        shim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                shim.requests.append({"path": self.path, "content_type": self.headers.get("content-type"),
                                      "accept": self.headers.get("accept"), "body": body})
                if self.path != f"/endpoints/{shim.endpoint}/invocations":
                    return self._send(400, {"message": "Endpoint not found"}, error="ValidationError")
                fault = shim.faults.pop(0) if shim.faults else None
                if fault == "throttle":
                    return self._send(400, {"message": "Rate exceeded"}, error="ThrottlingException")
                if fault in ("503", "500"):
                    name = "ServiceUnavailable" if fault == "503" else "InternalFailure"
                    return self._send(int(fault), {"message": "try later"}, error=name)
                if fault == "slow":  # past the client's read timeout; it has given up by the time this answers
                    time.sleep(1.0)
                    return self._send(500, {"message": "too late"}, error="InternalFailure")
                if fault == "garbage":
                    return self._send(200, {"predictions": [{"pd": 7}]})
                status, headers, data = post(shim.container_url, body, self.headers.get("content-type", ""),
                                             self.headers.get("accept"))
                if status >= 400:
                    return self._send(424, {"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": status,
                                            "OriginalMessage": data.decode(errors="replace"),
                                            "Message": f"Received client error ({status}) from model"},
                                      error="ModelError")
                return self._send(200, data, content_type=headers.get("content-type", "application/json"))

            def _send(self, status: int, payload: Any, *, error: str | None = None,
                      content_type: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
                    if error:
                        self.send_header("x-amzn-ErrorType", f"{error}:http://internal.amazon.com/coral/")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (read timeout)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RuntimeShim:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
