"""The SageMaker serving container's HTTP server: ``GET /ping`` and ``POST /invocations`` on port 8080.

SageMaker starts the image as ``docker run IMAGE serve`` (``docker/sagemaker/serve`` runs
``python -m backend sagemaker-serve``), extracts ``model.tar.gz`` into ``/opt/ml/model``, sends
``GET /ping`` until it answers 200 and then ``POST /invocations``. Here:

* ``/ping`` answers 200 only when the model is loaded and verified (503 with the reason otherwise);
* ``/invocations`` answers 200 with the scores (see :mod:`backend.serving.scorer`), 4xx problems
  (``application/problem+json``) for anything wrong with the request (bad media type 415, bad
  ``Accept`` 406, body over the limit 413, malformed body 400, invalid applications 422), 503 when the
  model is not loaded.

The model comes from ``--model-dir`` (default ``/opt/ml/model``): an extracted package (its
``serving.json`` is verified file by file, then the registry checks every artifact's checksum); a
folder that is itself a registry; or, when the folder holds neither (a loopback run outside
SageMaker), the local registry of the settings. A package that fails verification is never replaced
by anything else: the container stays unready and says why.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from backend.api.problems import PROBLEM_JSON, Problem, problem_body
from backend.container.settings import Settings, load_settings
from backend.models import SERVING_JSON, ModelProvider, ModelSettings, PackageError, model_keys, read_package
from backend.serving.scorer import ContainerScorer

log = logging.getLogger("creditrisk.serving")

DEFAULT_MODEL_DIR = Path("/opt/ml/model")
DEFAULT_PORT = 8080
PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
MODEL_DIR_ENV = "CREDITRISK_SERVING_MODEL_DIR"
MAX_BATCH_ENV = "CREDITRISK_SERVING_MAX_BATCH"
MSG_TOO_LARGE = "The body is larger than {n} bytes."
INTERNAL_DETAIL = "An unexpected error occurred; it has been logged."


class _Broken:
    """Stands in for the model provider when the package failed verification (``/ping`` says why)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def get(self, ref: str = "champion") -> Any:
        from backend.models import ModelUnavailable

        raise ModelUnavailable(self.reason)


def open_model(model_dir: Path, settings: Settings) -> tuple[Any, str]:
    """The model provider for ``model_dir`` and a description of where the model comes from."""
    model_dir = Path(model_dir)
    local = ModelSettings(registry_dir=settings.model.registry_dir, name=settings.model.name)
    try:  # the verification keys (CREDITRISK_MODEL__VERIFY_KEYS is enough: serving never signs)
        keys = model_keys(settings.model, data_dir=settings.data_dir, env=settings.env)
    except (ValueError, OSError) as exc:
        return _Broken(f"no model verification key: {exc}"), f"{model_dir} (no verification key)"
    if (model_dir / SERVING_JSON).exists():
        try:
            doc = read_package(model_dir)
        except PackageError as exc:
            return _Broken(str(exc)), f"package {model_dir} (failed verification)"
        ms = ModelSettings(registry_dir=model_dir, name=str(doc["name"]))
        return ModelProvider(ms, settings.policy, keys=keys), f"package {model_dir} ({doc['name']} {doc['version']})"
    if (model_dir / settings.model.name / "aliases.json").exists():
        ms = ModelSettings(registry_dir=model_dir, name=settings.model.name)
        return ModelProvider(ms, settings.policy, keys=keys), f"registry {model_dir}"
    log.warning("%s holds no model package: serving the local registry %s", model_dir, local.registry_dir)
    return ModelProvider(local, settings.policy, keys=keys), f"local registry {local.registry_dir}"


def _problem(exc: Problem) -> Response:
    return JSONResponse(problem_body(exc.status_code, exc.slug, exc.title, exc.detail, None, exc.extra),
                        status_code=exc.status_code, media_type=PROBLEM_JSON)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, "too-large", "Body too large", MSG_TOO_LARGE.format(n=limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "too-large", "Body too large", MSG_TOO_LARGE.format(n=limit))
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(scorer: ContainerScorer, *, max_body_bytes: int = 1_000_000) -> FastAPI:
    app = FastAPI(title="creditrisk SageMaker serving container", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.scorer = scorer

    @app.get("/ping")
    def ping() -> Response:
        status, body = scorer.ping()
        return JSONResponse(body, status_code=status)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            body = await _read_body(request, max_body_bytes)
            out = await run_in_threadpool(scorer.invoke, body, request.headers.get("content-type"),
                                          request.headers.get("accept"))
            status = 200
            return Response(out, media_type="application/json")
        except Problem as exc:
            status = exc.status_code
            return _problem(exc)
        except Exception:  # a server fault, never the caller's input: logged without the body
            log.exception("invocation failed")
            return _problem(Problem(500, "internal", "Internal error", INTERNAL_DETAIL))
        finally:
            log.info("invocation status=%d ms=%.1f", status, (time.perf_counter() - started) * 1000)

    return app


def build(model_dir: Path | None = None, *, settings: Settings | None = None, max_batch: int | None = None) -> FastAPI:
    """The app for ``model_dir`` with the model loaded now (``/ping`` reports a failure)."""
    settings = settings or load_settings()
    provider, source = open_model(model_dir or DEFAULT_MODEL_DIR, settings)
    scorer = ContainerScorer(provider, max_batch=max_batch or settings.model.sagemaker_max_batch, source=source)
    if scorer.load() is None:
        log.error("model not loaded (%s): %s", source, scorer.error)
    else:
        log.info("serving %s", source)
    return create_app(scorer, max_body_bytes=settings.api.max_body_bytes)


def app_from_env() -> FastAPI:
    """uvicorn factory (one per worker process): the model folder and batch limit come from the environment."""
    batch = os.environ.get(MAX_BATCH_ENV, "")
    return build(Path(os.environ.get(MODEL_DIR_ENV) or DEFAULT_MODEL_DIR), max_batch=int(batch) if batch else None)


def default_port() -> int:
    value = os.environ.get(PORT_ENV, "")
    return int(value) if value.isdigit() and 0 < int(value) < 65536 else DEFAULT_PORT


def run(model_dir: Path, *, host: str, port: int, workers: int | None = None, max_batch: int | None = None) -> None:
    """Serve until stopped (uvicorn; ``SAGEMAKER_MODEL_SERVER_WORKERS`` worker processes by default 1)."""
    import uvicorn

    os.environ[MODEL_DIR_ENV] = str(model_dir)
    if max_batch:
        os.environ[MAX_BATCH_ENV] = str(max_batch)
    env_workers = os.environ.get(WORKERS_ENV, "")
    n = workers or (int(env_workers) if env_workers.isdigit() and int(env_workers) > 0 else 1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run("backend.serving.app:app_from_env", factory=True, host=host, port=port, workers=n,
                access_log=False, timeout_keep_alive=75, log_level="info",
                proxy_headers=False)  # no X-Forwarded-For is believed
