"""Population stability index (PSI), vectorized with numpy (pure: arrays in, numbers out).

PSI compares the binned distribution of a current sample with the one of a reference sample:

    PSI = sum_b (c_b - r_b) * ln(c_b / r_b)

where ``r_b`` and ``c_b`` are the shares of the reference and current rows in bin ``b``. Bins are
fixed by the reference alone (:class:`BinSpec`), so every period is measured on the same bins and
periods are comparable:

* **numeric** (numeric, integer and binary features, the model score): interior edges at the
  reference deciles (``bins`` quantiles, duplicates removed; estimated on 200,000 evenly spaced
  values when the reference is larger); when the reference has at most
  ``bins`` distinct values, each distinct value is its own bin. Bins are half-open ``[a, b)``
  (a value equal to an edge goes to the bin above, as in ``numpy.histogram``), the outer bins are
  open-ended (``< e0`` and ``>= e_last``), so out-of-range current values are counted, not lost.
* **categorical**: one bin per reference category; a category never seen in the reference gets
  its own "other (unseen)" bin.
* **missing** values (NaN, None, blank strings) always get their own last bin: a feed that starts
  returning nulls is drift, not something to drop.

Empty bins: a share of exactly 0 is replaced by :data:`EPS` (1e-4) before the logarithm, the
constant evidently uses (``feel_zeroes``; evidently switches to ``min_share / 1e6`` only when a
non-empty bin's share is itself <= 1e-4). A bin empty on both sides contributes 0.

Binning is one vectorized pass per feature column: compare-and-add against the edges into small
integer codes, then one ``np.bincount`` (with a group offset to count many periods at once). On
this machine that is faster than ``np.searchsorted`` per column and than a 2-D bincount over the
whole matrix; ``bench/psi.py`` measures it against evidently's drift preset.

Bands (the usual reading): below 0.10 stable, 0.10-0.25 watch, above 0.25 act (:func:`band`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from backend.monitoring.config import PSI_ACT, PSI_WATCH

__all__ = ["BAD_BINS", "BAD_COUNTS", "BAD_EDGES", "BAD_KIND", "BAD_NDIM", "COUNTS_MISMATCH", "DEFAULT_BINS", "EMPTY",
           "EPS", "MISSING_LABEL", "NOT_NUMERIC", "OTHER_LABEL", "SHAPE_MISMATCH", "BinSpec", "band",
           "fit_spec", "grouped_counts", "numeric_codes", "psi", "psi_from_counts", "psi_matrix",
           "quantile_edges", "spec_counts", "specs_from_dict"]

EPS = 1e-4  # share used for an empty bin (evidently's constant)
DEFAULT_BINS = 10
MAX_BINS = 100
MAX_FIT_ROWS = 200_000  # quantile edges of larger references are fitted on an evenly spaced sample
MISSING_LABEL = "missing"
OTHER_LABEL = "other (unseen)"

# input errors (asserted by tests)
EMPTY = "PSI needs at least one reference and one current value (got {ref} reference and {cur} current)."
SHAPE_MISMATCH = "Reference and current need the same number of features (columns): {ref} vs {cur}."
BAD_NDIM = "Expected a 1-D array or a 2-D matrix (rows x features), got {ndim} dimensions."
BAD_BINS = "bins must be an integer from 2 to 100 (got {bins!r})."
BAD_EDGES = "Bin edges must be finite and strictly increasing."
COUNTS_MISMATCH = "Reference and current counts need the same number of bins: {ref} vs {cur}."
BAD_COUNTS = "Bin counts must be finite and non-negative."
NOT_NUMERIC = "Numeric PSI needs numbers (got values of dtype {dtype})."
BAD_KIND = "kind must be 'numeric' or 'categorical' (got {kind!r})."


# --------------------------------------------------------------------------- validation
def _bins(bins: Any) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or not 2 <= int(bins) <= MAX_BINS:
        raise ValueError(BAD_BINS.format(bins=bins))
    return int(bins)


def _numeric(x: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "O":
            try:  # None -> NaN; anything else that is not a number is an error
                return np.asarray(arr, dtype=np.float64)
            except (TypeError, ValueError):
                pass
        raise ValueError(NOT_NUMERIC.format(dtype=arr.dtype))
    return np.asarray(arr, dtype=np.float64)


def _edges(edges: ArrayLike) -> NDArray[np.float64]:
    e = np.asarray(edges, dtype=np.float64).ravel()
    if not np.isfinite(e).all() or (e.size > 1 and not (np.diff(e) > 0).all()):
        raise ValueError(BAD_EDGES)
    return e


# --------------------------------------------------------------------------- binning
def quantile_edges(reference: ArrayLike, bins: int = DEFAULT_BINS, *,
                   max_rows: int = MAX_FIT_ROWS) -> NDArray[np.float64]:
    """Interior bin edges fitted on a reference sample.

    Parameters
    ----------
    reference : array_like of float
        Reference values; NaN (missing) values are ignored (they have their own bin).
    bins : int, default 10
        Number of quantile bins (2-100).
    max_rows : int, default 200,000
        Larger references have their quantiles estimated on this many evenly spaced values (the
        bins are a design choice; counts and PSI always use every row).

    Returns
    -------
    ndarray of float
        Strictly increasing edges: the distinct values themselves when the reference has at
        most ``bins`` of them (one bin per value), else the ``1/bins .. (bins-1)/bins``
        quantiles with duplicates removed. Empty when the reference has no finite value.
    """
    bins = _bins(bins)
    x = _numeric(reference).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.empty(0)
    # few distinct values? A strided sample with more than ``bins`` of them settles it without
    # hashing the whole column; otherwise count them exactly (hash-based, linear time).
    step = max(1, x.size // 4096)
    if np.unique(x[::step]).size <= bins:
        distinct = pd.unique(x)
        if distinct.size <= bins:
            return np.sort(distinct)
    fit = x[:: -(-x.size // max_rows)] if x.size > max_rows else x
    return np.unique(np.quantile(fit, np.arange(1, bins) / bins))


def numeric_codes(x: ArrayLike, edges: ArrayLike) -> NDArray[np.integer[Any]]:
    """Bin codes of numeric values: ``0 .. len(edges)`` by value, ``len(edges) + 1`` for missing.

    Code ``k`` holds ``edges[k-1] <= x < edges[k]`` (code 0: ``x < edges[0]``; the last value
    code: ``x >= edges[-1]``); NaN gets the missing code. One compare-and-add pass per edge.
    """
    v = _numeric(x)
    e = _edges(edges)
    codes = np.zeros(v.shape, dtype=np.int8 if e.size < 126 else np.int16)
    for edge in e:
        codes += v >= edge
    codes[np.isnan(v)] = e.size + 1
    return codes


def _category_key(value: Any) -> str | None:
    """Canonical category string (None when missing: None, NaN, blank); 1, 1.0 and "1" agree."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    key = str(value).strip()
    return key or None


def _category_codes(values: ArrayLike, categories: tuple[str, ...]) -> NDArray[np.int32]:
    """Codes ``0..C-1`` for known categories, ``C`` for unseen, ``C+1`` for missing."""
    arr = np.asarray(values, dtype=object).ravel()
    n_cat = len(categories)
    codes = pd.Categorical(arr, categories=list(categories)).codes.astype(np.int32)
    odd = np.flatnonzero(codes < 0)  # missing, unseen, or not a plain string (1 vs "1", " a ")
    if odd.size:
        index = {c: i for i, c in enumerate(categories)}
        keys = [_category_key(v) for v in arr[odd]]
        codes[odd] = [n_cat + 1 if k is None else index.get(k, n_cat) for k in keys]
    return codes


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


@dataclass(frozen=True)
class BinSpec:
    """The bins of one feature, fitted on the reference (see the module docstring).

    ``numeric``: ``len(edges) + 1`` value bins then the missing bin. ``categorical``: one bin per
    category, the "other (unseen)" bin, then the missing bin.
    """

    kind: str
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    _edge_array: NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("numeric", "categorical"):
            raise ValueError(BAD_KIND.format(kind=self.kind))
        object.__setattr__(self, "_edge_array", _edges(self.edges))

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 2 if self.kind == "numeric" else len(self.categories) + 2

    def labels(self) -> list[str]:
        if self.kind == "categorical":
            return [*self.categories, OTHER_LABEL, MISSING_LABEL]
        e = [_fmt(v) for v in self.edges]
        if not e:
            return ["any value", MISSING_LABEL]
        inner = [f"[{a}, {b})" for a, b in zip(e[:-1], e[1:], strict=True)]
        return [f"< {e[0]}", *inner, f">= {e[-1]}", MISSING_LABEL]

    def codes(self, values: ArrayLike) -> NDArray[np.integer[Any]]:
        """Bin code of each value (see the class docstring for the layout)."""
        if self.kind == "numeric":
            return numeric_codes(values, self._edge_array)
        return _category_codes(values, self.categories)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "edges": list(self.edges), "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BinSpec:
        return cls(str(d["kind"]), tuple(float(v) for v in d.get("edges", ())),
                   tuple(str(c) for c in d.get("categories", ())))


def fit_spec(reference: ArrayLike, kind: str, bins: int = DEFAULT_BINS) -> BinSpec:
    """Fit the bins of one feature on its reference values (``kind``: numeric or categorical)."""
    if kind == "numeric":
        return BinSpec("numeric", edges=tuple(float(v) for v in quantile_edges(reference, bins)))
    if kind != "categorical":
        raise ValueError(BAD_KIND.format(kind=kind))
    keys = {_category_key(v) for v in pd.unique(np.asarray(reference, dtype=object).ravel())}
    return BinSpec("categorical", categories=tuple(sorted(k for k in keys if k is not None)))


def grouped_counts(codes: ArrayLike, n_bins: int, groups: ArrayLike | None = None,
                   n_groups: int = 1) -> NDArray[np.int64]:
    """Counts per (group, bin) in one ``np.bincount``; shape ``(n_groups, n_bins)``.

    ``groups`` (ints in ``[0, n_groups)``, one per row) lets one pass count many periods at once.
    """
    c = np.asarray(codes, dtype=np.intp).ravel()
    if groups is None:
        return np.bincount(c, minlength=n_bins).reshape(1, n_bins)
    g = np.asarray(groups, dtype=np.intp).ravel()
    if g.shape != c.shape:
        raise ValueError(SHAPE_MISMATCH.format(ref=c.shape[0], cur=g.shape[0]))
    return np.bincount(g * n_bins + c, minlength=n_groups * n_bins).reshape(n_groups, n_bins)


# --------------------------------------------------------------------------- PSI
def psi_from_counts(reference: ArrayLike, current: ArrayLike, *, eps: float = EPS) -> NDArray[np.float64]:
    """PSI from bin counts (or shares) along the last axis.

    Parameters
    ----------
    reference, current : array_like, shape (..., n_bins)
        Counts per bin; they broadcast against each other (one reference row can be compared with
        a stack of periods). Each row must hold at least one observation.
    eps : float, default 1e-4
        Share used in place of an empty bin's 0 before taking logarithms.

    Returns
    -------
    ndarray of float
        PSI per row (a 0-d array for 1-D inputs; use ``float()``).
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    if r.shape[-1:] != c.shape[-1:]:
        raise ValueError(COUNTS_MISMATCH.format(ref=r.shape[-1:], cur=c.shape[-1:]))
    if not (np.isfinite(r).all() and np.isfinite(c).all()) or (r < 0).any() or (c < 0).any():
        raise ValueError(BAD_COUNTS)
    rt, ct = r.sum(axis=-1, keepdims=True), c.sum(axis=-1, keepdims=True)
    if (rt <= 0).any() or (ct <= 0).any():
        raise ValueError(EMPTY.format(ref=int(rt.min()), cur=int(ct.min())))
    rp, cp = r / rt, c / ct
    rp = np.where(rp == 0, eps, rp)
    cp = np.where(cp == 0, eps, cp)
    out: NDArray[np.float64] = np.sum((cp - rp) * np.log(cp / rp), axis=-1)
    return out


def psi(reference: ArrayLike, current: ArrayLike, *, bins: int = DEFAULT_BINS,
        edges: ArrayLike | None = None) -> float:
    """PSI of one numeric feature (NaN counted in the missing bin).

    Parameters
    ----------
    reference, current : array_like of float, 1-D
        The two samples.
    bins : int, default 10
        Quantile bins fitted on ``reference`` (ignored when ``edges`` is given).
    edges : array_like of float, optional
        Interior edges to use instead (strictly increasing, finite).

    Returns
    -------
    float
        The PSI (0 for identical distributions; larger is more shift).
    """
    r, c = _numeric(reference), _numeric(current)
    if r.ndim != 1 or c.ndim != 1:
        raise ValueError(BAD_NDIM.format(ndim=max(r.ndim, c.ndim)))
    if r.size == 0 or c.size == 0:
        raise ValueError(EMPTY.format(ref=r.size, cur=c.size))
    e = quantile_edges(r, bins) if edges is None else _edges(edges)
    nb = e.size + 2
    return float(psi_from_counts(grouped_counts(numeric_codes(r, e), nb)[0], grouped_counts(numeric_codes(c, e), nb)[0]))


def psi_matrix(reference: ArrayLike, current: ArrayLike, *, bins: int = DEFAULT_BINS) -> NDArray[np.float64]:
    """PSI of every column of two numeric matrices (rows x features); NaN is the missing bin.

    Parameters
    ----------
    reference : array_like of float, shape (n_ref, n_features)
    current : array_like of float, shape (n_cur, n_features)
    bins : int, default 10
        Quantile bins per feature, fitted on the reference column.

    Returns
    -------
    ndarray of float, shape (n_features,)
    """
    bins = _bins(bins)
    r, c = _numeric(reference), _numeric(current)
    for a in (r, c):
        if a.ndim != 2:
            raise ValueError(BAD_NDIM.format(ndim=a.ndim))
    if r.shape[1] != c.shape[1]:
        raise ValueError(SHAPE_MISMATCH.format(ref=r.shape[1], cur=c.shape[1]))
    if r.shape[0] == 0 or c.shape[0] == 0:
        raise ValueError(EMPTY.format(ref=r.shape[0], cur=c.shape[0]))
    r, c = np.asfortranarray(r), np.asfortranarray(c)  # one contiguous pass per column
    out = np.empty(r.shape[1])
    for j in range(r.shape[1]):
        e = quantile_edges(r[:, j], bins)
        nb = e.size + 2
        out[j] = psi_from_counts(grouped_counts(numeric_codes(r[:, j], e), nb)[0],
                                 grouped_counts(numeric_codes(c[:, j], e), nb)[0])
    return out


def band(value: float | None, *, watch: float = PSI_WATCH, act: float = PSI_ACT) -> str:
    """``"stable"`` (< watch), ``"watch"`` (watch..act), ``"act"`` (> act); ``"n/a"`` for None/NaN."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if value > act:
        return "act"
    return "watch" if value >= watch else "stable"


def spec_counts(values: ArrayLike, spec: BinSpec, groups: ArrayLike | None = None,
                n_groups: int = 1) -> NDArray[np.int64]:
    """Counts of ``values`` in ``spec``'s bins per group, shape ``(n_groups, spec.n_bins)``."""
    return grouped_counts(spec.codes(values), spec.n_bins, groups, n_groups)


def specs_from_dict(d: Mapping[str, Mapping[str, Any]]) -> dict[str, BinSpec]:
    return {k: BinSpec.from_dict(v) for k, v in d.items()}
