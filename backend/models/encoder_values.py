"""How the feature encoder reads one raw value: missing or not, its category key, a yes/no token, a
number; and what kind a column is when nobody said (:func:`infer_kind`). The same rules on every
path (a DataFrame at training, validated dicts at serving), so both give exactly the same values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("numeric", "integer", "binary", "categorical")
TRUE_TOKENS = frozenset({"yes", "y", "true", "t", "1", "1.0"})
FALSE_TOKENS = frozenset({"no", "n", "false", "f", "0", "0.0"})
PLAIN_NUMBERS = frozenset({float, int, type(None)})  # the types of validated values (no parsing needed)

MSG_NOT_NUMBER = "column {column!r}: cannot convert {value!r} to a number"
MSG_NOT_BINARY = "column {column!r}: {value!r} is not a yes/no value"


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT, pandas NA and blank strings."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, str):
        return value.strip() == ""
    return False


def category_key(value: Any) -> str | None:
    """Canonical string for a categorical value (None when missing); 1, 1.0 and "1" agree."""
    if is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        return str(int(v)) if v.is_integer() else repr(v)
    return str(value).strip()


def binary_token(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    return str(category_key(value)).lower()


def infer_kind(series: pd.Series) -> str:
    """Guess a column kind from its values (used when no kind is given)."""
    s = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype):
        return "binary"
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = s.to_numpy(dtype=float)
        if len(values) and np.isin(values, (0.0, 1.0)).all():
            return "binary"
        finite = values[np.isfinite(values)]
        if pd.api.types.is_integer_dtype(series.dtype) or bool(np.all(finite == np.round(finite))):
            return "integer"
        return "numeric"
    distinct = s.unique()  # each distinct value once (a 1M-row column of a few values)
    tokens = {binary_token(v) for v in distinct}
    if tokens and tokens <= (TRUE_TOKENS | FALSE_TOKENS) and len(tokens) <= 2:
        return "binary"
    if len(s) and pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce").notna().all():
        return "numeric"
    return "categorical"


def numeric_column(col: str, kind: str, values: pd.Series | list[Any]) -> np.ndarray:
    """Numeric/integer/binary values -> float64 with NaN for missing (same result on every path)."""
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
        ):
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            arr[~np.isfinite(arr)] = np.nan
            if kind == "binary":
                bad = ~np.isnan(arr) & (arr != 0.0) & (arr != 1.0)
                if bad.any():
                    raise ValueError(MSG_NOT_BINARY.format(column=col, value=values[bad].tolist()[0]))
            return arr
        codes, uniques = pd.factorize(values, use_na_sentinel=True)  # text: each distinct value converted once
        if len(uniques) < len(values) // 2:
            mapped = np.array([scalar_numeric(col, kind, v) for v in uniques] + [math.nan], dtype=np.float64)
            return mapped[codes]  # the NA sentinel -1 picks the appended NaN
        values = values.tolist()
    if all(type(v) in PLAIN_NUMBERS for v in values):  # validated rows: a vectorized conversion
        arr = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        arr[~np.isfinite(arr)] = np.nan
        if kind != "binary" or bool(np.isin(arr[~np.isnan(arr)], (0.0, 1.0)).all()):
            return arr
    return np.array([scalar_numeric(col, kind, v) for v in values], dtype=np.float64)


def scalar_numeric(col: str, kind: str, v: Any) -> float:
    if is_missing(v):
        return math.nan
    if kind == "binary":
        token = binary_token(v)
        if token in TRUE_TOKENS:
            return 1.0
        if token in FALSE_TOKENS:
            return 0.0
        raise ValueError(MSG_NOT_BINARY.format(column=col, value=v))
    if isinstance(v, bool | np.bool_ | int | np.integer | float | np.floating):
        out = float(v)
    else:
        try:
            out = float(str(v).strip())
        except ValueError:
            raise ValueError(MSG_NOT_NUMBER.format(column=col, value=v)) from None
    return out if math.isfinite(out) else math.nan
