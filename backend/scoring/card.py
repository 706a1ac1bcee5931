"""The decision card's figures, one function each (the console's card; tests pin them).

* :func:`risk_band`: the words of the risk, which agree with the recommendation and the policy: the
  policy's risk class (score at or above the cutoff = high risk). There is no PD band word
  ("moderate") beside a denial.
* :func:`cutoff_distance`: how far this application is from the policy's cutoff, in PD points
  (this PD minus the PD of a score exactly at the cutoff), against the ensemble's spread (the standard
  deviation of its members' scores, turned into PD points around this score). ``members`` is how
  many spreads the score sits from the cutoff; below 1 the members' own scores straddle the cutoff
  and the card says "near the cutoff", however many members happen to agree (member agreement alone
  read 100% at a score of 0.564 over a 0.5 cutoff).
* :func:`pd_points`: each feature's contribution in **probability points of PD**: the exact log-odds
  attributions scaled by one factor so that they add up from the PD of the model's baseline
  applicant (``base_value``) to this applicant's PD. The sign and the order are the attributions'.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NEAR, CLOSE = 1.0, 2.0  # member spreads from the cutoff: below NEAR "near", below CLOSE "close", else "clear"


@dataclass(frozen=True)
class CutoffDistance:
    points: float  # this PD minus the PD at the cutoff, in percentage points (+ above: riskier)
    cutoff_pd: float  # the PD of a score exactly at the cutoff (0-1)
    spread_points: float  # the members' spread around this score, in PD points
    spreads: float  # |score - cutoff| / member spread (inf when the members agree exactly)
    label: str  # near | close | clear

    @property
    def words(self) -> str:
        side = "above" if self.points >= 0 else "below"
        return {"near": f"Near the cutoff ({side}): the ensemble's members straddle it",
                "close": f"Close to the cutoff ({side})",
                "clear": f"Clear of the cutoff ({side})"}[self.label]


def risk_band(recommendation: str, risk_class: str) -> str:
    """The risk in words that agree with the recommendation and the policy's risk class: a denial is high
    risk, an approval low risk, a referral the policy's class (the card's recommendation says "Manual
    review" beside it)."""
    if recommendation == "deny":
        return "High risk"
    if recommendation == "approve":
        return "Low risk"
    return "High risk" if risk_class == "high_risk" else "Low risk"


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 700.0), -700.0)))


def cutoff_distance(result: Any, calibrate: Callable[[float], float], cutoff: float) -> CutoffDistance:
    """See the module docstring. ``calibrate``: raw score -> PD of the model that scored ``result``."""
    raw, spread = float(result.raw_score), max(float(result.member_spread or 0.0), 0.0)
    cut_pd = float(calibrate(cutoff))
    lo, hi = float(calibrate(max(raw - spread, 0.0))), float(calibrate(min(raw + spread, 1.0)))
    spreads = abs(raw - cutoff) / spread if spread > 0 else math.inf
    label = "near" if spreads < NEAR else "close" if spreads < CLOSE else "clear"
    return CutoffDistance(points=(float(result.pd) - cut_pd) * 100, cutoff_pd=cut_pd,
                          spread_points=(hi - lo) / 2 * 100, spreads=spreads, label=label)


def pd_points(result: Any, calibrate: Callable[[float], float]) -> dict[str, float]:
    """Each feature's contribution in PD percentage points (see the module docstring)."""
    phi = {k: float(v) for k, v in result.attributions.items()}
    base, margin = float(result.base_value), float(result.margin)
    probability = result.model_role == "fallback"  # the fallback's attributions are already probabilities
    base_pd = float(calibrate(base if probability else _logistic(base)))
    span = margin - base
    if abs(span) > 1e-9:
        scale = (float(result.pd) - base_pd) / span
    else:  # nothing moved the score: the local slope of the PD
        scale = float(result.pd) * (1 - float(result.pd)) if not probability else 1.0
    return {k: v * scale * 100 for k, v in phi.items()}


@dataclass(frozen=True)
class Card:
    recommendation: str
    pd: float
    risk_band: str
    distance: CutoffDistance | None  # None when the model that scored it cannot be loaded
    points: dict[str, float]  # PD points per feature (empty without the model)
    base_pd: float | None


def card(result: Any, model: Any | None) -> Card:
    """Every figure of the card for ``result``; ``model``: the serving model that scored it, or None."""
    band = risk_band(result.recommendation, result.risk_class)
    if model is None:
        return Card(result.recommendation, float(result.pd), band, None, {}, None)
    role = "fallback" if result.model_role == "fallback" else "primary"

    def cal(p: float) -> float:
        return float(model.calibrate(float(p), model=role))

    base = float(result.base_value)
    base_pd = cal(base if role == "fallback" else _logistic(base))
    return Card(result.recommendation, float(result.pd), band, cutoff_distance(result, cal, model.policy.score_cutoff),
                pd_points(result, cal), base_pd)
