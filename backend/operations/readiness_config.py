"""Production-readiness settings (``CREDITRISK_READINESS__...``): how old each piece of evidence may be
before the checklist reads it as stale, and the targets it is judged against. Nested into
:class:`backend.platform.config.Settings` as ``readiness``; read by :mod:`backend.operations.readiness`."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

SEVERITIES = ("critical", "high", "medium", "low", "info")


class ReadinessSettings(BaseModel):
    # -- staleness windows: evidence older than this reads red ("stale") -----------------------------
    fairness_max_age_days: float = Field(8.0, gt=0)  # the weekly monitor run, plus a day of slack
    load_test_max_age_days: float = Field(30.0, gt=0)
    security_scan_max_age_days: float = Field(7.0, gt=0)
    backup_drill_max_age_days: float = Field(7.0, gt=0)
    rollback_max_age_days: float = Field(90.0, gt=0)  # a rollback (real or drill) at least once a quarter
    # -- targets ---------------------------------------------------------------------------------------
    min_holdout_auc: float = Field(0.70, gt=0.5, le=1)  # the champion's held-out AUC
    load_rps: float = Field(200.0, gt=0)  # the fixed rate the load test must have run at (issue #8)
    load_p99_ms: float = Field(50.0, gt=0)
    load_max_errors: int = Field(0, ge=0)
    load_min_ratio: float = Field(0.8, gt=0, le=10)  # /v1/score throughput over the trivial endpoint's
    load_redis_down_extra_ms: float = Field(10.0, ge=0)  # p99 growth allowed with Redis down (when measured)
    # RTO/RPO targets are the backup's own: CREDITRISK_OPS__RTO_TARGET_SECONDS / RPO_TARGET_SECONDS
    blocking_severities: list[str] = Field(default_factory=lambda: ["critical", "high"])

    @field_validator("blocking_severities")
    @classmethod
    def _severities(cls, v: list[str]) -> list[str]:
        v = [s.strip().lower() for s in v if s.strip()]
        bad = [s for s in v if s not in SEVERITIES]
        if bad or not v:
            raise ValueError(f"must be a non-empty list of {', '.join(SEVERITIES)} (got {bad or v})")
        return v
