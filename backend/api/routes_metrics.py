"""``GET /metrics``: the Prometheus text exposition (format 0.0.4) of this process's metrics.

Access: with ``CREDITRISK_METRICS__TOKEN`` set, the scraper sends ``Authorization: Bearer <token>``
(compared in constant time; 401 otherwise). Without a token the endpoint is open in dev and test
and refused with 403 in production, so a production API never publishes its metrics by accident.
It is left out of the OpenAPI document (an operations endpoint, not part of the scoring API).
What it serves holds no personal data: labels are route templates, methods, status codes,
enumerations and configured model/provider names (see ``backend/platform/metrics_catalog.py``).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from backend.api.deps import get_ctx
from backend.api.problems import Problem

router = APIRouter(tags=["operations"])
TOKEN_REQUIRED = "Send the metrics token: 'Authorization: Bearer <token>' (CREDITRISK_METRICS__TOKEN)."  # noqa: S105
CLOSED_IN_PRODUCTION = ("The metrics endpoint is closed in production until CREDITRISK_METRICS__TOKEN is set "
                        "(the token the scraper sends).")
NOT_SCRAPEABLE = ("Metrics go to {backend!r}, not to this endpoint: set CREDITRISK_METRICS__BACKEND=prometheus "
                  "to scrape them.")


def _authorized(request: Request, expected: str) -> bool:
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    ctx = get_ctx(request)
    cfg = ctx.settings.metrics
    token = cfg.token.get_secret_value()
    if token:
        if not _authorized(request, token):
            raise Problem(401, "unauthorized", "Unauthorized", TOKEN_REQUIRED,
                          headers={"WWW-Authenticate": 'Bearer realm="creditrisk-metrics"'})
    elif ctx.settings.env == "production":
        raise Problem(403, "forbidden", "Forbidden", CLOSED_IN_PRODUCTION)
    rendered = ctx.services.metrics.exposition()
    if rendered is None:
        raise Problem(404, "not-found", "Not found", NOT_SCRAPEABLE.format(backend=ctx.services.metrics.backend))
    body, content_type = rendered
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
