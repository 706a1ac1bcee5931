"""Scoring a whole frame of validated applications on arrays (batch files, issue 21 item 7).

The one-application path (:meth:`ScoringService.evaluate`) builds a :class:`ScoreResult` per row; a batch
file of a million rows cannot afford that. Here a chunk is scored with one call per step: the compiled
kernel (probability and member probabilities in one call, then exact attributions), calibration, the
policy (:func:`decide_many`, the same rules as :func:`backend.domain.decide`) and the reasons
(:meth:`ReasonMapper.select_batch`). :class:`FrameScores` holds the arrays; :meth:`FrameScores.result`
turns one row into the same :class:`ScoreResult` the one-application path gives (for recording and JSON
output only). The reference engine scores the whole frame with scikit-learn's own pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend.domain import APPROVE, DENY, HIGH_RISK, LOW_RISK, REVIEW, Policy, review_reasons
from backend.models import ServingModel
from backend.scoring.result import ScoreResult, feature_hash


@dataclass
class FrameScores:
    """Scores of ``n`` applications as arrays (row ``i`` of each is application ``i``)."""

    model: ServingModel
    engine: str
    policy: Policy
    raw: np.ndarray
    pd: np.ndarray
    margin: np.ndarray
    base: np.ndarray
    phi: np.ndarray  # (n, p)
    members: np.ndarray  # (n, m)
    loan: np.ndarray
    confidence: np.ndarray
    spread: np.ndarray
    high: np.ndarray  # bool: high risk
    review: np.ndarray  # bool: manual review
    codes: np.ndarray  # (n, 4) reason code index, -1 when fewer
    weights: np.ndarray
    feats: np.ndarray  # (n, 4, 3) feature columns of each reason

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def risk_class(self) -> np.ndarray:
        return np.where(self.high, HIGH_RISK, LOW_RISK).astype(object)

    def recommendation(self) -> np.ndarray:
        return np.where(self.review, REVIEW, np.where(self.high, DENY, APPROVE)).astype(object)

    def reason_texts(self) -> list[np.ndarray]:
        """The text of each row's 1st..4th reason ("" where it has fewer)."""
        texts = np.array([*self.model.reasons.texts, ""], dtype=object)
        return [texts[np.where(self.codes[:, k] >= 0, self.codes[:, k], len(texts) - 1)]
                for k in range(self.codes.shape[1])]

    def policy_reasons(self, i: int) -> list[str]:
        """Why row ``i`` goes to manual review (:func:`backend.domain.review_reasons`; the compiled primary serves
        a batch, so never the fallback)."""
        return review_reasons(self.policy, confidence=float(self.confidence[i]), loan_amount=float(self.loan[i]),
                              fallback_used=False, spread=float(self.spread[i]))

    def result(self, i: int, clean: dict[str, Any]) -> ScoreResult:
        """Row ``i`` as the one-application path's :class:`ScoreResult` (``clean``: its validated features)."""
        m = self.model
        high, review = bool(self.high[i]), bool(self.review[i])
        return ScoreResult(
            model_name=m.name, model_version=m.version, model_role="primary", engine=self.engine,
            pd=float(self.pd[i]), raw_score=float(self.raw[i]), risk_class=HIGH_RISK if high else LOW_RISK,
            confidence=float(self.confidence[i]), recommendation=REVIEW if review else (DENY if high else APPROVE),
            policy_reasons=self.policy_reasons(i),
            reasons=m.reasons.from_selection(self.codes[i], self.weights[i], self.feats[i], self.phi[i], clean),
            attributions=dict(zip(m.columns, np.round(self.phi[i], 8).tolist(), strict=True)),
            base_value=float(self.base[i]), margin=float(self.margin[i]), member_spread=float(self.spread[i]),
            features=clean, extra={"feature_hash": feature_hash(clean)})  # the audit row's and the conflict check's


def decide_many(raw: np.ndarray, members: np.ndarray, loan: np.ndarray, policy: Policy
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`backend.domain.decide` on arrays (primary model): ``(high, confidence, spread, review)``."""
    high = raw >= policy.score_cutoff
    if members.shape[1]:
        confidence = ((members >= policy.score_cutoff) == high[:, None]).sum(axis=1) / members.shape[1]
        spread = members.std(axis=1)
    else:
        confidence, spread = np.ones(len(raw)), np.zeros(len(raw))
    review = (confidence < policy.confidence_threshold) | (loan > policy.loan_amount_cap) \
        | (spread > policy.disagreement_threshold)
    return high, confidence, spread, review


def can_score_frame(model: ServingModel) -> bool:
    """Frames need the primary model (a failed primary goes row by row to the fallback, which says so)."""
    return model.primary is not None


def score_frame(model: ServingModel, X: np.ndarray, loan: np.ndarray, policy: Policy, *, engine: str = "compiled",
                clean: pd.DataFrame | None = None) -> FrameScores:
    """Score the encoded rows ``X`` (``loan``: each row's loan amount, 0 when missing). With
    ``engine="reference"``, ``clean`` (the validated features as a frame) is scored by scikit-learn."""
    primary = model.primary
    both = getattr(primary, "proba_and_members", None)
    raw, members = both(X) if both is not None else (primary.predict_proba(X), primary.member_probas(X))
    phi, base = primary.attributions(X)
    if engine == "reference":
        if clean is None:
            raise ValueError("the reference engine scores the validated features (clean=)")
        raw = model.reference_frame_proba(clean)
    margin = base + phi.sum(axis=1)
    pds = np.asarray(model.calibrate(raw, model="primary"), dtype=np.float64)
    high, confidence, spread, review = decide_many(raw, np.asarray(members), loan, policy)
    codes, weights, feats = model.reasons.select_batch(phi)
    return FrameScores(model, engine, policy, np.asarray(raw, dtype=np.float64), pds, margin, base, phi,
                       np.asarray(members), loan, confidence, spread, high, review, codes, weights, feats)
