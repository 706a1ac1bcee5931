"""SQL of the phase comparison: every statement the experiment service runs lives here.

Counts are aggregated in SQL per phase, arm and application week (``GROUP BY``); nothing loads
the book. Percentiles: on PostgreSQL ``percentile_cont`` in SQL; on SQLite (no percentile
function) one numeric column is fetched for the phase and arm that needs it.

Definitions shared with the page (see :mod:`backend.analytics.experiments`):

* a *decision* is the application's ``final`` decision (pending or rejected ones are not);
* *agreement*: the officer's outcome equals the model's recommendation; a ``manual_review``
  recommendation agrees when the officer decided the way the model's risk class points (approve
  a low-risk, deny a high-risk application), the same reading the decision rules use for a
  resolved review (``override_rules.resolves_review``), or also chose manual review;
* *override*: the final decision is an override, or an override the officer made was rejected
  by a manager (the officer still disagreed with the AI);
* *AI card shown*: an explanation was shown for the decision's prediction before the decision;
* *time to decision*: ``decided_at - applied_at`` of the final decision (the applicant's wait),
  not ``decision_seconds`` (the officer's handling time);
* *latency*: not counted here; :func:`backend.analytics.latency.end_to_end_p95` (the Latency page's
  definition) gives each phase's AI-arm figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from backend.analytics.latency_queries import window as applied_window
from backend.platform.db.tables_book import (
    Application,
    Decision,
    ExplanationFeedback,
    ExplanationRow,
    LLMUsageRow,
    Outcome,
    Prediction,
    SurveyResponse,
)
from backend.platform.db.tables_governance import RolloutConfig
from backend.platform.db.timesql import month_key, plus_months, seconds_between, week_start

REVIEW, HIGH_RISK = "manual_review", "high_risk"


@dataclass(frozen=True)
class PhaseWindow:
    phase: str
    version: int
    ai_share: float
    starts_at: datetime
    ends_at: datetime | None


def _n(cond: ColumnElement[bool]) -> Any:
    """Count of rows meeting ``cond`` (portable: PostgreSQL cannot sum booleans)."""
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _week(s: Session) -> Any:
    """Monday of the application's week (UTC)."""
    return week_start(Application.applied_at, s.get_bind().dialect.name)


def _month(s: Session) -> Any:
    return month_key(Application.applied_at, s.get_bind().dialect.name)


def _seconds_between(s: Session, later: Any, earlier: Any) -> Any:
    return seconds_between(later, earlier, s.get_bind().dialect.name)


def _plus_months(s: Session, when: Any, months: int) -> Any:
    return plus_months(when, months, s.get_bind().dialect.name)


def _day(value: Any) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else \
        (value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)[:10]))


def phase_windows(s: Session) -> list[PhaseWindow]:
    """Approved rollout versions in start order; each ends where the next begins."""
    rows = s.execute(select(RolloutConfig.phase, RolloutConfig.version, RolloutConfig.ai_share,
                            RolloutConfig.starts_at).where(RolloutConfig.status == "approved")
                     .order_by(RolloutConfig.starts_at, RolloutConfig.version)).all()
    return [PhaseWindow(r[0], int(r[1]), float(r[2]), r[3], rows[i + 1][3] if i + 1 < len(rows) else None)
            for i, r in enumerate(rows)]


def outcomes_as_of(s: Session) -> datetime | None:
    """When the outcome feed was last observed (the latest observation date)."""
    return s.execute(select(func.max(Outcome.observed_at))).scalar()


def weekly_counts(s: Session, *, matured_before: datetime | None, maturity_months: int,
                  window: tuple[datetime, datetime] | None = None) -> list[dict[str, Any]]:
    """Counts per phase, arm, application week, calendar month and officer (one row per group:
    one scan of the book answers every count of the page). ``window``: only applications made in
    ``[start, end)``; the groups of a calendar month are all in that month's window (the month is a key)."""
    rejected = aliased(Decision)
    agree = case((Prediction.recommendation == Decision.outcome, 1),
                 (and_(Prediction.recommendation == REVIEW,
                       Decision.outcome == case((Prediction.risk_class == HIGH_RISK, "deny"), else_="approve")), 1),
                 else_=0)
    ai = Application.arm == "ai"
    overrode = exists().where(rejected.application_id == Application.id, rejected.status == "rejected",
                              rejected.is_override.is_(True))
    shown = exists().where(ExplanationRow.prediction_id == Decision.prediction_id,
                           ExplanationRow.created_at <= Decision.decided_at)
    known = and_(Outcome.funded.is_(True), Outcome.defaulted.is_not(None))
    if matured_before is None:  # no outcome feed yet: nothing has matured
        matured: ColumnElement[bool] = false()
    else:
        matured = and_(known, Decision.decided_at <= matured_before)
    matured_default = and_(matured, Outcome.defaulted.is_(True),
                           Outcome.observed_at <= _plus_months(s, Decision.decided_at, maturity_months))
    week, month = _week(s).label("week"), _month(s).label("month")
    q = (select(Application.phase, Application.arm, week, month, Application.officer_id,
                func.count().label("applications"),
                func.count(Decision.id).label("decided"),
                _n(Decision.outcome == "approve").label("approved"),
                func.coalesce(func.sum(agree), 0).label("agree"),
                _n(Prediction.recommendation == REVIEW).label("review_recs"),
                _n(and_(ai, Decision.id.is_not(None), or_(Decision.is_override.is_(True), overrode))).label("overrides"),
                _n(and_(ai, Decision.id.is_not(None), shown)).label("ai_shown"),
                _n(Outcome.funded.is_(True)).label("funded"),
                _n(known).label("known"),
                _n(and_(known, Outcome.defaulted.is_(True))).label("defaults"),
                _n(matured).label("matured"),
                _n(matured_default).label("matured_defaults"))
         .select_from(Application)
         .outerjoin(Decision, and_(Decision.application_id == Application.id, Decision.status == "final"))
         .outerjoin(Prediction, Prediction.id == Decision.prediction_id)
         .outerjoin(Outcome, Outcome.application_id == Application.id)
         .where(Application.phase.is_not(None), Application.arm.is_not(None),
                *applied_window(Application.applied_at, *(window or (None, None))))
         .group_by(Application.phase, Application.arm, week, month, Application.officer_id))
    out = []
    for r in s.execute(q).mappings():
        row: dict[str, Any] = {k: int(v) for k, v in r.items() if k not in ("phase", "arm", "week", "month", "officer_id")}
        row.update(phase=r["phase"], arm=r["arm"], week=_day(r["week"]), month=str(r["month"]),
                   officer_id=str(r["officer_id"]) if r["officer_id"] is not None else None)
        out.append(row)
    return out


def llm_counts(s: Session) -> list[dict[str, Any]]:
    """LLM calls per phase and arm: calls (cached views apart), errors, fact-checks and failures."""
    call = LLMUsageRow.provider != "cache"
    q = (select(Application.phase, Application.arm,
                _n(call).label("llm_calls"),
                _n(and_(call, LLMUsageRow.error.is_not(None))).label("llm_errors"),
                _n(LLMUsageRow.fact_check_ok.is_not(None)).label("fact_checked"),
                _n(LLMUsageRow.fact_check_ok.is_(False)).label("fact_check_failed"),
                _n(LLMUsageRow.provider == "cache").label("cached_views"))
         .select_from(LLMUsageRow)
         .join(Prediction, Prediction.id == LLMUsageRow.prediction_id)
         .join(Application, Application.id == Prediction.application_id)
         .group_by(Application.phase, Application.arm))
    return [dict(r) for r in s.execute(q).mappings()]


def feedback_counts(s: Session) -> list[dict[str, Any]]:
    """Explanation ratings per phase and arm."""
    q = (select(Application.phase, Application.arm, func.count().label("ratings"),
                _n(ExplanationFeedback.helpful.is_(True)).label("helpful"))
         .select_from(ExplanationFeedback)
         .join(Prediction, Prediction.id == ExplanationFeedback.prediction_id)
         .join(Application, Application.id == Prediction.application_id)
         .group_by(Application.phase, Application.arm))
    return [dict(r) for r in s.execute(q).mappings()]


def surveys(s: Session) -> list[dict[str, Any]]:
    q = select(SurveyResponse.user_id, SurveyResponse.period, SurveyResponse.nps)
    return [{"user_id": str(u), "period": p, "nps": int(n)} for u, p, n in s.execute(q).all()]


def _time_expr(s: Session) -> Any:
    return _seconds_between(s, Decision.decided_at, Application.applied_at)


def decision_times(s: Session, window: tuple[datetime, datetime] | None = None) -> list[tuple[str, str, float]]:
    """``(phase, arm, seconds from application to final decision)`` of applications made in ``window``
    (``[start, end)``, default all)."""
    q = (select(Application.phase, Application.arm, _time_expr(s))
         .join(Decision, and_(Decision.application_id == Application.id, Decision.status == "final"))
         .where(Application.phase.is_not(None), *applied_window(Application.applied_at, *(window or (None, None)))))
    return [(p, a, float(t)) for p, a, t in s.execute(q).all() if t is not None]


def fingerprint(s: Session) -> list[str]:
    """Cheap signs that the records behind the comparison changed (counts and maxima, two narrow scans):
    new applications, predictions, decisions or their status and approval, outcome rows inserted or
    updated (an import stamps ``imported_at``; the funded and defaulted counts), LLM calls, explanations,
    ratings, surveys and rollout reviews. ``refresh`` stores the last count again when this is unchanged."""
    parts: list[Any] = []
    for table, col in ((Application, Application.applied_at), (Prediction, None), (ExplanationRow, None),
                       (LLMUsageRow, LLMUsageRow.at), (ExplanationFeedback, ExplanationFeedback.at),
                       (SurveyResponse, SurveyResponse.at), (RolloutConfig, RolloutConfig.reviewed_at)):
        cols = [func.count()] + ([func.max(col)] if col is not None else [])
        parts.extend(s.execute(select(*cols).select_from(table)).one())
    parts.extend(sorted(s.execute(select(Decision.status, func.count()).group_by(Decision.status)).all()))
    parts.append(s.execute(select(func.max(Decision.decided_at))).scalar())
    parts.append(s.execute(select(func.max(Decision.approved_at))).scalar())
    parts.extend(s.execute(select(func.count(), func.max(Outcome.observed_at),
                                  func.count(func.distinct(Outcome.batch_id)), func.max(Outcome.imported_at),
                                  func.count(case((Outcome.funded.is_(True), 1))),
                                  func.count(case((Outcome.defaulted.is_(True), 1))))).one())
    return [str(p) for p in parts]
