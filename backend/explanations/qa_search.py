""""What would it take?": the nearest approvals over the levers an applicant or officer can act on.

Levers: borrow less (``loan_amount``, 5% steps), another offered term, more cash down (purchase loans),
autopay, paying down revolving balances (10% of the balance per step) and documenting more income
(+5% per step, up to +50%; only worth anything if the income exists and can be verified). Size-ordered
levers are bisected and terms tried one by one (see :func:`search`); when no single lever approves, a pair
whose largest combination approves is scanned in order of combined size within :data:`PAIR_BUDGET`
evaluations. When nothing approves, the re-scored variants that brought the risk below the policy cutoff
(lowest PD first) are reported instead, or none.
Each option carries its cost to the applicant (:func:`cost_text`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from backend.explanations.counterfactuals import LEVERS, Rescore, _num, _steps
from backend.explanations.qa_whatif import PAYDOWN, QAWhatIf
from backend.scoring import ScoreResult

SEARCH_LEVERS = (*LEVERS, PAYDOWN, "annual_income")
PAIRS = (("loan_term_months", "loan_amount"), ("autopay_enrolled", "loan_amount"), (PAYDOWN, "loan_amount"),
         ("annual_income", "loan_amount"), ("loan_term_months", PAYDOWN), ("autopay_enrolled", "loan_term_months"),
         ("loan_term_months", "down_payment"), ("annual_income", PAYDOWN))
PAIR_BUDGET = 40  # combinations tried per pair once its largest combination approves
MAX_OPTIONS = 3
LEVER_WORDS = {"loan_amount": "a smaller loan", "loan_term_months": "another term", "down_payment": "more cash down",
               "autopay_enrolled": "autopay", PAYDOWN: "paying down revolving balances",
               "annual_income": "documenting more income"}


def lever_steps(lever: str, f: Mapping[str, Any], cap: float) -> list[dict[str, Any]]:
    if lever in LEVERS:
        return _steps(lever, f, cap)
    if lever == PAYDOWN:
        bal = _num(f.get("revolving_balance")) or 0.0
        steps = sorted({round(bal * k / 10, -2) for k in range(1, 11)} - {0.0})
        return [{PAYDOWN: min(s, bal)} for s in steps]
    if lever == "annual_income":
        inc = _num(f.get("annual_income")) or 0.0
        return [{"annual_income": round(inc * (1 + k / 20) / 500) * 500} for k in range(1, 11)] if inc > 0 else []
    return []


MONOTONE = ("loan_amount", "down_payment", PAYDOWN, "annual_income")  # steps in order of size


def _smallest(engine: QAWhatIf, result: ScoreResult, steps: list[dict[str, Any]], ctx: Any,
              seen: list[Rescore]) -> tuple[Rescore | None, int]:
    """The smallest step that approves, by bisection (the largest step is tried first: no approval there,
    none below it is looked for). ``seen`` collects every re-scored variant."""
    n = 0
    hi = len(steps) - 1
    top: Rescore | None = None
    while hi >= 0 and top is None and n < 3:  # the largest valid step
        top = engine.variant(result, steps[hi], ctx)
        n += 1
        if top is None:
            hi -= 1
    if top is None:
        return None, n
    seen.append(top)
    if not top.approves:
        return None, n
    best, lo = top, 0
    while lo < hi:
        mid = (lo + hi) // 2
        r = engine.variant(result, steps[mid], ctx)
        n += 1
        if r is not None:
            seen.append(r)
        if r is not None and r.approves:
            best, hi = r, mid
        else:
            lo = mid + 1
    return best, n


def search(engine: QAWhatIf, result: ScoreResult, *, levers: Iterable[str] = SEARCH_LEVERS
           ) -> tuple[list[Rescore], str, int]:
    """``(options, reached, evaluated)``: ``reached`` is ``approve``, ``below_cutoff`` or ``none``.

    Size-ordered levers (amount, down payment, paydown, income) are bisected: the model is not guaranteed
    monotone, so an option is the smallest approving step *found*, not always the smallest that exists.
    Terms and autopay are tried one by one. A pair is tried only when its largest combination approves."""
    allowed = [lv for lv in SEARCH_LEVERS if lv in set(levers)]
    ctx = engine.context(result)
    cap = ctx[0].policy.loan_amount_cap
    steps = {lv: lever_steps(lv, result.features, cap) for lv in allowed}
    approve: list[Rescore] = []
    seen: list[Rescore] = []
    n = 0
    for lv in allowed:
        if lv in MONOTONE:
            best, k = _smallest(engine, result, steps[lv], ctx, seen)
            n += k
            if best is not None:
                approve.append(best)
            continue
        for changes in steps[lv]:
            res = engine.variant(result, changes, ctx)
            n += 1
            if res is not None:
                seen.append(res)
                if res.approves:
                    approve.append(res)
                    break
    if not approve:
        for a, b in PAIRS:
            if not (steps.get(a) and steps.get(b)) or len(approve) >= MAX_OPTIONS:
                continue
            tops = [engine.variant(result, {**x, **y}, ctx) for x, y in itertools.product(
                steps[a][-1:] if a in MONOTONE else steps[a], steps[b][-1:] if b in MONOTONE else steps[b])]
            n += len(tops)
            if not any(t is not None and t.approves for t in tops):
                continue
            for _, i, j in sorted((i + j, i, j) for i, j in itertools.product(range(len(steps[a])),
                                                                              range(len(steps[b]))))[:PAIR_BUDGET]:
                res = engine.variant(result, {**steps[a][i], **steps[b][j]}, ctx)
                n += 1
                if res is not None and res.approves:
                    approve.append(res)
                    break
    if approve:
        return approve[:MAX_OPTIONS], "approve", n
    below = sorted((r for r in seen if r.below_cutoff), key=lambda r: r.pd)[:MAX_OPTIONS]
    if below:
        return below, "below_cutoff", n
    return [], "none", n


def cost_text(opt: Rescore, before: Mapping[str, Any]) -> str:
    """What the option costs the applicant, in plain words (from the re-scored features only)."""
    parts: list[str] = []
    ch = {**opt.changes, **opt.derived}
    if "loan_amount" in ch and "down_payment" not in ch:
        old, new = (_num(v) or 0.0 for v in ch["loan_amount"])
        if new < old:
            parts.append(f"${old - new:,.0f} less to borrow")
    if "down_payment" in ch:
        old, new = (_num(v) or 0.0 for v in ch["down_payment"])
        parts.append(f"${new - old:,.0f} more cash down")
    if "estimated_monthly_payment" in ch:
        old, new = (_num(v) or 0.0 for v in ch["estimated_monthly_payment"])
        parts.append(f"monthly payment ${new:,.0f} (now ${old:,.0f})")
        term_old = _num(before.get("loan_term_months")) or 0.0
        term_new = _num(opt.features.get("loan_term_months")) or term_old
        amt_new = _num(opt.features.get("loan_amount")) or 0.0
        amt_old = _num(before.get("loan_amount")) or 0.0
        interest_new, interest_old = new * term_new - amt_new, old * term_old - amt_old
        if term_new != term_old:
            parts.append(f"total interest ${interest_new:,.0f} (now ${interest_old:,.0f})")
    if "revolving_balance" in ch:
        old, new = (_num(v) or 0.0 for v in ch["revolving_balance"])
        parts.append(f"${old - new:,.0f} of revolving balances paid down")
    if "annual_income" in ch:
        old, new = (_num(v) or 0.0 for v in ch["annual_income"])
        parts.append(f"${new - old:,.0f} more documented annual income (only if it exists and can be verified)")
    if "autopay_enrolled" in ch:
        parts.append("autopay enrolment (no cost)")
    return "; ".join(parts) if parts else "no cost to the applicant"
