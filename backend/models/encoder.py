"""Feature encoder: raw application columns -> one dense float64 column per feature.

One output column per input column, so attributions computed on the encoded matrix map 1:1 back
to the raw features. Kinds:

- ``numeric`` / ``integer``: float; missing values imputed (see ``missing`` below).
- ``binary``: yes/no, true/false, y/n, t/f, 1/0 (any case) and booleans -> 1/0.
- ``categorical``: strings -> integer codes 0..k-1 in a stable learned order (by training target
  rate when ``y`` is given, else lexical); unknown or rare categories -> the dedicated code ``k``.
  A missing value is its own category when it was seen in training, else it gets the code ``k``.

``missing`` policy for numeric, integer and binary columns: ``"median"`` imputes the training
median; ``"sentinel"`` maps missing to a value below the training minimum (trees can split it
off); ``"auto"`` learns per column: sentinel when the column had missing values in training and
the target rate among missing rows differs from the rest (two-proportion |z| >= ``MISSING_Z``),
median otherwise.

The fitted state is a plain JSON document (``to_dict``/``from_dict``); at runtime
``transform_records`` encodes dicts or a DataFrame with numpy only, and gives exactly the values
``transform`` gives.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from backend.models.encoder_values import (
    KINDS,
    PLAIN_NUMBERS,
    category_key,
    infer_kind,
    numeric_column,
    scalar_numeric,
)
from backend.models.fast_kernels import finish_numeric

SPEC_VERSION = 1
MISSING_Z = 2.0  # |z| of the missing-vs-present target-rate difference that selects "sentinel"
MISSING_KEY = "__missing__"

MSG_MISSING_COLUMNS = "missing column(s): {names}"
MSG_BAD_KIND = "column {column!r}: unknown kind {kind!r} (expected one of {kinds})"
MSG_NOT_FITTED = "FeatureEncoder is not fitted"


class FeatureEncoder(TransformerMixin, BaseEstimator):
    """Encode a raw DataFrame into a dense float64 matrix, one column per feature.

    Parameters
    ----------
    columns : sequence of str, optional
        Feature columns in output order; default: every column of ``X`` at ``fit``.
    kinds : mapping of str to str, optional
        Kind per column (``numeric``, ``integer``, ``binary``, ``categorical``); inferred if absent.
    missing : {"auto", "median", "sentinel"}
        Missing-value policy for non-categorical columns (see the module docstring).
    clip : bool
        Clip numeric values to the training [min, max].
    min_frequency : int
        Categories seen fewer times in training share the unknown code.
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        kinds: Mapping[str, str] | None = None,
        missing: str = "auto",
        clip: bool = False,
        min_frequency: int = 1,
    ) -> None:
        self.columns = columns
        self.kinds = kinds
        self.missing = missing
        self.clip = clip
        self.min_frequency = min_frequency

    # ------------------------------------------------------------------ fit
    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureEncoder:
        if self.missing not in ("auto", "median", "sentinel"):
            raise ValueError(f"missing must be 'auto', 'median' or 'sentinel', got {self.missing!r}")
        X = _as_frame(X)
        columns = list(self.columns) if self.columns is not None else [str(c) for c in X.columns]
        _check_columns(X.columns, columns)
        yv = None if y is None else np.asarray(y, dtype=float)
        given = dict(self.kinds or {})
        kinds, fill, policy, lo, hi, cats = {}, {}, {}, {}, {}, {}
        for col in columns:
            kind = given.get(col) or infer_kind(X[col])
            if kind not in KINDS:
                raise ValueError(MSG_BAD_KIND.format(column=col, kind=kind, kinds=", ".join(KINDS)))
            kinds[col] = kind
            if kind == "categorical":
                cats[col] = self._fit_categories(X[col], yv)
                continue
            values = numeric_column(col, kind, X[col])
            present = values[~np.isnan(values)]
            mn = float(present.min()) if len(present) else 0.0
            mx = float(present.max()) if len(present) else 0.0
            lo[col], hi[col] = mn, mx
            choice = self._missing_choice(np.isnan(values), yv)
            policy[col] = choice
            if choice == "sentinel":
                fill[col] = mn - max(1.0, 0.01 * (mx - mn))
            else:
                fill[col] = float(np.median(present)) if len(present) else 0.0
        self.columns_ = columns
        self.kinds_ = kinds
        self.fill_values_ = fill
        self.missing_policy_ = policy
        self.min_ = lo
        self.max_ = hi
        self.categories_ = cats
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        self._build_lookup()
        return self

    def _missing_choice(self, miss: np.ndarray, y: np.ndarray | None) -> str:
        if self.missing != "auto":
            return self.missing
        n_miss = int(miss.sum())
        if y is None or n_miss == 0 or n_miss == len(miss):
            return "median"
        p1, p0 = y[miss].mean(), y[~miss].mean()
        pooled = y.mean()
        se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_miss + 1 / (len(miss) - n_miss)))
        return "sentinel" if abs(p1 - p0) / se >= MISSING_Z else "median"

    def _fit_categories(self, series: pd.Series, y: np.ndarray | None) -> list[str]:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        keys = np.array([category_key(v) or MISSING_KEY for v in uniques] + [MISSING_KEY], dtype=object)[
            codes
        ]
        frame = pd.DataFrame({"k": keys, "y": y if y is not None else 0.0})
        stats = frame.groupby("k")["y"].agg(["count", "mean"])
        stats = stats[stats["count"] >= max(1, int(self.min_frequency))]
        order = stats.reset_index().sort_values(["mean", "k"] if y is not None else ["k"], kind="stable")
        return [str(k) for k in order["k"]]

    # ------------------------------------------------------------ transform
    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Encode a DataFrame (extra columns are ignored)."""
        self._check_fitted()
        X = _as_frame(X)
        _check_columns(X.columns, self.columns_)
        out = np.empty((len(X), len(self.columns_)), dtype=np.float64)
        for j, col in enumerate(self.columns_):
            out[:, j] = self._encode_column(col, X[col])
        return out

    def transform_records(
        self, records: pd.DataFrame | Mapping[str, Any] | Iterable[Mapping[str, Any]]
    ) -> np.ndarray:
        """Encode a dict, a list of dicts or a DataFrame without pandas or pickle at runtime.

        A single dict gives a 1-D row; a list or DataFrame gives a 2-D matrix. Every feature must be
        present as a key (``None`` is allowed and means missing).
        """
        self._check_fitted()
        if isinstance(records, pd.DataFrame):
            return self.transform(records)
        if isinstance(records, Mapping):
            return self.encode_one(records)
        rows = list(records)
        out = np.empty((len(rows), len(self.columns_)), dtype=np.float64)
        for row in rows:
            _check_columns(row.keys(), self.columns_)
        for j, col in enumerate(self.columns_):
            out[:, j] = self._encode_column(col, [row[col] for row in rows])
        return out

    def encode_one(self, record: Mapping[str, Any]) -> np.ndarray:
        """Fast path for one application (a dict) -> 1-D float64 row."""
        self._check_fitted()
        f = self._fast
        try:
            raw = f["get_num"](record)
            cats = f["get_cat"](record) if f["cat_cols"] else ()
        except KeyError:
            _check_columns(record.keys(), self.columns_)
            raise
        if not PLAIN_NUMBERS.issuperset(map(type, raw)):
            return self._encode_one_slow(record)
        x = np.array(raw, dtype=np.float64)  # None -> NaN
        out = np.empty(len(self.columns_), dtype=np.float64)
        if not finish_numeric(x, f["bin_idx"], f["fill"], f["lo"], f["hi"], bool(self.clip), out, f["num_pos"]):
            return self._encode_one_slow(record)  # raises the not-binary error
        for pos, v, (lookup, unknown) in zip(f["cat_pos"], cats, f["cat_lookups"], strict=True):
            key = (v.strip() or None) if type(v) is str else category_key(v)
            out[pos] = lookup.get(MISSING_KEY if key is None else key, unknown)
        return out

    def _encode_one_slow(self, record: Mapping[str, Any]) -> np.ndarray:
        """Element by element (strings in numeric columns, numpy scalars, bad values)."""
        out = np.empty(len(self._plan), dtype=np.float64)
        for j, (col, kind, lookup, unknown, fill, lo, hi) in enumerate(self._plan):
            v = record[col]
            if lookup is not None:
                key = category_key(v)
                out[j] = lookup.get(MISSING_KEY if key is None else key, unknown)
                continue
            x = scalar_numeric(col, kind, v)
            out[j] = fill if math.isnan(x) else (min(max(x, lo), hi) if self.clip else x)
        return out

    def _encode_column(self, col: str, values: pd.Series | list[Any]) -> np.ndarray:
        kind = self.kinds_[col]
        if kind == "categorical":
            lookup, unknown = self._lookup[col]
            if isinstance(values, pd.Series):  # map each distinct value once
                codes, uniques = pd.factorize(values, use_na_sentinel=True)
                mapped = np.array(
                    [lookup.get(category_key(v) or MISSING_KEY, unknown) for v in uniques]
                    + [lookup.get(MISSING_KEY, unknown)],
                    dtype=np.float64,
                )
                return mapped[codes]  # the NA sentinel -1 picks the appended missing code
            return np.array(
                [lookup.get(category_key(v) or MISSING_KEY, unknown) for v in values], dtype=np.float64
            )
        arr = numeric_column(col, kind, values)
        miss = np.isnan(arr)
        if self.clip:
            np.clip(arr, self.min_[col], self.max_[col], out=arr)
        if miss.any():
            arr[miss] = self.fill_values_[col]
        return arr

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.columns_, dtype=object)

    # -------------------------------------------------------------- spec I/O
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted state."""
        self._check_fitted()
        return {
            "spec_version": SPEC_VERSION,
            "columns": list(self.columns_),
            "kinds": dict(self.kinds_),
            "missing": self.missing,
            "clip": bool(self.clip),
            "min_frequency": int(self.min_frequency),
            "fill_values": {k: float(v) for k, v in self.fill_values_.items()},
            "missing_policy": dict(self.missing_policy_),
            "min": {k: float(v) for k, v in self.min_.items()},
            "max": {k: float(v) for k, v in self.max_.items()},
            "categories": {k: list(v) for k, v in self.categories_.items()},
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> FeatureEncoder:
        """Rebuild a fitted encoder from ``to_dict`` output."""
        if int(spec.get("spec_version", 0)) != SPEC_VERSION:
            raise ValueError(f"unsupported encoder spec version {spec.get('spec_version')!r}")
        enc = cls(
            columns=list(spec["columns"]),
            kinds=dict(spec["kinds"]),
            missing=spec["missing"],
            clip=bool(spec["clip"]),
            min_frequency=int(spec["min_frequency"]),
        )
        enc.columns_ = list(spec["columns"])
        enc.kinds_ = dict(spec["kinds"])
        enc.fill_values_ = {k: float(v) for k, v in spec["fill_values"].items()}
        enc.missing_policy_ = dict(spec["missing_policy"])
        enc.min_ = {k: float(v) for k, v in spec["min"].items()}
        enc.max_ = {k: float(v) for k, v in spec["max"].items()}
        enc.categories_ = {k: list(v) for k, v in spec["categories"].items()}
        enc.feature_names_in_ = np.asarray(enc.columns_, dtype=object)
        enc.n_features_in_ = len(enc.columns_)
        enc._build_lookup()
        return enc

    # ------------------------------------------------------------- helpers
    def _build_lookup(self) -> None:
        self._lookup = {
            c: ({k: i for i, k in enumerate(cats)}, len(cats)) for c, cats in self.categories_.items()
        }
        self._plan = [
            (c, self.kinds_[c], *self._lookup[c], 0.0, 0.0, 0.0)
            if c in self._lookup
            else (c, self.kinds_[c], None, 0, self.fill_values_[c], self.min_[c], self.max_[c])
            for c in self.columns_
        ]
        num = [j for j, c in enumerate(self.columns_) if c not in self._lookup]
        cat = [j for j, c in enumerate(self.columns_) if c in self._lookup]
        names = [self.columns_[j] for j in num]
        self._fast: dict[str, Any] = {
            "get_num": _getter(names),
            "get_cat": _getter([self.columns_[j] for j in cat]),
            "num_pos": np.array(num, dtype=np.intp),
            "cat_cols": [self.columns_[j] for j in cat],
            "cat_pos": cat,
            "cat_lookups": [self._lookup[self.columns_[j]] for j in cat],
            "bin_idx": np.array(
                [i for i, c in enumerate(names) if self.kinds_[c] == "binary"], dtype=np.intp
            ),
            "fill": np.array([self.fill_values_[c] for c in names], dtype=np.float64),
            "lo": np.array([self.min_[c] for c in names], dtype=np.float64),
            "hi": np.array([self.max_[c] for c in names], dtype=np.float64),
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise ValueError(MSG_NOT_FITTED)
        if not hasattr(self, "_lookup"):
            self._build_lookup()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled state without the derived lookup tables (rebuilt on first use by ``_check_fitted``)."""
        state = dict(super().__getstate__())
        for derived in ("_lookup", "_plan", "_fast"):
            state.pop(derived, None)
        return state

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        return tags


class _Getter:
    """``[record[n] for n in names]`` as a tuple, via ``operator.itemgetter`` (fast).

    A module-level class, not a lambda or closure: a fitted encoder lives inside pickled
    scikit-learn pipelines, and ``pickle`` cannot save local functions. (The encoder also leaves its
    derived lookup tables out of its pickled state; see ``FeatureEncoder.__getstate__``.)
    """

    __slots__ = ("names", "_get", "_wrap")

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._get = operator.itemgetter(*self.names) if self.names else None
        self._wrap = len(self.names) == 1  # itemgetter of one name returns the value, not a tuple

    def __call__(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        if self._get is None:
            return ()
        got = self._get(record)
        return (got,) if self._wrap else got

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Getter, (self.names,))


def _getter(names: Sequence[str]) -> _Getter:
    """A picklable callable returning ``[record[n] for n in names]`` as a tuple."""
    return _Getter(names)


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    raise TypeError(f"FeatureEncoder expects a pandas DataFrame, got {type(X).__name__}")


def _check_columns(present: Iterable[Any], required: Sequence[str]) -> None:
    have = {str(c) for c in present}
    missing = [c for c in required if c not in have]
    if missing:
        raise ValueError(MSG_MISSING_COLUMNS.format(names=", ".join(missing)))
