"""Adverse-action reasons for one decision: the top four Regulation B reasons, built only from
features the model scored that pushed this applicant's risk up.

Contributions are grouped by reason (several features can share one reason, e.g. DTI and monthly
obligations both mean "Excessive obligations in relation to income"); reasons are ranked by the
sum of their positive contributions. Protected attributes are never model features, and the
catalog check below refuses any that would map to a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from backend.model.fast_kernels import select_reasons
from backend.model.reason_codes import REASONS
from backend.training.features import FEATURES_BY_NAME, PROTECTED

MAX_REASONS = 4


def top_reasons(feature_names: Sequence[str], phi: np.ndarray, values: Mapping[str, Any],
                *, k: int = MAX_REASONS) -> list[dict[str, Any]]:
    """The ``k`` principal reasons, most important first, each with all its raising features.

    Parameters
    ----------
    feature_names : names in model column order.
    phi : per-feature contributions (positive = raises the risk of default).
    values : the applicant's raw values, by feature name.

    Serving code keeps a :class:`ReasonMapper` per model instead of building one per call.
    """
    return ReasonMapper(feature_names).top(phi, values, k=k, per_reason=len(feature_names))


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


class ReasonMapper:
    """Reason selection for one model's column order, precomputed once per served model."""

    def __init__(self, feature_names: Sequence[str]) -> None:
        self.columns = list(feature_names)
        codes = []
        for name in self.columns:
            feat = FEATURES_BY_NAME.get(name)
            codes.append("__protected__" if name in PROTECTED else (feat.reason_code if feat else "other"))
        self.code_names = sorted(set(codes))
        index = {c: i for i, c in enumerate(self.code_names)}
        self.code_idx = np.array([index[c] for c in codes], dtype=np.int64)
        self.allowed = np.array([c != "__protected__" for c in codes])
        self.texts = [REASONS.get(c, REASONS.get("other", c)) for c in self.code_names]
        self.descriptions = [FEATURES_BY_NAME[n].description if n in FEATURES_BY_NAME else n for n in self.columns]

    def select(self, phi: np.ndarray, *, k: int = MAX_REASONS,
               per_reason: int = 3) -> list[tuple[int, float, list[int]]]:
        """The decision's principal reasons as (code index, weight, feature columns), most important first."""
        codes, weights, feats = select_reasons(np.ascontiguousarray(phi, dtype=np.float64), self.code_idx,
                                               self.allowed, len(self.code_names), k, per_reason)
        return [(c, w, [j for j in f if j >= 0])
                for c, w, f in zip(codes.tolist(), weights.tolist(), feats.tolist(), strict=True) if c >= 0]

    def top(self, phi: np.ndarray, values: Mapping[str, Any], *, k: int = MAX_REASONS,
            per_reason: int = 3) -> list[dict[str, Any]]:
        """:meth:`select` formatted for people and storage (features per reason capped at ``per_reason``)."""
        return [{"code": self.code_names[c], "text": self.texts[c], "weight": round(w, 6),
                 "features": [{"name": self.columns[j], "description": self.descriptions[j],
                               "value": _plain(values.get(self.columns[j])),
                               "contribution": round(float(phi[j]), 6)} for j in cols]}
                for c, w, cols in self.select(phi, k=k, per_reason=per_reason)]
