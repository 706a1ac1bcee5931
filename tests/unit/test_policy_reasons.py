"""Decision policy and reason selection: pure functions, checked case by case and against each other."""

from __future__ import annotations

import numpy as np
import pytest

from backend.domain.features import FEATURE_NAMES, FEATURES_BY_NAME, PROTECTED
from backend.domain.policy import (
    APPROVE,
    DENY,
    HIGH_RISK,
    LOW_RISK,
    REVIEW,
    Policy,
    agreement,
    decide,
)
from backend.domain.reason_codes import REASONS
from backend.models.reasons import ReasonMapper, top_reasons

P = Policy()
AGREE_LOW = [0.3] * 10
AGREE_HIGH = [0.7] * 10


@pytest.mark.parametrize("raw,members,amount,fallback,rec,risk", [
    (0.3, AGREE_LOW, 10_000, False, APPROVE, LOW_RISK),
    (0.7, AGREE_HIGH, 10_000, False, DENY, HIGH_RISK),
    (0.3, AGREE_LOW, 30_000, False, REVIEW, LOW_RISK),            # above the cap
    (0.3, AGREE_LOW, 10_000, True, REVIEW, LOW_RISK),             # fallback served
    (0.45, [0.4] * 6 + [0.6] * 4, 10_000, False, REVIEW, LOW_RISK),  # 6/10 agree < 0.70
    (0.45, [0.0] * 5 + [0.9] * 5, 10_000, False, REVIEW, LOW_RISK),  # strong spread
])
def test_decide_cases(raw, members, amount, fallback, rec, risk):
    out = decide(raw, loan_amount=amount, members=members, fallback_used=fallback, policy=P)
    assert (out.recommendation, out.risk_class) == (rec, risk)
    assert bool(out.policy_reasons) == (rec == REVIEW)


def test_exactly_at_thresholds():
    assert decide(0.5, loan_amount=25_000, members=[0.6] * 7 + [0.4] * 3, fallback_used=False,
                  policy=P).recommendation == DENY  # cutoff inclusive, cap inclusive, 0.70 agreement is enough


def test_agreement():
    assert agreement(0.6, [], 0.5) == 1.0
    assert agreement(0.6, [0.6, 0.4, 0.7, 0.2], 0.5) == 0.5


def _oracle(names, phi, values, k=4):
    """A plain restatement of the reason rule, independent of the numba selection it checks."""
    grouped = {}
    for j in np.argsort(-phi, kind="stable"):
        if phi[j] <= 0:
            break
        if names[j] in PROTECTED:
            continue
        feat = FEATURES_BY_NAME.get(names[j])
        code = feat.reason_code if feat else "other"
        e = grouped.setdefault(code, {"code": code, "text": REASONS[code], "weight": 0.0, "features": []})
        e["weight"] += float(phi[j])
        e["features"].append({"name": names[j], "description": feat.description if feat else names[j],
                              "value": values.get(names[j]), "contribution": round(float(phi[j]), 6)})
    ranked = sorted(grouped.values(), key=lambda e: -e["weight"])[:k]
    for e in ranked:
        e["weight"] = round(e["weight"], 6)
    return ranked


def test_mapper_matches_reference_implementation():
    rng = np.random.default_rng(1)
    mapper = ReasonMapper(FEATURE_NAMES)
    values = {n: float(i) for i, n in enumerate(FEATURE_NAMES)}
    for _ in range(200):
        phi = rng.normal(0, 1, len(FEATURE_NAMES)) * (rng.random(len(FEATURE_NAMES)) < 0.5)
        ref = _oracle(FEATURE_NAMES, phi, values)
        assert top_reasons(FEATURE_NAMES, phi, values) == ref
        for r in ref:
            r["features"] = r["features"][:3]
        assert mapper.top(phi, values) == ref


def test_reasons_only_from_positive_contributions_and_at_most_four():
    mapper = ReasonMapper(FEATURE_NAMES)
    assert mapper.top(-np.ones(len(FEATURE_NAMES)), {}) == []
    out = mapper.top(np.ones(len(FEATURE_NAMES)), {})
    assert len(out) == 4 and all(r["text"] == REASONS[r["code"]] for r in out)


def test_protected_columns_never_become_reasons():
    names = list(FEATURE_NAMES[:5]) + list(PROTECTED)
    phi = np.array([0.0] * 5 + [10.0] * len(PROTECTED))
    assert ReasonMapper(names).top(phi, {}) == []
    assert top_reasons(names, phi, {}) == []
