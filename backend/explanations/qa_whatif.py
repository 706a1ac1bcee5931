"""Hypothetical re-scoring for the Q&A: any non-protected feature, fast, with derived features recomputed.

* **Loan levers** (amount, term, down payment, autopay, first payment) go through
  :func:`counterfactuals.apply_changes` (payment, PTI, LTI, residual income, LTV, down-payment share).
* **Income** (``annual_income``): PTI, LTI, DTI, housing-to-income and residual income move with it.
* **Monthly debt payments**: DTI and residual income move with them.
* **Paying down revolving balances** (pseudo-feature ``revolving_paydown``, dollars): the balance,
  utilization, unused credit and total debt move, and the monthly debt payments by the generator's
  minimum-payment rule (2.8% of the balance paid down), hence DTI and residual income.
* **Revolving utilization** set directly is the paydown that reaches it.
* Anything else (credit score, delinquencies, DTI itself …) is set as stated; nothing else moves.

Protected attributes are never changed. Each variant is scored with the model that decided, one row at
a time through ``ScoringService.evaluate`` (the single-row compiled kernel, no cache, no write): the
batch kernels are parallel and cost ~50 ms a call on a busy machine, a single row ~0.2 ms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from backend.domain import FEATURES_BY_NAME, MUTABLE_FEATURES, PROTECTED
from backend.explanations.counterfactuals import (
    MSG_DERIVED,
    Rescore,
    WhatIfInvalid,
    _label,
    _num,
    _same,
    apply_changes,
    check_value,
)
from backend.scoring import ScoreResult, ScoringService

PAYDOWN = "revolving_paydown"
MIN_PAYMENT_SHARE = 0.028  # backend.training.synthetic_population: monthly_debt_payments = 0.028 * revolving balance …
MSG_PROTECTED = "{name} is a protected characteristic: a what-if never changes it"
MSG_UNKNOWN = "{name} is not a feature of this model"
MSG_NO_REVOLVING = "this applicant has no revolving balance to pay down"


def check_hypothetical(name: str, value: float, features: Mapping[str, Any]) -> None:
    """Raise :class:`WhatIfInvalid` unless ``name`` may be set to ``value`` in a what-if."""
    if name in MUTABLE_FEATURES:
        check_value(name, value, features)
        return
    if name == PAYDOWN:
        bal = _num(features.get("revolving_balance")) or 0.0
        if bal <= 0:
            raise WhatIfInvalid(MSG_NO_REVOLVING)
        if not 0 < value <= bal:
            raise WhatIfInvalid(f"a paydown must be between $1 and the revolving balance (${bal:,.0f})")
        return
    if name in PROTECTED:
        raise WhatIfInvalid(MSG_PROTECTED.format(name=name.replace("_", " ")))
    feat = FEATURES_BY_NAME.get(name)
    if feat is None:
        raise WhatIfInvalid(MSG_UNKNOWN.format(name=name.replace("_", " ")))
    lo, hi = feat.lower, feat.upper
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise WhatIfInvalid(f"{feat.description} must be between {lo:g} and {hi:g}; {value:g} is outside that range"
                            if lo is not None and hi is not None else f"{feat.description}: {value:g} is out of range")


def _ratios(new: dict[str, Any]) -> None:
    """DTI, housing-to-income, PTI, LTI and residual income from income, housing, debts and the payment."""
    income = _num(new.get("annual_income")) or 0.0
    if income <= 0:
        return
    mi = income / 12
    housing = _num(new.get("monthly_housing_payment")) or 0.0
    debts = _num(new.get("monthly_debt_payments")) or 0.0
    pmt = _num(new.get("estimated_monthly_payment")) or 0.0
    amount = _num(new.get("loan_amount")) or 0.0
    new["debt_to_income"] = (housing + debts) / mi
    new["housing_to_income"] = housing / mi
    new["payment_to_income"] = pmt / mi
    new["loan_to_income"] = amount / income
    new["residual_income_monthly"] = round(mi - housing - debts - pmt, 2)


def apply_hypothetical(features: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``features`` with ``changes`` applied and the derived features recomputed (module docstring)."""
    levers = {k: v for k, v in changes.items() if k in MUTABLE_FEATURES}
    new = apply_changes(features, levers) if levers else dict(features)
    rest = {k: float(v) for k, v in changes.items() if k not in MUTABLE_FEATURES}
    if "revolving_utilization" in rest and PAYDOWN not in rest:
        limit = _num(new.get("revolving_credit_limit")) or 0.0
        bal = _num(new.get("revolving_balance")) or 0.0
        if limit > 0 and rest["revolving_utilization"] < bal / limit:
            rest[PAYDOWN] = bal - rest["revolving_utilization"] * limit
    recompute = False
    if PAYDOWN in rest:
        x = rest.pop(PAYDOWN)
        bal = _num(new.get("revolving_balance")) or 0.0
        limit = _num(new.get("revolving_credit_limit")) or 0.0
        new["revolving_balance"] = round(bal - x, 2)
        if limit > 0:
            new["revolving_utilization"] = new["revolving_balance"] / limit
            new["open_to_buy"] = max(limit - new["revolving_balance"], 0.0)
        new["total_debt_balance"] = max((_num(new.get("total_debt_balance")) or 0.0) - x, 0.0)
        new["monthly_debt_payments"] = max(round((_num(new.get("monthly_debt_payments")) or 0.0)
                                               - MIN_PAYMENT_SHARE * x, 2), 0.0)
        recompute = True
    for name, value in rest.items():
        new[name] = value
        recompute = recompute or name in ("annual_income", "monthly_debt_payments", "monthly_housing_payment")
    if recompute:
        stated_dti = rest.get("debt_to_income")
        _ratios(new)
        if stated_dti is not None:
            new["debt_to_income"] = stated_dti
    return new


def _moved(features: Mapping[str, Any], before: Mapping[str, Any]) -> list[str]:
    """Names whose value is not the very object it was (a copy keeps unchanged values identical)."""
    return [k for k, v in features.items() if v is not before.get(k)]


def _in_bounds(features: Mapping[str, Any], before: Mapping[str, Any]) -> list[str]:
    """Names of features that moved outside their catalog bounds."""
    bad = []
    for name in _moved(features, before):
        f = FEATURES_BY_NAME.get(name)
        fv = _num(features[name])
        if f is None or fv is None or _num(before.get(name)) == fv:
            continue
        if (f.lower is not None and fv < f.lower) or (f.upper is not None and fv > f.upper):
            bad.append(name)
    return bad


class QAWhatIf:
    """Re-scores hypothetical variants of one decision with the model that decided it."""

    def __init__(self, scoring: ScoringService) -> None:
        self.scoring = scoring

    def context(self, result: ScoreResult) -> tuple[Any, Any]:
        """The model that decided and the policy in force now (looked up once per answer, not per variant)."""
        model = self.scoring.models.get(result.model_version)
        return model, self.scoring.policy_for(model, self.scoring.phase_at(self.scoring.clock.now()))

    def variant(self, result: ScoreResult, changes: Mapping[str, Any], ctx: tuple[Any, Any]) -> Rescore | None:
        """One change dict re-scored (``None`` where a feature would leave its bounds)."""
        try:
            feats = apply_hypothetical(result.features, changes)
        except WhatIfInvalid:
            return None
        if _in_bounds(feats, result.features):
            return None
        res = self.scoring.evaluate(feats, ctx[0], use_cache=False, policy=ctx[1])
        before = result.features
        moved = {k: (before.get(k), feats[k]) for k in _moved(feats, before) if not _same(before.get(k), feats[k])}
        levers = {k: moved.pop(k) for k in list(moved) if k in changes}
        if PAYDOWN in changes:
            levers[PAYDOWN] = (0.0, float(changes[PAYDOWN]))
        return Rescore(changes=levers, derived=moved, features=feats, pd=res.pd, raw_score=res.raw_score,
                       risk_class=res.risk_class, recommendation=res.recommendation,
                       policy_reasons=list(res.policy_reasons))

    def rescore(self, result: ScoreResult, variants: Sequence[Mapping[str, Any]]) -> list[Rescore | None]:
        """Score each change dict (``None`` where a feature would leave its bounds)."""
        ctx = self.context(result)
        return [self.variant(result, changes, ctx) for changes in variants]

    def what_if(self, result: ScoreResult, changes: Mapping[str, Any]) -> Rescore:
        """One stated change, validated (:class:`WhatIfInvalid` with a clear message)."""
        for name, value in changes.items():
            check_hypothetical(name, float(value), result.features)
        bad = _in_bounds(apply_hypothetical(result.features, changes), result.features)
        if bad:
            raise WhatIfInvalid(MSG_DERIVED.format(fields=", ".join(sorted(_label(b) for b in bad))))
        out = self.rescore(result, [changes])[0]
        if out is None:
            raise WhatIfInvalid(MSG_DERIVED.format(fields="a feature"))
        return out


def finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(float(v))
