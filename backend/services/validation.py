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

from backend.training.features import FEATURES_BY_NAME, PROTECTED

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
