"""The alert rules: the seed's monitors as data, a pure judge, and the readers of each metric.

Each rule compares one figure with a threshold of :class:`backend.monitoring.config.AlertThresholds`:

========== ===================================================== ============ ===================
rule       figure (as of ``at``)                                 fires when   action
========== ===================================================== ============ ===================
accuracy   realized accuracy, newest matured vintage              below        retrain
latency    end-to-end latency p95 per decision, last 7 days       above        notify
errors     error rate of the scoring requests, last 7 days        above        notify
drift      highest PSI (features and score), newest period        above        notify
cost       cost per scoring request, last 30 days                 above        notify
fairness   lowest disparate-impact ratio, newest period           below        halt_deployments
========== ===================================================== ============ ===================

A rule with too little data (``n < thresholds.min_rows`` or a reader returning ``None``) reads
"no data" and never fires. No figure is computed here: each reader calls the one function that
defines its figure in the feature that owns it (latency and error rate:
:class:`backend.analytics.LatencyService`; cost: :class:`backend.analytics.CostService`; accuracy,
drift and fairness: the monitoring services' stored summaries), so a rule reads exactly what the
pages show.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backend.models import HALT_ACTION
from backend.monitoring import AlertThresholds

OK, FIRING, NO_DATA = "ok", "firing", "no_data"
STATUS_LABELS = {OK: "ok", FIRING: "firing", NO_DATA: "no data"}
NO_READING = "no reading yet"
TOO_FEW_ROWS = "only {n:,} rows (a rule needs at least {min_rows:,})"
NOT_A_NUMBER = "the reader returned a value that is not a number"


@dataclass(frozen=True)
class Measurement:
    """What a reader found: the figure, how many rows it rests on (None: not applicable), its period."""

    value: float | None
    n: int | None = None
    period: str = ""
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    name: str
    label: str
    metric: str
    direction: str  # "below": fires when value < threshold; "above": when value > threshold
    threshold_key: str  # the field of AlertThresholds
    action: str  # notify | retrain | halt_deployments
    severity: str  # warning | critical
    unit: str  # ratio | seconds | usd | psi | di
    window: str  # what the figure covers, in words


RULES: tuple[Rule, ...] = (
    Rule("accuracy", "Model accuracy", "realized_accuracy", "below", "accuracy_min", "retrain", "warning", "ratio",
         "newest vintage with matured outcomes"),
    Rule("latency", "Decision latency p95", "latency_p95_s", "above", "latency_p95_max_s", "notify", "warning",
         "seconds", "final decisions scored in the last 7 days (scoring + explanation calls)"),
    Rule("errors", "Error rate", "error_rate", "above", "error_rate_max", "notify", "warning", "ratio",
         "last 7 days"),
    Rule("drift", "Drift (highest PSI)", "max_psi", "above", "psi_max", "notify", "warning", "psi",
         "newest drift period"),
    Rule("cost", "Cost per request", "cost_per_request_usd", "above", "cost_per_request_max_usd", "notify",
         "warning", "usd", "last 30 days"),
    Rule("fairness", "Lowest disparate impact", "min_disparate_impact", "below", "disparate_impact_min",
         HALT_ACTION, "critical", "di", "newest fairness period"),
)
RULES_BY_NAME = {r.name: r for r in RULES}
ACTION_LABELS = {"notify": "notify", "retrain": "retrain", HALT_ACTION: "deployments halted"}


@dataclass(frozen=True)
class Reading:
    """One rule evaluated as of a moment: the figure, its threshold and the verdict."""

    rule: str
    label: str
    metric: str
    value: float | None
    threshold: float
    status: str  # ok | firing | no_data
    detail: str
    n: int | None
    period: str
    action: str
    severity: str
    unit: str
    direction: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        return self.status == FIRING


def threshold_for(rule: Rule, thresholds: AlertThresholds) -> float:
    return float(getattr(thresholds, rule.threshold_key))


def fmt(value: float | None, unit: str) -> str:
    """A figure in words for messages and tables."""
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "seconds":
        return f"{value:,.1f} s"
    if unit == "usd":
        return f"${value:,.4f}" if abs(value) < 0.01 else f"${value:,.2f}"
    return f"{value:.3f}"


def judge(rule: Rule, m: Measurement | None, threshold: float, min_rows: int) -> Reading:
    """The verdict of ``rule`` on a measurement (pure).

    No measurement, a missing or non-finite value, or fewer than ``min_rows`` rows read "no data"
    and never fire. Otherwise the rule fires when the value is strictly beyond the threshold.
    """
    def reading(status: str, detail: str) -> Reading:
        value = None if m is None or m.value is None or not _finite(m.value) else float(m.value)
        return Reading(rule.name, rule.label, rule.metric, value, float(threshold), status, detail,
                       None if m is None else m.n, "" if m is None else m.period, rule.action, rule.severity,
                       rule.unit, rule.direction, {} if m is None else dict(m.extra))

    if m is None or m.value is None:
        return reading(NO_DATA, (m.detail if m is not None and m.detail else NO_READING))
    if not _finite(m.value):
        return reading(NO_DATA, NOT_A_NUMBER)
    if m.n is not None and m.n < min_rows:
        return reading(NO_DATA, TOO_FEW_ROWS.format(n=m.n, min_rows=min_rows))
    value = float(m.value)
    beyond = value < threshold if rule.direction == "below" else value > threshold
    return reading(FIRING if beyond else OK, m.detail)


def message(r: Reading) -> str:
    """The one-line alert message of a firing reading."""
    where = ", ".join(x for x in (r.period, f"n={r.n:,}" if r.n is not None else "") if x)
    return (f"{r.label} {fmt(r.value, r.unit)} is {r.direction} the threshold {fmt(r.threshold, r.unit)}"
            + (f" ({where})" if where else "") + f"; action: {ACTION_LABELS.get(r.action, r.action)}.")


def _finite(v: object) -> bool:
    try:
        return math.isfinite(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


# -- readers: the monitoring and analytics services -------------------------------------------------------------------
class SourceMissing(LookupError):
    """The summary a rule reads is not available in this deployment: the rule reads "no data", not an error."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class AlertSources:
    """The monitoring and analytics services the rules read (and the monitor refreshes): drift, performance,
    fairness, experiments, costs and latency (which also answers the error rate). Each is a getter, so an
    evaluation builds only the services it touches; a source left out reads "no data" (``SourceMissing``)."""

    NAMES = ("drift", "performance", "fairness", "experiments", "costs", "latency")

    def __init__(self, drift: Callable[[], Any] | None = None, performance: Callable[[], Any] | None = None,
                 fairness: Callable[[], Any] | None = None, experiments: Callable[[], Any] | None = None,
                 costs: Callable[[], Any] | None = None, latency: Callable[[], Any] | None = None) -> None:
        self._getters = {"drift": drift, "performance": performance, "fairness": fairness,
                         "experiments": experiments, "costs": costs, "latency": latency}

    def get(self, name: str) -> Any:
        getter = self._getters.get(name)
        if getter is None:
            raise SourceMissing(name)
        return getter()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in AlertSources.NAMES:
            raise AttributeError(name)
        return self.get(name)


@dataclass(frozen=True)
class ReadContext:
    services: AlertSources
    at: datetime


def read_accuracy(ctx: ReadContext) -> Measurement | None:
    got = ctx.services.performance.latest_accuracy(before=ctx.at)
    if got is None:
        return None
    value, period, n = got
    return Measurement(None if value is None else float(value), None if n is None else int(n), str(period))


def read_latency(ctx: ReadContext) -> Measurement:
    f = ctx.services.latency.recent(ctx.at)
    return Measurement(f.p95_s, f.n, f.period, "" if f.n else "no final decisions scored in the window",
                       {"low": f.low_s, "high": f.high_s})


def read_errors(ctx: ReadContext) -> Measurement:
    e = ctx.services.latency.errors(ctx.at)
    period = f"{e.start:%Y-%m-%d}..{(e.end - timedelta(microseconds=1)):%Y-%m-%d}"
    if not e.requests:
        return Measurement(None, 0, period, "no scoring requests in the window")
    return Measurement(e.value, e.requests, period, f"{e.errors:,} of {e.requests:,} requests ({e.scoring_fallbacks:,} "
                       f"scoring fallbacks, {e.llm_failures:,} LLM failures without a working fallback)",
                       {"requests": e.requests, "errors": e.errors, "scoring_fallbacks": e.scoring_fallbacks,
                        "llm_failures": e.llm_failures})


def read_drift(ctx: ReadContext) -> Measurement | None:
    got = ctx.services.drift.latest_max_psi(before=ctx.at)
    if got is None:
        return None
    value, period = got
    return Measurement(None if value is None else float(value), None, str(period))


def read_cost(ctx: ReadContext) -> Measurement | None:
    b = ctx.services.costs.recent(ctx.at)
    if b is None:
        return None
    u = b.usage
    period = f"{u.start:%Y-%m-%d}..{(u.end - timedelta(microseconds=1)):%Y-%m-%d}"
    return Measurement(b.per_request, u.requests, period, "" if b.per_request is not None else
                       "no cost figure for the window (no scoring requests)")


def read_fairness(ctx: ReadContext) -> Measurement | None:
    got = ctx.services.fairness.latest_min_di(before=ctx.at)
    if got is None:
        return None
    value, period, detail = got
    if isinstance(detail, dict):
        return Measurement(None if value is None else float(value), None, str(period),
                           ", ".join([f"{k}: {v}" for k, v in detail.items()
                                      if k != "value" and isinstance(v, str | int | bool)][:4]), {"fairness": detail})
    return Measurement(None if value is None else float(value), None, str(period), str(detail or ""))


READERS: dict[str, Callable[[ReadContext], Measurement | None]] = {
    "accuracy": read_accuracy, "latency": read_latency, "errors": read_errors, "drift": read_drift,
    "cost": read_cost, "fairness": read_fairness,
}
#: The source each reader needs (a missing source reads "no data", not an error).
READER_SERVICE = {"accuracy": "performance", "latency": "latency", "errors": "latency", "drift": "drift",
                  "cost": "costs", "fairness": "fairness"}
