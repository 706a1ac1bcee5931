"""Monitoring settings (``CREDITRISK_MONITORING__...``): drift bins and bands, alert thresholds,
notifications, retraining and canary steps. Nested into :class:`backend.platform.config.Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

#: PSI bands (the usual industry reading): below 0.10 stable, 0.10-0.25 watch, above 0.25 act.
PSI_WATCH = 0.10
PSI_ACT = 0.25


class AlertThresholds(BaseModel):
    """The seed's monitors. Each is a rule of :mod:`backend.alerts.service`."""

    accuracy_min: float = Field(0.88, ge=0, le=1)  # realized accuracy on matured outcomes -> retrain
    latency_p95_max_s: float = Field(30.0, gt=0)  # end-to-end decision latency p95
    error_rate_max: float = Field(0.01, ge=0, le=1)
    psi_max: float = Field(PSI_ACT, gt=0)
    cost_per_request_max_usd: float = Field(0.60, gt=0)
    disparate_impact_min: float = Field(0.80, gt=0, le=1)  # internal screening threshold -> deployments halted
    min_rows: int = Field(200, ge=1)  # a rule does not fire on fewer rows than this


class MonitoringSettings(BaseModel):
    psi_bins: int = Field(10, ge=2, le=100)
    psi_watch: float = Field(PSI_WATCH, gt=0)
    psi_act: float = Field(PSI_ACT, gt=0)
    maturity_months: int = Field(12, ge=1, le=60)  # a vintage's default label counts as mature after this
    fairness_threshold: float = Field(0.80, gt=0, le=1)  # disparate-impact screening threshold (four-fifths)
    fairness_min_group: int = Field(30, ge=1)  # groups smaller than this are shown but not judged
    bootstrap_samples: int = Field(500, ge=50, le=10_000)
    thresholds: AlertThresholds = AlertThresholds()
    notifier: Literal["log", "webhook"] = "log"
    webhook_url: str = ""
    webhook_timeout: float = Field(5.0, gt=0, le=60)
    retrain_every_days: int = Field(30, ge=1)
    retrain_window_months: int = Field(12, ge=1, le=120)
    canary_steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100])
    check_every_minutes: float = Field(15.0, ge=0)  # the console judges the alert rules this often (0: never)
    refresh_every_hours: float = Field(24.0, ge=0)  # ... and recomputes the summaries they read this often (0: never)

    @field_validator("canary_steps")
    @classmethod
    def _steps(cls, v: list[int]) -> list[int]:
        if not v or v != sorted(set(v)) or v[0] <= 0 or v[-1] != 100:
            raise ValueError("must be increasing percentages ending at 100, e.g. [5, 25, 50, 100]")
        return v

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v
