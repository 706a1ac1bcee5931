"""The alert rules: the seed's monitors as data, a pure judge, and the readers of each metric.

Each rule compares one figure with a threshold of :class:`backend.config_monitoring.AlertThresholds`:

========== ===================================================== ============ ===================
rule       figure (as of ``at``)                                 fires when   action
========== ===================================================== ============ ===================
accuracy   realized accuracy, newest matured vintage              below        retrain
latency    end-to-end latency p95, last 7 days                    above        notify
errors     error rate, last 7 days                                above        notify
drift      highest PSI (features and score), newest period        above        notify
cost       LLM cost per scoring request, last 30 days             above        notify
fairness   lowest disparate-impact ratio, newest period           below        halt_deployments
========== ===================================================== ============ ===================

A rule with too little data (``n < thresholds.min_rows`` or a reader returning ``None``) reads
"no data" and never fires. The latency and error-rate figures are computed here, in SQL, from the
records (definitions in :func:`latency_p95` and :func:`error_rate`); the others are read from the
monitoring services (drift, performance, fairness, costs), which store their own summaries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from backend.config_monitoring import AlertThresholds
from backend.db.tables import LLMUsageRow, Prediction
from backend.services.halts import HALT_ACTION

OK, FIRING, NO_DATA = "ok", "firing", "no_data"
STATUS_LABELS = {OK: "ok", FIRING: "firing", NO_DATA: "no data"}
SHORT_WINDOW = timedelta(days=7)  # latency and error rate
COST_WINDOW = timedelta(days=30)
LATENCY_QUANTILE = 0.95
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
         "seconds", "last 7 days (scoring + explanation calls)"),
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


def nearest_rank(n: int, q: float) -> int:
    """Zero-based index of the nearest-rank ``q`` quantile among ``n`` sorted values.

    Parameters
    ----------
    n : int
        Number of values (at least 1).
    q : float
        Quantile in (0, 1].

    Returns
    -------
    int
        ``ceil(q * n) - 1``: the smallest value with at least ``q`` of the values at or below it
        (numpy's ``method="inverted_cdf"``).
    """
    if n < 1:
        raise ValueError("nearest_rank needs at least one value")
    return max(0, min(n - 1, math.ceil(q * n - 1e-9) - 1))


# -- readers: SQL over the records --------------------------------------------------------------------
def _explanation_ms(start: datetime, end: datetime) -> Any:
    return (select(LLMUsageRow.prediction_id.label("pid"), func.sum(LLMUsageRow.latency_ms).label("ms"))
            .where(LLMUsageRow.purpose == "explanation", LLMUsageRow.at >= start, LLMUsageRow.at < end,
                   LLMUsageRow.prediction_id.is_not(None))
            .group_by(LLMUsageRow.prediction_id).subquery())


def latency_p95(s: Session, start: datetime, end: datetime, q: float = LATENCY_QUANTILE) -> Measurement:
    """End-to-end latency quantile (seconds) of the scoring requests made in ``[start, end)``.

    Parameters
    ----------
    s : Session
        An open session.
    start, end : datetime
        The window (timezone-aware UTC; ``end`` excluded).
    q : float
        The quantile (default 0.95).

    Returns
    -------
    Measurement
        ``value``: the nearest-rank ``q`` quantile of, per prediction, ``predictions.latency_ms``
        plus the summed latency of its explanation LLM calls (``llm_usage``, purpose
        ``explanation``, in the same window), in seconds; ``n``: the number of predictions. The
        ranking happens in SQL (``ORDER BY ... OFFSET``), so no rows are loaded.
    """
    llm = _explanation_ms(start, end)
    total = (Prediction.latency_ms + func.coalesce(llm.c.ms, 0.0)).label("total_ms")
    base = (select(total).select_from(Prediction).outerjoin(llm, llm.c.pid == Prediction.id)
            .where(Prediction.created_at >= start, Prediction.created_at < end))
    n = int(s.execute(select(func.count()).select_from(Prediction)
                      .where(Prediction.created_at >= start, Prediction.created_at < end)).scalar_one())
    period = f"{start:%Y-%m-%d}..{(end - timedelta(microseconds=1)):%Y-%m-%d}"
    if n == 0:
        return Measurement(None, 0, period, "no scoring requests in the window")
    ms = s.execute(base.order_by(total).offset(nearest_rank(n, q)).limit(1)).scalar_one()
    return Measurement(float(ms) / 1000.0, n, period, "", {"quantile": q})


def error_rate(s: Session, start: datetime, end: datetime) -> Measurement:
    """Share of the scoring requests made in ``[start, end)`` that met an error.

    A request (one prediction) counts as an error when

    * scoring fell back to the fallback model (``predictions.fallback_error`` is set), or
    * for one purpose (explanation, Q&A), its LLM calls in the window include a provider error
      (``llm_usage.error`` set and no answer came back, i.e. ``fact_check_ok`` is null) and no call
      answered (no successful fallback provider). The officer then saw the template text: the
      request was served, but degraded. A failed fact-check is not an error (an answer came back
      and the template was shown by design).

    Parameters
    ----------
    s : Session
        An open session.
    start, end : datetime
        The window (timezone-aware UTC; ``end`` excluded).

    Returns
    -------
    Measurement
        ``value`` = errors / requests; ``n`` = requests; ``extra`` holds both counts by kind.
    """
    window = (Prediction.created_at >= start, Prediction.created_at < end)
    errored = and_(LLMUsageRow.error.is_not(None), LLMUsageRow.fact_check_ok.is_(None))
    groups = (select(LLMUsageRow.prediction_id.label("pid"),
                     func.sum(case((errored, 1), else_=0)).label("errs"),
                     func.sum(case((errored, 0), else_=1)).label("answers"))
              .where(LLMUsageRow.at >= start, LLMUsageRow.at < end, LLMUsageRow.prediction_id.is_not(None))
              .group_by(LLMUsageRow.prediction_id, LLMUsageRow.purpose).subquery())
    failed = select(groups.c.pid).where(groups.c.errs > 0, groups.c.answers == 0)
    llm_failed = Prediction.id.in_(failed)
    row = s.execute(select(func.count(),
                           func.sum(case((Prediction.fallback_error.is_not(None), 1), else_=0)),
                           func.sum(case((llm_failed, 1), else_=0)),
                           func.sum(case((Prediction.fallback_error.is_not(None) | llm_failed, 1), else_=0)))
                    .where(*window)).one()
    n, fallbacks, llm, errors = (int(x or 0) for x in row)
    period = f"{start:%Y-%m-%d}..{(end - timedelta(microseconds=1)):%Y-%m-%d}"
    if n == 0:
        return Measurement(None, 0, period, "no scoring requests in the window")
    return Measurement(errors / n, n, period, f"{errors:,} of {n:,} requests ({fallbacks:,} scoring fallbacks, "
                       f"{llm:,} LLM failures without a working fallback)",
                       {"requests": n, "errors": errors, "scoring_fallbacks": fallbacks, "llm_failures": llm})


def requests_in(s: Session, start: datetime, end: datetime) -> int:
    return int(s.execute(select(func.count()).select_from(Prediction)
                         .where(Prediction.created_at >= start, Prediction.created_at < end)).scalar_one())


# -- readers: the monitoring services -------------------------------------------------------------------
@dataclass(frozen=True)
class ReadContext:
    services: Any  # backend.container.Services
    session_factory: Callable[[], Any]  # db.read
    at: datetime


def read_accuracy(ctx: ReadContext) -> Measurement | None:
    got = ctx.services.performance.latest_accuracy(before=ctx.at)
    if got is None:
        return None
    value, period, n = got
    return Measurement(None if value is None else float(value), None if n is None else int(n), str(period))


def read_latency(ctx: ReadContext) -> Measurement:
    with ctx.session_factory() as s:
        return latency_p95(s, ctx.at - SHORT_WINDOW, ctx.at)


def read_errors(ctx: ReadContext) -> Measurement:
    with ctx.session_factory() as s:
        return error_rate(s, ctx.at - SHORT_WINDOW, ctx.at)


def read_drift(ctx: ReadContext) -> Measurement | None:
    got = ctx.services.drift.latest_max_psi(before=ctx.at)
    if got is None:
        return None
    value, period = got
    return Measurement(None if value is None else float(value), None, str(period))


def read_cost(ctx: ReadContext) -> Measurement | None:
    start = ctx.at - COST_WINDOW
    with ctx.session_factory() as s:
        n = requests_in(s, start, ctx.at)
    value = ctx.services.costs.per_request(start, ctx.at)
    period = f"{start:%Y-%m-%d}..{(ctx.at - timedelta(microseconds=1)):%Y-%m-%d}"
    return Measurement(None if value is None else float(value), n, period,
                       "" if value is not None else "no cost figure for the window")


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
#: The monitoring service each reader needs (a missing module reads "no data", not an error).
READER_SERVICE = {"accuracy": "performance", "drift": "drift", "cost": "costs", "fairness": "fairness"}
