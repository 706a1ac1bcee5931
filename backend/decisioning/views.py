"""Read models for decisions: what the decision page, the review queue and the decisions list show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from backend.compliance import applicant_masked
from backend.domain import OVERRIDE_REASONS, materiality

if TYPE_CHECKING:
    from backend.platform.db.tables_book import Application, Decision, Prediction

# states of an application in the decisions list
NO_SCORE, AWAITING, PENDING, DECIDED, RETURNED = "no_score", "awaiting_decision", "pending_approval", "decided", \
    "returned"


@dataclass(frozen=True)
class DecisionView:
    id: str
    application_id: str
    prediction_id: str | None
    outcome: str
    status: str  # final | pending_approval | rejected
    recommendation: str | None
    risk_class: str | None
    pd: float | None
    loan_amount: float
    applicant_masked: str  # never the applicant id itself (see :func:`applicant_masked`; reveal: pii_reveal)
    external_id: str | None
    submitted_by: str | None  # the officer who submitted the application
    is_override: bool
    reason_code: str | None
    reason_label: str | None
    reason_text: str | None  # verbatim: render as plain text, never as HTML/Markdown
    decided_by: str | None
    decided_at: datetime
    approved_by: str | None  # the second person (also set when they rejected the override)
    approved_at: datetime | None
    decision_seconds: float | None
    materiality: tuple[str, ...]  # why a second person is (or was) needed; empty if not
    model_reasons: tuple[str, ...]  # the prediction's principal reasons (texts)
    replayed: bool = False  # True when an idempotent retry returned the decision already recorded
    arm: str | None = None  # ai | control | excluded
    phase: str | None = None
    ai_visible: bool = True  # False: model fields above are None for a viewer who may not see them
    notice_reasons: tuple[str, ...] = ()  # a denial's notice reasons picked by the officer (REASONS keys, other:<text>)

    @property
    def needs_approval(self) -> bool:
        return self.status == "pending_approval"


@dataclass(frozen=True)
class CaseRow:
    """One application in an officer's (or a manager's) decisions list."""

    application_id: str
    external_id: str | None
    applicant_masked: str  # never the applicant id itself
    loan_amount: float
    applied_at: datetime
    submitted_by: str | None
    prediction_id: str | None
    recommendation: str | None
    risk_class: str | None
    pd: float | None
    decision_id: str | None
    outcome: str | None
    status: str | None
    is_override: bool
    decided_at: datetime | None
    state: str  # no_score | awaiting_decision | pending_approval | decided | returned
    arm: str | None = None
    phase: str | None = None
    ai_visible: bool = True  # False: recommendation, risk class and PD are None for an officer


def decision_view(d: Decision, pred: Prediction | None, app: Application, names: dict, *, cap: float,
                  replayed: bool = False, hide_model: bool = False) -> DecisionView:
    """``hide_model``: the viewer decides without the AI (control arm, shadow): no model fields."""
    visible = app.ai_visible is not False
    if hide_model and not visible:
        pred = None
    rec = pred.recommendation if pred else None
    risk = pred.risk_class if pred else None
    why = materiality(outcome=d.outcome, recommendation=rec or d.outcome, risk_class=risk or "",
                      loan_amount=float(app.loan_amount), cap=cap) if d.is_override else []
    code = d.override_reason_code
    return DecisionView(
        id=str(d.id), application_id=str(app.id), prediction_id=str(d.prediction_id) if d.prediction_id else None,
        outcome=d.outcome, status=d.status, recommendation=rec, risk_class=risk, pd=pred.pd if pred else None,
        loan_amount=float(app.loan_amount), applicant_masked=applicant_masked(app), external_id=app.external_id,
        submitted_by=names.get(app.officer_id), is_override=d.is_override, reason_code=code,
        reason_label=OVERRIDE_REASONS.get(code) if code else None, reason_text=d.override_reason_text,
        decided_by=names.get(d.decided_by), decided_at=d.decided_at, approved_by=names.get(d.approved_by),
        approved_at=d.approved_at, decision_seconds=d.decision_seconds, materiality=tuple(why),
        model_reasons=tuple(str(r.get("text", r.get("code", ""))) for r in (pred.reasons if pred else [])),
        replayed=replayed, arm=app.arm, phase=app.phase, ai_visible=visible,
        notice_reasons=tuple(d.notice_reasons or ()))


def case_row(app: Application, pred: Prediction | None, d: Decision | None, names: dict, *,
             hide_model: bool = False) -> CaseRow:
    """``hide_model``: the viewer decides without the AI for hidden applications: no model fields."""
    visible = app.ai_visible is not False
    scored = pred is not None
    pid = str(pred.id) if pred is not None else None  # kept: the list opens the decision page by it
    if hide_model and not visible:
        pred = None
    if d is not None and d.status == "final":
        state = DECIDED
    elif d is not None and d.status == "pending_approval":
        state = PENDING
    elif d is not None:
        state = RETURNED
    else:
        state = AWAITING if scored else NO_SCORE
    return CaseRow(
        application_id=str(app.id), external_id=app.external_id, applicant_masked=applicant_masked(app),
        loan_amount=float(app.loan_amount), applied_at=app.applied_at, submitted_by=names.get(app.officer_id),
        prediction_id=pid, recommendation=pred.recommendation if pred else None,
        risk_class=pred.risk_class if pred else None, pd=pred.pd if pred else None,
        decision_id=str(d.id) if d else None, outcome=d.outcome if d else None, status=d.status if d else None,
        is_override=bool(d.is_override) if d else False, decided_at=d.decided_at if d else None, state=state,
        arm=app.arm, phase=app.phase, ai_visible=visible)
