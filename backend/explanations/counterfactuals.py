"""What-if re-scoring for the decision Q&A: change lawful, applicant-changeable loan terms, recompute
the derived features the way the book computes them, and score again with the same model.

Levers (all ``mutable`` in the feature catalog): ``loan_amount`` (down in 5% steps, and to the
policy's amount cap when above it), ``loan_term_months`` (the other terms offered for the purpose),
``down_payment`` (purchase loans only: more cash down on the same price, so a smaller loan) and
``autopay_enrolled`` (enrol). Characteristics of the person are never changed.

Derived features recomputed (``backend.training.synthetic`` formulas, via ``loan_terms``):
``estimated_monthly_payment`` (amortized at the purpose's APR), ``payment_to_income``,
``loan_to_income``, ``residual_income_monthly`` (moves by the payment change),
``loan_to_value`` (moves by the amount change over the collateral value) and, for purchase loans,
``down_payment_pct``. A changed loan amount keeps the down payment in dollars (a different price);
a changed down payment keeps the price (the amount absorbs the difference). The collateral's value
is kept as recorded. Nothing here guesses: every outcome comes from the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from backend.domain import (
    APPROVE,
    FEATURES_BY_NAME,
    LOW_RISK,
    MUTABLE_FEATURES,
    PURCHASE_COLLATERAL,
    Actor,
    ApplicationInvalid,
    amortized_payment,
    apr_for,
    offered_terms,
)
from backend.scoring import ScoreResult, ScoringService

LEVERS = ("loan_amount", "loan_term_months", "down_payment", "autopay_enrolled")
#: Features recomputed from the levers (a lever itself may also move: a larger down payment lowers the amount).
DERIVED = ("estimated_monthly_payment", "payment_to_income", "loan_to_income", "residual_income_monthly",
           "loan_to_value", "down_payment_pct")
AMOUNT_STEP, AMOUNT_FLOOR_SHARE = 0.05, 0.10  # 5% steps down to 10% of the requested amount
DOWN_STEP, DOWN_MAX_SHARE = 0.05, 0.80  # +5% of the price per step, at most 80% down
MAX_OPTIONS = 3
#: Lever pairs tried when no single lever is enough.
PAIRS = (("loan_term_months", "loan_amount"), ("autopay_enrolled", "loan_amount"),
         ("autopay_enrolled", "loan_term_months"), ("loan_term_months", "down_payment"))
QA_SUBMITTER = Actor("decision-qa", "system")  # never persisted: re-scoring is persist=False

MSG_NOT_MUTABLE = ("{name} is not something the applicant can change in a what-if; what-ifs change only "
                   "the loan amount, term, down payment, autopay enrolment or days to first payment")
MSG_BOUNDS = "{name} must be between {lo} and {hi}; {value} is outside that range"
MSG_TERM = "{value} months is not an offered term for this loan; offered terms are {terms} months"
MSG_NOT_PURCHASE = "a down payment only applies to a purchase loan (vehicle or equipment); this loan is not one"
MSG_DERIVED = "that change would put {fields} outside the valid range"


class WhatIfInvalid(ValueError):
    """A requested what-if value is not allowed (bounds, offered terms, not a lever)."""


@dataclass(frozen=True)
class Rescore:
    """One re-scored variant of the application."""

    changes: dict[str, tuple[Any, Any]]  # lever -> (old, new), as requested
    derived: dict[str, tuple[Any, Any]]  # every other feature that moved with it
    features: dict[str, Any]
    pd: float
    raw_score: float
    risk_class: str
    recommendation: str
    policy_reasons: list[str]

    @property
    def approves(self) -> bool:
        return self.recommendation == APPROVE

    @property
    def below_cutoff(self) -> bool:
        return self.risk_class == LOW_RISK

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def is_purchase(features: Mapping[str, Any]) -> bool:
    return str(features.get("collateral_type")) in PURCHASE_COLLATERAL or (_num(features.get("down_payment")) or 0) > 0


def apply_changes(features: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``features`` with the lever ``changes`` applied and the derived features recomputed."""
    for name in changes:
        if name not in MUTABLE_FEATURES:
            raise WhatIfInvalid(MSG_NOT_MUTABLE.format(name=_label(name)))
    old, new = dict(features), {**features, **changes}
    amount0 = _num(old.get("loan_amount")) or 0.0
    term0 = _num(old.get("loan_term_months")) or 0.0
    down0 = _num(old.get("down_payment")) or 0.0
    price0 = amount0 + down0
    down = down0
    if "down_payment_pct" in changes:  # the same price, a different share of it down
        down = round(price0 * float(changes["down_payment_pct"]) / 100, 2)
    if "down_payment" in changes:
        down = float(changes["down_payment"])
    amount = float(changes["loan_amount"]) if "loan_amount" in changes else (
        round(price0 - down, 2) if down != down0 else amount0)
    term = float(changes.get("loan_term_months", term0))
    if down != down0:
        new["down_payment"] = down
    new["loan_amount"] = amount if amount != amount0 else old.get("loan_amount")
    if is_purchase(old) and (amount != amount0 or down != down0):
        price = amount + down
        new["down_payment_pct"] = round(100 * down / price, 2) if price > 0 else 0.0
    if amount != amount0 or term != term0:
        pmt0 = _num(old.get("estimated_monthly_payment")) or 0.0
        pmt = amortized_payment(amount, term, apr_for(old.get("loan_purpose")))
        new["estimated_monthly_payment"] = pmt
        income = _num(old.get("annual_income")) or 0.0
        if income > 0:
            new["payment_to_income"] = pmt / (income / 12)
            new["loan_to_income"] = amount / income
        residual = _num(old.get("residual_income_monthly"))
        if residual is not None:
            new["residual_income_monthly"] = round(residual + pmt0 - pmt, 2)
        ltv = _num(old.get("loan_to_value"))
        if ltv is not None:
            new["loan_to_value"] = ltv + (amount - amount0) / max(_num(old.get("collateral_value")) or 0.0, 1.0)
    return new


def _label(name: str) -> str:
    feat = FEATURES_BY_NAME.get(name)
    return feat.description if feat is not None else name


def check_value(name: str, value: float, features: Mapping[str, Any]) -> None:
    """Raise :class:`WhatIfInvalid` unless ``value`` is a lawful, in-bounds value of lever ``name``."""
    if name not in MUTABLE_FEATURES:
        raise WhatIfInvalid(MSG_NOT_MUTABLE.format(name=_label(name)))
    if name in ("down_payment", "down_payment_pct") and not is_purchase(features):
        raise WhatIfInvalid(MSG_NOT_PURCHASE)
    if name == "loan_term_months":
        terms = offered_terms(features.get("loan_purpose"))
        if int(value) != value or int(value) not in terms:
            raise WhatIfInvalid(MSG_TERM.format(value=f"{value:g}", terms=", ".join(map(str, terms))))
        return
    feat = FEATURES_BY_NAME[name]
    lo, hi = feat.lower, feat.upper
    if name == "down_payment":  # at most the price less the smallest loan
        price = (_num(features.get("loan_amount")) or 0.0) + (_num(features.get("down_payment")) or 0.0)
        hi = min(hi if hi is not None else math.inf, price - (FEATURES_BY_NAME["loan_amount"].lower or 0.0))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise WhatIfInvalid(MSG_BOUNDS.format(name=_label(name), lo=_fmt(name, lo), hi=_fmt(name, hi),
                                              value=_fmt(name, value)))


def _fmt(name: str, v: float | None) -> str:
    if v is None:
        return "unbounded"
    unit = FEATURES_BY_NAME[name].unit
    return f"${v:,.0f}" if unit == "USD" else f"{v:g}%" if unit == "%" else f"{v:g}"


class WhatIfEngine:
    """Re-scores variants of one decision's application with the model that decided it."""

    def __init__(self, scoring: ScoringService) -> None:
        self.scoring = scoring

    def rescore(self, result: ScoreResult, variants: Sequence[Mapping[str, Any]]) -> list[Rescore | None]:
        """Score each lever-change dict (``None`` where the change leaves valid bounds)."""
        model = self.scoring.models.get(result.model_version)
        rows: list[dict[str, Any]] = []
        keep: list[int] = []
        for i, changes in enumerate(variants):
            try:
                rows.append(self.scoring.validate(apply_changes(result.features, changes), model))
                keep.append(i)
            except (ApplicationInvalid, WhatIfInvalid):
                continue
        scored = self.scoring.score_many(rows, submitter=QA_SUBMITTER, model_ref=model.version,
                                         persist=False) if rows else []
        out: list[Rescore | None] = [None] * len(variants)
        for i, res in zip(keep, scored, strict=True):
            out[i] = _rescore(result.features, variants[i], res)
        return out

    def what_if(self, result: ScoreResult, changes: Mapping[str, Any]) -> Rescore:
        """Re-score one explicit change (validated; :class:`WhatIfInvalid` with a clear message)."""
        for name, value in changes.items():
            check_value(name, float(value), result.features)
        try:
            self.scoring.validate(apply_changes(result.features, changes), self.scoring.models.get(result.model_version))
        except ApplicationInvalid as exc:
            fields = ", ".join(sorted({_label(e.field) for e in exc.errors}))
            raise WhatIfInvalid(MSG_DERIVED.format(fields=fields)) from exc
        out = self.rescore(result, [changes])[0]
        if out is None:  # validated above; kept for the type checker
            raise WhatIfInvalid(MSG_DERIVED.format(fields="a feature"))
        return out

    def search(self, result: ScoreResult, *, levers: Iterable[str] = LEVERS) -> tuple[list[Rescore], str]:
        """The smallest change per lever (then per lever pair) that turns the outcome into ``approve``.

        Returns ``(options, reached)`` with ``reached`` = ``approve``; or, when no variant approves,
        the smallest that bring the risk score below the policy cutoff (``below_cutoff``); or
        ``none``. Options are at most :data:`MAX_OPTIONS`, single-lever changes first.
        """
        allowed = [lv for lv in LEVERS if lv in set(levers)]
        cap = self.scoring.models.get(result.model_version).policy.loan_amount_cap
        singles = {lv: _steps(lv, result.features, cap) for lv in allowed}
        variants: list[tuple[tuple[str, ...], int, dict[str, Any]]] = []
        for lv in allowed:
            variants += [((lv,), k, ch) for k, ch in enumerate(singles[lv])]
        for a, b in PAIRS:
            if singles.get(a) and singles.get(b):
                variants += [((a, b), i + j, {**ca, **cb}) for i, ca in enumerate(singles[a])
                             for j, cb in enumerate(singles[b])]
        scored = self.rescore(result, [v[2] for v in variants])
        for reached in ("approve", "below_cutoff"):
            best: dict[tuple[str, ...], tuple[int, Rescore]] = {}
            for (group, cost, _), res in zip(variants, scored, strict=True):
                ok = res is not None and (res.approves if reached == "approve" else res.below_cutoff)
                if res is not None and ok and (group not in best or cost < best[group][0]):
                    best[group] = (cost, res)
            single = [r for g, (_, r) in best.items() if len(g) == 1]
            pairs = [r for _, r in sorted((cr for g, cr in best.items() if len(g) > 1), key=lambda cr: cr[0])]
            picked = single or pairs
            if picked:
                return picked[:MAX_OPTIONS], reached
        return [], "none"


def _steps(lever: str, f: Mapping[str, Any], cap: float) -> list[dict[str, Any]]:
    """Candidate changes of one lever, smallest first."""
    amount = _num(f.get("loan_amount")) or 0.0
    lo = FEATURES_BY_NAME["loan_amount"].lower or 0.0
    if lever == "loan_amount":
        out: list[float] = []
        if amount > cap:
            out.append(cap)
        k = 1
        while k * AMOUNT_STEP <= 1 - AMOUNT_FLOOR_SHARE + 1e-9:
            v = math.floor(amount * (1 - k * AMOUNT_STEP) / 100) * 100
            if v >= lo and v not in out and v < amount:
                out.append(float(v))
            k += 1
        return [{"loan_amount": v} for v in sorted(set(out), reverse=True)]
    if lever == "loan_term_months":
        term = _num(f.get("loan_term_months")) or 0.0
        terms = [t for t in offered_terms(f.get("loan_purpose")) if t != term]
        return [{"loan_term_months": t} for t in sorted(terms, key=lambda t: (abs(t - term), -t))]
    if lever == "down_payment":
        if not is_purchase(f):
            return []
        down = _num(f.get("down_payment")) or 0.0
        price = amount + down
        steps = []
        k = 1
        while (down + k * DOWN_STEP * price) / max(price, 1.0) <= DOWN_MAX_SHARE + 1e-9:
            new_down = round(down + k * DOWN_STEP * price, -1)
            if price - new_down < lo:
                break
            steps.append({"down_payment": new_down})
            k += 1
        return steps
    if lever == "autopay_enrolled":
        return [] if (_num(f.get("autopay_enrolled")) or 0) >= 1 else [{"autopay_enrolled": 1}]
    return []


def _rescore(before: Mapping[str, Any], changes: Mapping[str, Any], res: ScoreResult) -> Rescore:
    moved = {k: (before.get(k), v) for k, v in res.features.items() if not _same(before.get(k), v)}
    levers = {k: moved.pop(k) for k in list(moved) if k in changes}
    return Rescore(changes=levers, derived=moved, features=dict(res.features), pd=res.pd, raw_score=res.raw_score,
                   risk_class=res.risk_class, recommendation=res.recommendation,
                   policy_reasons=list(res.policy_reasons))


def _same(a: Any, b: Any) -> bool:
    fa, fb = _num(a), _num(b)
    if fa is not None and fb is not None:
        return math.isclose(fa, fb, rel_tol=1e-12, abs_tol=1e-12)
    return a == b
