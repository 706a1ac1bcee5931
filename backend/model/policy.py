"""Decision policy: risk class, confidence and recommendation from a scored application.

Definitions (documented in the README's model card):

* ``raw`` is the balanced ensemble's probability of default — the average vote of bags trained on
  balanced undersamples, so 0.5 is its natural boundary. ``pd`` is the *calibrated* probability of
  default shown to people.
* risk class: ``high_risk`` when ``raw >= score_cutoff`` (default 0.5), else ``low_risk``.
* confidence: ``max(raw, 1 - raw)``, the ensemble's vote share for its own class (0.5 … 1).
* recommendation: ``manual_review`` when confidence is below ``confidence_threshold`` (0.70), the
  loan amount is above ``loan_amount_cap`` ($25,000), the fallback model served, or the members
  disagree strongly (standard deviation of member probabilities above ``disagreement_threshold``);
  otherwise ``approve`` for low risk and ``deny`` for high risk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

APPROVE, DENY, REVIEW = "approve", "deny", "manual_review"
HIGH_RISK, LOW_RISK = "high_risk", "low_risk"


@dataclass(frozen=True)
class Policy:
    score_cutoff: float = 0.50
    confidence_threshold: float = 0.70
    loan_amount_cap: float = 25_000.0
    disagreement_threshold: float = 0.15

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class PolicyOutcome:
    risk_class: str
    confidence: float
    recommendation: str
    policy_reasons: tuple[str, ...]


def decide(raw: float, *, loan_amount: float, member_spread: float, fallback_used: bool,
           policy: Policy) -> PolicyOutcome:
    """Apply the policy to one application."""
    risk = HIGH_RISK if raw >= policy.score_cutoff else LOW_RISK
    confidence = max(raw, 1.0 - raw)
    why: list[str] = []
    if confidence < policy.confidence_threshold:
        why.append(f"confidence {confidence:.2f} below {policy.confidence_threshold:.2f}")
    if loan_amount > policy.loan_amount_cap:
        why.append(f"loan amount ${loan_amount:,.0f} above the ${policy.loan_amount_cap:,.0f} cap")
    if fallback_used:
        why.append("fallback model in use")
    if member_spread > policy.disagreement_threshold:
        why.append(f"ensemble members disagree (spread {member_spread:.2f})")
    rec = REVIEW if why else (APPROVE if risk == LOW_RISK else DENY)
    return PolicyOutcome(risk, float(confidence), rec, tuple(why))


def decide_batch(raw: np.ndarray, loan_amount: np.ndarray, member_spread: np.ndarray, fallback_used: bool,
                 policy: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`decide` without the reason strings: (risk_class, confidence, recommendation)."""
    high = raw >= policy.score_cutoff
    conf = np.maximum(raw, 1.0 - raw)
    review = (conf < policy.confidence_threshold) | (loan_amount > policy.loan_amount_cap) | \
        (member_spread > policy.disagreement_threshold) | bool(fallback_used)
    rec = np.where(review, REVIEW, np.where(high, DENY, APPROVE))
    return np.where(high, HIGH_RISK, LOW_RISK), conf, rec
