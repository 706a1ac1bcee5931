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

from backend.model.reason_codes import REASONS
from backend.training.features import FEATURES_BY_NAME, PROTECTED

MAX_REASONS = 4


def top_reasons(
    feature_names: Sequence[str], phi: np.ndarray, values: Mapping[str, Any], *, k: int = MAX_REASONS
) -> list[dict[str, Any]]:
    """The ``k`` principal reasons, most important first.

    Parameters
    ----------
    feature_names : names in model column order.
    phi : per-feature contributions (positive = raises the risk of default).
    values : the applicant's raw values, by feature name.
    """
    grouped: dict[str, dict[str, Any]] = {}
    order = np.argsort(-phi)
    for j in order:
        contribution = float(phi[j])
        if contribution <= 0:
            break
        name = feature_names[j]
        if name in PROTECTED:
            continue
        feat = FEATURES_BY_NAME.get(name)
        code = feat.reason_code if feat is not None else "other"
        entry = grouped.setdefault(
            code,
            {
                "code": code,
                "text": REASONS.get(code, REASONS.get("other", code)),
                "weight": 0.0,
                "features": [],
            },
        )
        entry["weight"] += contribution
        entry["features"].append(
            {
                "name": name,
                "description": feat.description if feat else name,
                "value": _plain(values.get(name)),
                "contribution": round(contribution, 6),
            }
        )
    ranked = sorted(grouped.values(), key=lambda e: -e["weight"])[:k]
    for e in ranked:
        e["weight"] = round(e["weight"], 6)
    return ranked


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
