"""Every metric the system records: name, kind, labels, unit, help. Adapters export exactly these.

Names carry no namespace and no ``_total`` suffix: the Prometheus adapter exposes a counter
``http_requests`` as ``creditrisk_http_requests_total`` and the EMF adapter as metric
``http_requests`` in namespace ``creditrisk``. Labels are bounded by construction: route
*templates* (never raw paths), normalised methods, status codes, configured provider/model names,
model versions, fixed enumerations. No applicant, application, decision or user identifier is
ever a label value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Latency buckets in seconds (API requests).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Literal["counter", "histogram"]
    help: str
    labels: tuple[str, ...]
    unit: Literal["Count", "Seconds", "None"] = "Count"  # CloudWatch unit
    buckets: tuple[float, ...] = ()


HTTP_REQUESTS = "http_requests"
HTTP_DURATION = "http_request_duration_seconds"
ERRORS = "errors"
CACHE_LOOKUPS = "cache_lookups"
CACHE_INTEGRITY_FAILURES = "cache_integrity_failures"
SCORES = "scores"
MODEL_FALLBACKS = "model_fallbacks"
EXPLANATIONS = "explanations"
EXPLANATION_FALLBACKS = "explanation_fallbacks"
LLM_CALLS = "llm_calls"
LLM_TOKENS = "llm_tokens"
LLM_COST = "llm_cost_usd"

CATALOG: dict[str, MetricSpec] = {s.name: s for s in (
    MetricSpec(HTTP_REQUESTS, "counter", "API requests by route template, method and status code",
               ("route", "method", "status")),
    MetricSpec(HTTP_DURATION, "histogram", "API request latency in seconds (middleware to last byte)",
               ("route", "method"), unit="Seconds", buckets=LATENCY_BUCKETS),
    MetricSpec(ERRORS, "counter", "Errors: api http_5xx/unhandled; llm provider error kinds",
               ("component", "kind")),
    MetricSpec(CACHE_LOOKUPS, "counter", "Cache reads by backend, key space and result (hit or miss)",
               ("backend", "keyspace", "result")),
    MetricSpec(CACHE_INTEGRITY_FAILURES, "counter",
               "Cache entries refused because their MAC did not verify (forged or altered; read as a miss)",
               ("backend", "keyspace")),
    MetricSpec(SCORES, "counter", "Applications scored through the API, by the model that served (primary/fallback)",
               ("model_role",)),
    MetricSpec(MODEL_FALLBACKS, "counter", "Scores served by the fallback model because the primary failed",
               ("model_version",)),
    MetricSpec(EXPLANATIONS, "counter", "Explanations produced, by what wrote the text shown (primary, fallback, template)",
               ("served_by",)),
    MetricSpec(EXPLANATION_FALLBACKS, "counter",
               "Explanations not written by the primary LLM: to the fallback LLM or the template, and why",
               ("to", "reason")),
    MetricSpec(LLM_CALLS, "counter", "LLM calls by provider, model and result (passed, failed fact-check, error)",
               ("provider", "model", "result")),
    MetricSpec(LLM_TOKENS, "counter", "LLM tokens by provider, model and direction (input, output)",
               ("provider", "model", "direction")),
    MetricSpec(LLM_COST, "counter", "LLM cost in USD by provider and model (recorded cost of each call)",
               ("provider", "model"), unit="None"),
)}

#: Methods kept as a label value; anything else is counted as ``OTHER``.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNKNOWN_METRIC = "unknown metric {name!r} (see backend/platform/metrics_catalog.py)"
WRONG_LABELS = "metric {name!r} takes the labels {want}, got {got}"
MAX_LABEL_LENGTH = 100


def check(name: str, labels: dict[str, str]) -> MetricSpec:
    """The spec of ``name``; raises ``ValueError`` for an unknown name or a wrong label set."""
    spec = CATALOG.get(name)
    if spec is None:
        raise ValueError(UNKNOWN_METRIC.format(name=name))
    if tuple(sorted(labels)) != tuple(sorted(spec.labels)):
        raise ValueError(WRONG_LABELS.format(name=name, want=list(spec.labels), got=sorted(labels)))
    return spec


def label_value(value: object) -> str:
    """A label value as a short string (bounded length)."""
    return str(value)[:MAX_LABEL_LENGTH]


def method_label(method: object) -> str:
    m = str(method or "").upper()
    return m if m in METHODS else "OTHER"
