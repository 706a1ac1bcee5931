"""Liveness (the process answers) and readiness (model, database and cache are usable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from backend.api.deps import get_ctx
from backend.api.jsonbody import StrictJSONRoute
from backend.api.schemas import HealthOut

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)
REQUIRED_CHECKS = ("model", "database")  # without them nothing can be scored
DEGRADABLE_CHECKS = ("cache",)  # scoring goes on without the cache (slower): "degraded", still 200


@router.get("/health/live", response_model=HealthOut, summary="The process is up")
def live() -> HealthOut:
    return HealthOut(status="alive")


@router.get("/health/ready", response_model=HealthOut, summary="Ready to score (503 when not)",
            responses={503: {"model": HealthOut, "description": "A required backend is not usable"}})
def ready(request: Request) -> JSONResponse:
    """The same health checks as ``creditrisk doctor``. 503 when the model or the database is not
    usable; ``degraded`` (still 200) when only the cache is down, because scoring goes on without it
    and taking every replica out of rotation for a cache outage would turn it into a full outage.
    Details stay in ``creditrisk doctor`` (this probe is unauthenticated)."""
    ctx = get_ctx(request)
    report = ctx.services.health.report()
    checks = {name: {"ok": bool(r.get("ok")), "backend": str(r.get("backend", ""))} for name, r in report.items()}
    checks["rate_limiter"] = {"ok": True, "backend": ctx.limiter.describe()}  # degrades, never blocks
    ok = all(checks.get(name, {}).get("ok") for name in REQUIRED_CHECKS)
    degraded = not all(checks.get(name, {}).get("ok", True) for name in DEGRADABLE_CHECKS)
    body = HealthOut(status="not_ready" if not ok else "degraded" if degraded else "ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503,
                        headers={"Cache-Control": "no-store"})
