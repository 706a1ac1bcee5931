"""The serving error rate: one definition, :func:`error_rate`, read by the error-rate alert rule and, per
phase and arm, by the phase comparison (its "Error rate" figure and guardrail)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.analytics import latency_queries as q
from backend.analytics.latency import ALERT_WINDOW

__all__ = ["ALERT_WINDOW", "ErrorRate", "error_rate", "error_rates_by_phase_arm"]

DEFINITION = ("Scoring requests that met an error over all scoring requests: scoring fell back to the fallback "
              "model, or a purpose's LLM calls (explanation, Q&A) all failed without an answer, so the officer saw "
              "the template. A timeout another provider then answered, or a failed fact-check, is not an error.")


@dataclass(frozen=True)
class ErrorRate:
    """Errored scoring requests among ``requests`` (``value`` None without requests)."""

    errors: int
    requests: int
    scoring_fallbacks: int = 0
    llm_failures: int = 0
    start: datetime | None = None
    end: datetime | None = None

    @property
    def value(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def _of(row: dict[str, Any], start: datetime | None = None, end: datetime | None = None) -> ErrorRate:
    return ErrorRate(int(row["errors"]), int(row["requests"]), int(row["scoring_fallbacks"]), int(row["llm_failures"]),
                     start, end)


def error_rate(s: Session, start: datetime | None = None, end: datetime | None = None) -> ErrorRate:
    """The serving error rate of the scoring requests made in ``[start, end)``.

    A request (one prediction) counts as an error when scoring fell back to the fallback model
    (``predictions.fallback_error`` is set), or when, for one purpose (explanation, Q&A), its LLM calls
    include a provider error (``llm_usage.error`` set and no answer came back, i.e. ``fact_check_ok`` is
    null) and no call answered (no successful fallback provider): the officer then saw the template
    text; the request was served, but degraded. A failed fact-check is not an error (an answer came
    back and the template was shown by design). SQL: :func:`backend.analytics.latency_queries.error_counts`.
    """
    rows = q.error_counts(s, start, end)
    return _of(rows[0], start, end) if rows else ErrorRate(0, 0, start=start, end=end)


def error_rates_by_phase_arm(s: Session) -> dict[tuple[str, str], ErrorRate]:
    """:func:`error_rate` of all history per application phase and arm (the phase comparison's grouping)."""
    return {(str(r["phase"]), str(r["arm"])): _of(r) for r in q.error_counts(s, by_phase_arm=True)
            if r["phase"] is not None and r["arm"] is not None}
