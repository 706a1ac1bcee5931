"""Adverse-action reasons for one decision: the top four Regulation B reasons, built only from
features the model scored that pushed this applicant's risk up.

Contributions are grouped by reason (several features can share one reason, e.g. DTI and monthly
obligations both mean "Excessive obligations in relation to income"); reasons are ranked by the
sum of their positive contributions. Protected attributes are never model features, and the
catalog check below refuses any that would map to a reason.

Columns outside the feature catalog (a lender's own file) get their reason from the version's
reason map (``creditrisk train --reasons FILE``: ``column: reason``, where a reason is a key of
``backend.domain.REASONS``, e.g. ``excessive_obligations``, or a statement of its own, written in
the form's "Other, specify" box). **Default** for a column the map does not name: its own reason,
``Other, specify: <column name>`` (code ``other:<column>``), so reasons stay specific and never
merge unrelated columns into one bare "Other".

**Materiality** (``reason_floor``, the policy setting ``CREDITRISK_POLICY__REASON_FLOOR``, default 0.05):
a reason whose share of the applicant's total risk-raising contribution (the sum of the positive
contributions of every non-protected feature) is below the floor is not a *principal* reason and is
not listed, so a +0.006 log-odds factor never sits beside a +0.54 one. The largest reason is always
kept (a denial always has at least one reason when anything raised the risk), and at most four are
listed. Ties keep the lower code index (the numba kernel's stable order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from backend.domain import FEATURES_BY_NAME, OTHER_PREFIX, PROTECTED, REASONS
from backend.models.fast_kernels import select_reasons, select_reasons_batch

MAX_REASONS = 4
DEFAULT_REASON_FLOOR = 0.05


def material(selected: list[tuple[int, float, list[int]]], total: float, floor: float
             ) -> list[tuple[int, float, list[int]]]:
    """The principal reasons among ``selected`` (most important first): the first always, the others
    while their share of ``total`` (all risk-raising contribution) is at least ``floor``."""
    if not selected or total <= 0.0:
        return selected[:1]
    return [r for i, r in enumerate(selected) if i == 0 or r[1] / total >= floor]


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


def reason_for(column: str, given: str | None, catalog_code: str | None) -> tuple[str, str]:
    """(code, text) of ``column``'s reason: the map's entry, else the catalog's, else the default."""
    if given is not None and given.strip():
        value = given.strip()
        if value in REASONS:
            return value, REASONS[value]
        statement = value[len(OTHER_PREFIX):] if value.startswith(OTHER_PREFIX) else value
        return f"other:{statement.lower()}", OTHER_PREFIX + statement
    if catalog_code:
        return catalog_code, REASONS.get(catalog_code, REASONS["other"])
    return f"other:{column}", OTHER_PREFIX + column.replace("_", " ")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


class ReasonMapper:
    """Reason selection for one model's column order, precomputed once per served model."""

    def __init__(self, feature_names: Sequence[str], mapping: Mapping[str, str] | None = None,
                 protected: Sequence[str] = (), floor: float = DEFAULT_REASON_FLOOR) -> None:
        self.floor = float(floor)
        self.columns = list(feature_names)
        given = dict(mapping or {})
        barred = set(PROTECTED) | set(protected)
        codes: list[str] = []
        texts: dict[str, str] = {}
        for name in self.columns:
            feat = FEATURES_BY_NAME.get(name)
            code, text = reason_for(name, given.get(name), feat.reason_code if feat else None)
            if name in barred:
                code = "__protected__"
            codes.append(code)
            texts.setdefault(code, text)
        self.code_names = sorted(set(codes))
        index = {c: i for i, c in enumerate(self.code_names)}
        self.code_idx = np.array([index[c] for c in codes], dtype=np.int64)
        self.allowed = np.array([c != "__protected__" for c in codes])
        self.texts = [texts[c] for c in self.code_names]
        self.descriptions = [FEATURES_BY_NAME[n].description if n in FEATURES_BY_NAME else n for n in self.columns]

    def select(self, phi: np.ndarray, *, k: int = MAX_REASONS,
               per_reason: int = 3) -> list[tuple[int, float, list[int]]]:
        """The decision's principal reasons as (code index, weight, feature columns), most important first;
        reasons below the materiality floor are left out (see the module docstring)."""
        phi = np.ascontiguousarray(phi, dtype=np.float64)
        codes, weights, feats = select_reasons(phi, self.code_idx, self.allowed, len(self.code_names), k, per_reason)
        picked = [(c, w, [j for j in f if j >= 0])
                  for c, w, f in zip(codes.tolist(), weights.tolist(), feats.tolist(), strict=True) if c >= 0]
        total = float(phi[(phi > 0.0) & self.allowed].sum())
        return material(picked, total, self.floor)

    def top(self, phi: np.ndarray, values: Mapping[str, Any], *, k: int = MAX_REASONS,
            per_reason: int = 3) -> list[dict[str, Any]]:
        """:meth:`select` formatted for people and storage (features per reason capped at ``per_reason``)."""
        return [{"code": self.code_names[c], "text": self.texts[c], "weight": round(w, 6),
                 "features": [{"name": self.columns[j], "description": self.descriptions[j],
                               "value": _plain(values.get(self.columns[j])),
                               "contribution": round(float(phi[j]), 6)} for j in cols]}
                for c, w, cols in self.select(phi, k=k, per_reason=per_reason)]

    def select_batch(self, phi: np.ndarray, *, k: int = MAX_REASONS,
                     per_reason: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`select` for every row of ``phi`` (n, p): ``(codes (n, k), weights (n, k), features (n, k,
        per_reason))`` as arrays, -1 where a row has fewer reasons (one compiled call for the whole batch); the
        materiality floor applies as in :func:`material` (the first reason always, the others while their share
        of the row's risk-raising contribution is at least ``floor``)."""
        phi = np.ascontiguousarray(phi, dtype=np.float64)
        codes, weights, feats = select_reasons_batch(phi, self.code_idx, self.allowed, len(self.code_names), k,
                                                     per_reason)
        total = np.where((phi > 0.0) & self.allowed[None, :], phi, 0.0).sum(axis=1)[:, None]
        valid = codes >= 0
        rank = np.cumsum(valid, axis=1) - 1
        share = weights / np.where(total > 0.0, total, 1.0)
        keep = valid & ((rank == 0) | ((total > 0.0) & (share >= self.floor)))
        codes = np.where(keep, codes, -1)
        return codes, weights, feats

    def from_selection(self, codes: np.ndarray, weights: np.ndarray, feats: np.ndarray, phi: np.ndarray,
                       values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One row of :meth:`select_batch` formatted as :meth:`top` formats it (the same dicts)."""
        return [{"code": self.code_names[c], "text": self.texts[c], "weight": round(w, 6),
                 "features": [{"name": self.columns[j], "description": self.descriptions[j],
                               "value": _plain(values.get(self.columns[j])),
                               "contribution": round(float(phi[j]), 6)} for j in cols if j >= 0]}
                for c, w, cols in zip(codes.tolist(), weights.tolist(), feats.tolist(), strict=True) if c >= 0]
