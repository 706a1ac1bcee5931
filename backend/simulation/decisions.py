"""How the simulated officers decide, one day's scored applications at a time.

* Without the AI (control arm, shadow mode, excluded) an officer decides with a noisy judgement of their
  own over days (:func:`officer_judgement`).
* In the AI arm they accept the recommendation in seconds and override about 8% of the time, more often
  where the model is wrong; an override towards approval is material, so the manager reviews it and
  approves most of them (a refused one is followed by the recommendation). A ``manual_review``
  recommendation is resolved in minutes by the risk class.

Pure: it returns the decisions for :meth:`DecisionService.record_many` (the console's rules) to record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from backend.decisioning import BulkDecision, BulkReview
from backend.domain import Actor
from backend.scoring import Intake, ScoreResult
from backend.simulation.cast import with_display_name
from backend.simulation.config import SimConfig
from backend.simulation.draws import Draws, hash01

MANUAL_DENIAL_TEXTS = (
    "Debt-to-income ratio too high for the requested amount after verifying obligations",
    "Recent delinquencies on the credit report; insufficient repayment history",
    "Income could not be verified to support the requested payment",
    "High revolving utilization and several recent credit inquiries",
)
OVERRIDE_TEXTS = {
    "verified_income_higher": "Pay stubs show a higher verified income than the application stated",
    "compensating_factors": "Substantial savings and a co-signer offset the model's concerns",
    "documentation_error": "Corrected employment dates from the employer letter change the picture",
    "customer_relationship": "Long relationship with the bank and a clean repayment history on two loans",
    "fraud_suspected": "Identity documents do not match the bureau file; declined pending verification",
    "thin_file_manual_review": "Thin credit file; full manual underwrite needed before any approval",
}
APPROVE_REASONS = ("verified_income_higher", "compensating_factors", "customer_relationship", "documentation_error")
DENY_REASONS = ("fraud_suspected", "documentation_error")
RISKY_PD, SAFE_PD = 0.06, 0.04  # ground-truth default probabilities officers can sense from documents
OVERRIDE_WEIGHT_ON_RISKY, OVERRIDE_WEIGHT_ON_SAFE = 3.0, 2.0
#: how often an officer opens the AI card before deciding: each officer's own habit (uniform in this range),
#: a little different every month (±MONTH_WOBBLE); an unopened card means no explanation before the decision
OPEN_RANGE, MONTH_WOBBLE = (0.62, 0.95), 0.05
HUMAN_NOISE, HUMAN_LENIENCY = 0.08, 0.04  # officers' own judgement (in standard deviations of the score)
#: An AI card an officer saw: the score, who saw it, when, and the application's row in the draws.
Shown = tuple[ScoreResult, Actor, datetime, int]


def officer_judgement(model: Any, true_applications: pd.DataFrame, draws: Draws) -> np.ndarray:
    """An officer's own view of each applicant, deciding without the AI: the bank's underwriting
    standard (the pre-incident champion, ``model``) applied to the applicant's *true*, verified documents,
    plus personal noise and a little leniency. Positive means deny. During the data-quality
    incident the model sees the corrupted feed while officers see the documents, so they disagree."""
    raw = model.primary.predict_proba(model.encoder.transform(true_applications[list(model.columns)]))
    z = (raw - model.policy.score_cutoff) / max(float(np.std(raw)), 1e-6)
    return np.asarray(z + HUMAN_NOISE * draws.noise - HUMAN_LENIENCY)


@dataclass
class DayDecisions:
    decisions: list[BulkDecision] = field(default_factory=list)
    follow_ups: list[BulkDecision] = field(default_factory=list)  # after a refused override: the recommendation
    shown: list[Shown] = field(default_factory=list)  # AI cards seen (their explanations are written next)

    @property
    def all(self) -> list[BulkDecision]:
        return [*self.decisions, *self.follow_ups]


class Officers:
    """The officers' behaviour over a whole history (``judgement`` and ``pd_true``: one value per application)."""

    def __init__(self, cfg: SimConfig, draws: Draws, judgement: np.ndarray, pd_true: np.ndarray, *,
                 manager: Actor, cap: float) -> None:
        self.cfg, self.draws, self.judgement, self.pd_true = cfg, draws, judgement, pd_true
        self.manager = manager
        self.cap = cap  # loan amount above which an approval needs a senior (the decision service's cap)

    def decide(self, results: list[ScoreResult], items: list[Intake], idx: np.ndarray, now: datetime) -> DayDecisions:
        day = DayDecisions()
        for res, it, i in zip(results, items, idx, strict=True):
            self._one(day, res, it.submitter, it.applied_at or now, int(i))
        # what would happen after the history was prepared has not happened: the application waits
        happened = self.cfg.happened
        day.decisions = [d for d in day.decisions if happened(d.decided_at) and (
            d.reviewer is None or happened(d.reviewer.at))]
        day.follow_ups = [d for d in day.follow_ups if happened(d.decided_at)]
        return day

    def opens_card(self, officer: Actor, applied: datetime, i: int) -> bool:
        """Whether the officer opened the AI card of application ``i`` before deciding."""
        lo, hi = OPEN_RANGE
        habit = lo + (hi - lo) * hash01(self.cfg.seed, f"open-{officer.username}")
        month = MONTH_WOBBLE * (2 * hash01(self.cfg.seed, f"open-{officer.username}-{applied:%Y-%m}") - 1)
        return bool(self.draws.opened[i] < habit + month)

    def _one(self, day: DayDecisions, res: ScoreResult, officer: Actor, applied: datetime, i: int) -> None:
        draws = self.draws
        loan = float(res.features.get("loan_amount") or 0.0)
        base: dict[str, Any] = dict(application_id=uuid.UUID(str(res.application_id)),
                                    prediction_id=uuid.UUID(str(res.prediction_id)),
                                    recommendation=res.recommendation, risk_class=res.risk_class, loan_amount=loan,
                                    ai_visible=res.ai_visible, user_id=officer.id, username=officer.username,
                                    role=officer.role)
        if not res.ai_visible:  # decided without the AI: the officer's own judgement, over days
            outcome = "deny" if self.judgement[i] > 0 else "approve"
            turnaround = float(np.exp(np.log(3.4 * 86400) + 0.55 * draws.time[i]))
            handling = float(np.exp(np.log(1500) + 0.5 * draws.time2[i]))
            code = text = None
            if outcome == "deny":
                code, text = "other", MANUAL_DENIAL_TEXTS[int(draws.pick[i] * len(MANUAL_DENIAL_TEXTS))]
            day.decisions.append(BulkDecision(**base, outcome=outcome, decided_at=applied + timedelta(seconds=turnaround),
                                              decision_seconds=handling, reason_code=code, reason_text=text))
            return
        seconds = float(np.exp(np.log(38.0) + 0.45 * draws.time[i]))
        decided = applied + timedelta(seconds=seconds)
        if self.opens_card(officer, applied, i):
            day.shown.append((res, with_display_name(officer), applied + timedelta(seconds=2), i))
        rec = res.recommendation
        if rec == "manual_review":  # the review the policy asked for: minutes, by the risk class
            outcome = "approve" if res.risk_class == "low_risk" else "deny"
            seconds = float(np.exp(np.log(900.0) + 0.5 * draws.time[i]))
            decided = applied + timedelta(seconds=seconds)
            if not (outcome == "approve" and loan > self.cap):
                day.decisions.append(BulkDecision(**base, outcome=outcome, decided_at=decided, decision_seconds=seconds))
                return
        # overrides are informed: officers who read the file disagree more often where the model
        # is wrong (an approval of a truly risky applicant, a denial of a truly safe one)
        informed = (OVERRIDE_WEIGHT_ON_RISKY if self.pd_true[i] > RISKY_PD else 0.7) if rec == "approve" else \
            (OVERRIDE_WEIGHT_ON_SAFE if self.pd_true[i] < SAFE_PD else 0.4)
        if draws.override[i] >= self.cfg.override_rate * informed and rec != "manual_review":
            day.decisions.append(BulkDecision(**base, outcome=rec, decided_at=decided, decision_seconds=seconds))
            return
        # an override: towards approval (material: a manager decides) or towards denial
        if rec == "deny" or rec == "manual_review":
            code = APPROVE_REASONS[int(draws.pick[i] * len(APPROVE_REASONS))]
            outcome = "approve"
        else:
            code = DENY_REASONS[int(draws.pick[i] * len(DENY_REASONS))]
            outcome = "deny" if draws.pick2[i] < 0.6 else "manual_review"
        approve = draws.review[i] < 0.85
        reviewed_at = decided + timedelta(hours=float(1 + 6 * draws.pick2[i]))
        m = self.manager
        assert m.id is not None  # the simulated people are console users
        reviewer = BulkReview(m.id, m.username, m.role, approve, reviewed_at,
                              None if approve else "Not enough evidence for an exception; follow the policy.")
        day.decisions.append(BulkDecision(**base, outcome=outcome, decided_at=decided, decision_seconds=seconds * 3,
                                          reason_code=code, reason_text=OVERRIDE_TEXTS[code], reviewer=reviewer))
        if not approve and rec != "manual_review":
            day.follow_ups.append(BulkDecision(**base, outcome=rec, decided_at=reviewed_at + timedelta(minutes=40),
                                               decision_seconds=30.0))
