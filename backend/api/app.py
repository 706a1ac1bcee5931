"""The scoring API's app factory. Nothing is built at import time.

``create_app(settings=None, services=None)``: with ``services`` (tests, one process serving both
console and API) the app uses them and leaves them open; otherwise its lifespan builds them from
``settings`` (or the environment) with :func:`backend.container.build_services` and closes them at
shutdown. ``X-Forwarded-For`` is believed only from ``api.trusted_proxies`` (none by default): the
app adds uvicorn's proxy-headers middleware for them, and ``creditrisk serve`` turns uvicorn's own
(which trusts loopback by default) off. The lifespan also loads the signing key ring and the rate limiter (see
:class:`backend.api.deps.ApiContext`); a production start without a configured key ring fails.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from backend.api import problems
from backend.api.deps import ApiContext
from backend.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from backend.container import Services, Settings, build_services, load_settings
from backend.platform.ports import RateLimiter

DESCRIPTION = """Score loan applications, read, explain and decide them: the console's services behind
OAuth 2.0 bearer tokens (`POST /oauth/token`, password grant for people, client credentials for
machine clients). Errors are RFC 9457 problem details (`application/problem+json`) that never repeat
the values sent. Writes accept an `Idempotency-Key`. Every response carries `X-Request-ID`.
Limits: body `max_body_bytes` (413), batch `max_batch` applications (422), per-client requests per
minute, a batch counting as its applications (429 with `Retry-After`). A database outage is 503 with
`Retry-After`."""


def create_app(settings: Settings | None = None, services: Services | None = None, *,
               limiter: RateLimiter | None = None) -> FastAPI:
    cfg = services.settings if services is not None else settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services if services is not None else build_services(cfg)
        try:
            app.state.api = ApiContext(svc, cfg, limiter)
        except Exception:
            if services is None:
                svc.close()
            raise
        _warm_up(svc)
        try:
            yield
        finally:
            app.state.api.close()
            svc.metrics.flush()
            if services is None:
                svc.close()

    from backend.api import routes_health, routes_metrics, routes_oauth, routes_v1

    docs = cfg.api.docs
    app = FastAPI(title="creditrisk scoring API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url=None, openapi_url="/openapi.json" if docs else None)
    problems.install(app)
    app.include_router(routes_health.router)
    app.include_router(routes_metrics.router)  # GET /metrics (Prometheus text; see routes_metrics)
    app.include_router(routes_oauth.router)
    app.include_router(routes_v1.build_router(cfg.api.max_batch))
    app.add_middleware(BodyLimitMiddleware, max_bytes=cfg.api.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    if cfg.api.trusted_proxies:  # the only place forwarded headers are read (uvicorn's own handling is off)
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(cfg.api.trusted_proxies))  # outermost
    _problem_media_types(app)
    return app


def _warm_up(svc: Services) -> None:
    """Load the champion now, so the first request does not pay for it (a missing model is reported
    by /health/ready and answered 503, never a failed start)."""
    try:
        svc.models.get("champion")
    except Exception as exc:  # noqa: BLE001 - readiness reports it
        logging.getLogger("creditrisk.api").warning("no model to warm up: %s", type(exc).__name__)


def _problem_media_types(app: FastAPI) -> None:
    """Document error responses as ``application/problem+json`` (what the handlers send)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            for ops in spec.get("paths", {}).values():
                for op in ops.values():
                    for code, resp in op.get("responses", {}).items():
                        content = resp.get("content", {})
                        body = content.get("application/json", {})
                        if code[0] in "45" and body.get("schema", {}).get("$ref", "").endswith("/ProblemOut"):
                            content[problems.PROBLEM_JSON] = content.pop("application/json")
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
