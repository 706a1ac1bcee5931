"""Validation of one application against the serving model's features.

The model's encoder spec says which features exist and their kinds; the feature catalog adds
bounds and categories for the synthetic schema. Errors are collected per field so a form or an
API client sees all of them at once. Values are never echoed back in messages (they may be PII).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.domain.features import FEATURES_BY_NAME, PROTECTED

REQUIRED = frozenset({"loan_amount"})
MAX_STRING = 200

MSG_REQUIRED = "is required"
MSG_UNKNOWN = "is not a feature of the serving model"
MSG_PROTECTED = "is a protected attribute; it is stored for monitoring only and cannot be a model input"
MSG_NUMBER = "must be a number"
MSG_FINITE = "must be a finite number"
MSG_INTEGER = "must be a whole number"
MSG_BINARY = "must be 0 or 1 (or true/false)"
MSG_RANGE = "must be between {lo:g} and {hi:g}"
MSG_MIN = "must be at least {lo:g}"
MSG_MAX = "must be at most {hi:g}"
MSG_CATEGORY = "must be one of: {choices}"
MSG_STRING = "must be text of at most {n} characters"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ApplicationInvalid(ValueError):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


def validate_application(raw: Mapping[str, Any], *, columns: Sequence[str], kinds: Mapping[str, str],
                         categories: Mapping[str, Sequence[str]] | None = None,
                         allow_missing: bool = True, ignore_extra: Sequence[str] = ()) -> dict[str, Any]:
    """Return a clean ``{feature: value}`` dict (``None`` for missing) or raise :class:`ApplicationInvalid`."""
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}
    cats = categories or {}
    skip = set(ignore_extra)
    for key in raw:
        if key in columns or key in skip:
            continue
        errors.append(FieldError(str(key)[:64], MSG_PROTECTED if key in PROTECTED else MSG_UNKNOWN))
    for col in columns:
        value = raw.get(col)
        if value is None or (isinstance(value, str) and not value.strip()):
            if col in REQUIRED or not allow_missing:
                errors.append(FieldError(col, MSG_REQUIRED))
            clean[col] = None
            continue
        err, out = _check(col, kinds.get(col, "numeric"), value, cats.get(col))
        if err:
            errors.append(FieldError(col, err))
        clean[col] = out
    if errors:
        raise ApplicationInvalid(errors)
    return clean


def _check(col: str, kind: str, value: Any, model_categories: Sequence[str] | None) -> tuple[str | None, Any]:
    feat = FEATURES_BY_NAME.get(col)
    if kind == "categorical":
        if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > MAX_STRING:
            return MSG_STRING.format(n=MAX_STRING), None
        text = str(value).strip()
        choices = (feat.categories if feat and feat.categories else None) or model_categories
        if choices and text not in choices:
            return MSG_CATEGORY.format(choices=", ".join(map(str, choices))), None
        return None, text
    if kind == "binary":
        if isinstance(value, bool):
            return None, int(value)
        if isinstance(value, int | float) and value in (0, 1):
            return None, int(value)
        if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false", "yes", "no"):
            return None, int(value.strip().lower() in ("1", "true", "yes"))
        return MSG_BINARY, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MSG_NUMBER, None
    x = float(value)
    if not math.isfinite(x):
        return MSG_FINITE, None
    if kind == "integer" and not x.is_integer():
        return MSG_INTEGER, None
    lo = feat.lower if feat else None
    hi = feat.upper if feat else None
    if lo is not None and hi is not None and not lo <= x <= hi:
        return MSG_RANGE.format(lo=lo, hi=hi), None
    if lo is not None and x < lo:
        return MSG_MIN.format(lo=lo), None
    if hi is not None and x > hi:
        return MSG_MAX.format(hi=hi), None
    return None, int(x) if kind == "integer" else x


_NONE = type(None)


def validate_many(raws: Sequence[Mapping[str, Any]], *, columns: Sequence[str], kinds: Mapping[str, str],
                  categories: Mapping[str, Sequence[str]] | None = None,
                  ignore_extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """:func:`validate_application` for a batch, column by column with numpy.

    The result is identical, value for value and type for type. Any row that is not plainly
    valid (an unknown key, a wrong type, a value out of bounds, a blank string, a bool, ...) sends
    the whole batch through the row-by-row path, which raises the same errors as one at a time.
    """
    n = len(raws)
    slow = [validate_application(r, columns=columns, kinds=kinds, categories=categories,
                                 ignore_extra=ignore_extra) for r in raws] if n < 32 else None
    if slow is not None:
        return slow
    allowed = set(columns) | set(ignore_extra)
    cats = categories or {}
    out_cols: dict[str, list[Any]] = {}
    ok = all(allowed.issuperset(r) for r in raws)
    for col in columns if ok else ():
        values = [r.get(col) for r in raws]
        kind = kinds.get(col, "numeric")
        feat = FEATURES_BY_NAME.get(col)
        if kind == "categorical":
            choices = set((feat.categories if feat and feat.categories else None) or cats.get(col) or ())
            if not choices or not all((type(v) is str and v in choices) or v is None for v in values):
                ok = False
                break
            if col in REQUIRED and any(v is None for v in values):
                ok = False
                break
            out_cols[col] = values
            continue
        if not all(type(v) in (int, float, _NONE) for v in values):
            ok = False
            break
        if col in REQUIRED and any(v is None for v in values):
            ok = False
            break
        arr = np.array([0.0 if v is None else v for v in values], dtype=np.float64)
        if not np.isfinite(arr).all():
            ok = False
            break
        lo = feat.lower if feat else None
        hi = feat.upper if feat else None
        if (lo is not None and (arr < lo).any()) or (hi is not None and (arr > hi).any()):
            ok = False
            break
        if kind == "binary":
            if not np.isin(arr, (0.0, 1.0)).all():
                ok = False
                break
            out_cols[col] = [None if v is None else int(v) for v in values]
        elif kind == "integer":
            if not (arr == np.floor(arr)).all():
                ok = False
                break
            out_cols[col] = [None if v is None else int(v) for v in values]
        else:
            out_cols[col] = [None if v is None else float(v) for v in values]
    if not ok:
        return [validate_application(r, columns=columns, kinds=kinds, categories=categories,
                                     ignore_extra=ignore_extra) for r in raws]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*(out_cols[c] for c in names), strict=True)]
