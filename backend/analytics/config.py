"""Product analytics settings (``CREDITRISK_ANALYTICS__...`` and ``CREDITRISK_COSTS__...``): phase
success criteria, the sequential-test error rate, and the price table for cost tracking."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PhaseCriterion(BaseModel):
    """One success criterion: ``metric`` compared with ``target`` (``direction`` "max" means the
    metric must stay below the target, "min" above it)."""

    metric: str
    target: float
    direction: str = Field("max", pattern="^(min|max)$")
    label: str = ""


def _seed_criteria() -> dict[str, list[PhaseCriterion]]:
    """The seed's targets: shadow agreement > 95%; pilot override rate < 10%; scaled latency p95 <
    30 s and adoption > 60%."""
    return {
        "shadow": [PhaseCriterion(metric="agreement_rate", target=0.95, direction="min", label="AI/officer agreement")],
        "pilot": [PhaseCriterion(metric="override_rate", target=0.10, direction="max", label="Override rate")],
        "scaled": [PhaseCriterion(metric="latency_p95_s", target=30.0, direction="max", label="Latency p95"),
                   PhaseCriterion(metric="adoption_rate", target=0.60, direction="min", label="Adoption")],
        "full": [],
    }


class AnalyticsSettings(BaseModel):
    alpha: float = Field(0.05, gt=0, lt=0.5)
    power: float = Field(0.80, gt=0.5, lt=1)
    criteria: dict[str, list[PhaseCriterion]] = Field(default_factory=_seed_criteria)
    guardrail_fairness_min: float = Field(0.80, gt=0, le=1)
    guardrail_factcheck_fail_max: float = Field(0.05, ge=0, le=1)
    guardrail_error_rate_max: float = Field(0.01, ge=0, le=1)


class CostSettings(BaseModel):
    """Unit prices (USD). Example list prices, configurable; the cost pages show which are used.

    LLM token prices live in ``llm.prices``. Serving is billed per instance-hour whether busy or
    idle (a real-time endpoint); serverless inference per GB-second of compute actually used.
    """

    serving_instance_hour: float = Field(0.23, ge=0)  # e.g. ml.m5.large real-time endpoint
    serving_instances: int = Field(2, ge=0)
    serverless_gb_second: float = Field(0.00002, ge=0)
    serverless_memory_gb: float = Field(2.0, gt=0)
    lambda_request: float = Field(0.0000002, ge=0)
    lambda_gb_second: float = Field(0.0000166667, ge=0)
    lambda_memory_gb: float = Field(0.5, gt=0)
    database_instance_hour: float = Field(0.17, ge=0)  # e.g. db.m6g.large on demand
    database_reserved_discount: float = Field(0.40, ge=0, lt=1)
    storage_gb_month: float = Field(0.115, ge=0)
    cache_instance_hour: float = Field(0.068, ge=0)
    monitoring_month: float = Field(50.0, ge=0)
