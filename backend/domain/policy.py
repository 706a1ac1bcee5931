"""Decision policy: risk class, confidence and recommendation from a scored application.

Definitions (documented in the README's model card):

* ``raw`` is the balanced ensemble's probability of default — the average vote of bags trained on
  balanced undersamples, so 0.5 is its natural boundary. ``pd`` is the *calibrated* probability of
  default shown to people.
* risk class: ``high_risk`` when ``raw >= score_cutoff`` (default 0.5), else ``low_risk``.
* confidence: the share of ensemble members (bags, or trees for the fallback) whose own score
  falls on the same side of the cutoff as the ensemble's. 1.0 means all ten bags agree. (The raw
  AdaBoost probabilities are squeezed towards 0.5, so ``max(raw, 1 - raw)`` would send nearly
  every application to review; measured on the demo model's held-out set, member agreement is
  below 0.70 for about 11% of applications.)
* recommendation: ``manual_review`` when confidence is below ``confidence_threshold`` (0.70), the
  loan amount is above ``loan_amount_cap`` ($25,000), the fallback model served, or the members
  disagree strongly (standard deviation of member probabilities above ``disagreement_threshold``);
  otherwise ``approve`` for low risk and ``deny`` for high risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from pydantic import BaseModel, Field

APPROVE, DENY, REVIEW = "approve", "deny", "manual_review"
HIGH_RISK, LOW_RISK = "high_risk", "low_risk"


@dataclass(frozen=True)
class Policy:
    score_cutoff: float = 0.50
    confidence_threshold: float = 0.70
    loan_amount_cap: float = 25_000.0
    disagreement_threshold: float = 0.10

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class PolicyOutcome:
    risk_class: str
    confidence: float
    recommendation: str
    policy_reasons: tuple[str, ...]
    member_spread: float = 0.0  # standard deviation of the members' probabilities


def agreement(raw: float, members: Sequence[float], cutoff: float) -> float:
    """Share of members on the same side of ``cutoff`` as the ensemble (1.0 when there are none)."""
    if len(members) == 0:
        return 1.0
    side = raw >= cutoff
    return sum(1 for m in members if (m >= cutoff) == side) / len(members)


def decide(raw: float, *, loan_amount: float, members: Sequence[float] | np.ndarray, fallback_used: bool,
           policy: Policy) -> PolicyOutcome:
    """Apply the policy to one application (``members``: the members' own probabilities)."""
    ms = members.tolist() if isinstance(members, np.ndarray) else list(members)
    risk = HIGH_RISK if raw >= policy.score_cutoff else LOW_RISK
    confidence = agreement(raw, ms, policy.score_cutoff)
    n = len(ms)
    mean = sum(ms) / n if n else 0.0
    spread = (sum((m - mean) ** 2 for m in ms) / n) ** 0.5 if n else 0.0
    why = review_reasons(policy, confidence=confidence, loan_amount=loan_amount, fallback_used=fallback_used,
                         spread=spread)
    rec = REVIEW if why else (APPROVE if risk == LOW_RISK else DENY)
    return PolicyOutcome(risk, confidence, rec, tuple(why), spread)


def review_reasons(policy: Policy, *, confidence: float, loan_amount: float, fallback_used: bool,
                   spread: float) -> list[str]:
    """Why an application goes to manual review, in the words every place shows (one application or a batch)."""
    why: list[str] = []
    if confidence < policy.confidence_threshold:
        why.append(f"confidence {confidence:.2f} below {policy.confidence_threshold:.2f}")
    if loan_amount > policy.loan_amount_cap:
        why.append(f"loan amount ${loan_amount:,.0f} above the ${policy.loan_amount_cap:,.0f} cap")
    if fallback_used:
        why.append("fallback model in use")
    if spread > policy.disagreement_threshold:
        why.append(f"ensemble members disagree (spread {spread:.2f})")
    return why


class PolicySettings(BaseModel):
    """Decision policy (see backend/domain/policy.py). Versioned with each model's manifest."""

    score_cutoff: float = Field(0.50, gt=0, lt=1)
    confidence_threshold: float = Field(0.70, ge=0.5, le=1)
    loan_amount_cap: float = Field(25_000.0, gt=0)
    disagreement_threshold: float = Field(0.10, gt=0, le=1)
    # materiality floor of a principal reason: its share of the risk-raising contribution (backend/models/reasons.py)
    reason_floor: float = Field(0.05, ge=0, lt=1)
