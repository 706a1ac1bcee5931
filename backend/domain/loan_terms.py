"""Loan-product terms: the fixed (not risk-based) APR table, the offered terms and the amortized payment.

One copy of these rules, shared by the synthetic generator (which draws the book from them) and the
decision Q&A's what-if engine (which must recompute the derived features of a changed application
the same way, e.g. ``estimated_monthly_payment`` from amount, term and the purpose's APR).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.domain.features import LOAN_PURPOSES, LOAN_TERMS

#: Annual percentage rate by loan purpose (fixed per product, not priced on risk).
APR_BY_PURPOSE: dict[str, float] = {
    "debt_consolidation": 0.12, "home_improvement": 0.10, "auto": 0.075, "medical": 0.13,
    "education": 0.09, "major_purchase": 0.11, "small_business": 0.13, "other": 0.12,
}  # fmt: skip
APR_TABLE = np.array([APR_BY_PURPOSE[p] for p in LOAN_PURPOSES])
DEFAULT_APR = APR_BY_PURPOSE["other"]
#: Longest offered term: auto loans up to 84 months, every other purpose up to 60.
MAX_TERM_AUTO, MAX_TERM_OTHER = 84, 60
#: Collateral types bought with the loan: their price = loan amount + down payment.
PURCHASE_COLLATERAL = ("vehicle", "equipment")


def offered_terms(purpose: str | None) -> tuple[int, ...]:
    """The terms (months) offered for a loan purpose, shortest first."""
    cap = MAX_TERM_AUTO if purpose == "auto" else MAX_TERM_OTHER
    return tuple(t for t in LOAN_TERMS if t <= cap)


def apr_for(purpose: str | None) -> float:
    """The APR of a purpose (the ``other`` rate for an unknown one)."""
    return APR_BY_PURPOSE.get(str(purpose), DEFAULT_APR)


def amortized_payment(amount: Any, term: Any, apr: Any) -> Any:
    """Monthly payment of a fully amortizing loan, rounded to cents (scalars or numpy arrays).

    ``amount * r / (1 - (1 + r) ** -term)`` with ``r = apr / 12``; ``amount / term`` when ``apr == 0``.
    """
    r = np.asarray(apr, dtype=np.float64) / 12
    a = np.asarray(amount, dtype=np.float64)
    n = np.asarray(term, dtype=np.float64)
    safe = np.where(r > 0, r, 1.0)
    pmt = np.where(r > 0, a * safe / (1 - (1 + safe) ** -n), a / np.maximum(n, 1))
    out = np.round(pmt, 2)
    return float(out) if out.ndim == 0 else out
