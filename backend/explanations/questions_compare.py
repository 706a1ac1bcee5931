"""Comparison statistics for the decision Q&A: where one applicant's value sits among approved
applications. Only aggregates are returned (never a row), and none at all for fewer than
:data:`MIN_COUNT` approved values or for a protected attribute.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import pandas as pd

from backend.domain import FEATURES_BY_NAME, PROTECTED

MIN_COUNT = 30
QUANTILES = (0.25, 0.5, 0.75)


class ComparisonStats(Protocol):
    """Statistics of one feature among approved applications."""

    def describe(self, feature: str, value: Any) -> dict[str, Any] | None:
        """For a numeric feature ``{"count", "percentile", "quantiles"}``: ``percentile`` (0-100) is the
        share of approved values below ``value`` (ties count half), ``quantiles`` maps 0.25/0.5/0.75 to
        values. For a categorical or binary feature ``{"count", "share_same"}`` (0-1). ``None`` when the
        feature is unknown, protected, the value is missing, or fewer than :data:`MIN_COUNT` values exist."""
        ...


class FrameComparisonStats:
    """:class:`ComparisonStats` over a pandas frame of approved applications (one column per feature)."""

    def __init__(self, approved: pd.DataFrame, *, min_count: int = MIN_COUNT) -> None:
        self.frame = approved
        self.min_count = min_count

    @classmethod
    def approved_from(cls, book: pd.DataFrame, *, column: str = "recommendation", value: str = "approve",
                      min_count: int = MIN_COUNT) -> FrameComparisonStats:
        """Keep the rows of ``book`` whose ``column`` equals ``value``."""
        return cls(book.loc[book[column] == value], min_count=min_count)

    def describe(self, feature: str, value: Any) -> dict[str, Any] | None:
        feat = FEATURES_BY_NAME.get(feature)
        if feat is None or feature in PROTECTED or feature not in self.frame.columns or value is None:
            return None
        col = self.frame[feature].dropna()
        if len(col) < self.min_count:
            return None
        if feat.kind in ("categorical", "binary"):
            same = col.astype(str) == str(value) if feat.kind == "categorical" else col.astype(float) == float(value)
            return {"count": int(len(col)), "share_same": float(same.mean())}
        try:
            v = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(v):
            return None
        x = col.to_numpy(dtype=np.float64)
        below, ties = float((x < v).mean()), float((x == v).mean())
        return {"count": int(len(x)), "percentile": 100 * (below + ties / 2),
                "quantiles": {q: float(np.quantile(x, q)) for q in QUANTILES}}
