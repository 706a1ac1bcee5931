"""Training datasets: a user's CSV/Parquet file (or a small YAML schema) and the synthetic generator.

``load_dataset`` copes with real-world files: string categoricals, yes/no flags, missing values,
integer-coded flags, ID-like columns, constant columns and date columns. Protected attributes are
kept aside for fairness evaluation and are never features. Every bad input raises
``DatasetError`` with a one-line message built from the ``MSG_*`` templates below.

YAML schema (paths relative to the schema file)::

    data: credit.csv
    target: Status
    positive: bad            # or a list of values that mean "default"
    protected: [Marital]
    exclude: [rownames]
    kinds: {Records: binary} # optional kind overrides
    reasons: reasons.yaml    # optional reason map (or an inline mapping), see backend.training.reason_map
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from backend.models import FALSE_TOKENS, KINDS, TRUE_TOKENS, category_key, infer_kind

MSG_NOT_FOUND = "data file not found: {path}"
MSG_UNREADABLE = "cannot read data file {path}: {reason}"
MSG_FORMAT = "unsupported data file type {suffix!r} for {path} (use .csv, .tsv or .parquet)"
MSG_EMPTY = "data file {path} has no rows"
MSG_MISSING_TARGET = "target column {target!r} not found; columns are: {columns}"
MSG_UNKNOWN_COLUMNS = "unknown column(s) in --{option}: {names}; columns are: {columns}"
MSG_TARGET_REUSED = "target column {target!r} cannot also be listed in --{option}"
MSG_NEED_POSITIVE = ("target column {target!r} is not 0/1 or yes/no: pass --positive (observed values: "
                     "{observed})")
MSG_TOO_FEW_ROWS = ("only {count} row(s) have a value in target column {target!r}; need at least {minimum} "
                    "({per_class} of each class)")
MSG_UNKNOWN_POSITIVE = (
    "positive value {positive} not found in target column {target!r}; observed values: {observed}"
)
MSG_SINGLE_CLASS = "target column {target!r} has a single class ({value}); need both outcomes"
MSG_TOO_FEW = "target column {target!r} has only {count} row(s) of class {label}; need at least {minimum}"
MSG_NO_FEATURES = "no usable feature columns left (dropped: {dropped})"
MSG_BAD_KIND = "unknown kind {kind!r} for column {column!r} (expected one of {kinds})"
MSG_SCHEMA = "invalid schema file {path}: {reason}"

MIN_CLASS_COUNT = 10  # rows of each class needed for a stratified split plus cross-validation
MAX_CATEGORIES = 100  # string columns with more distinct values are free text, not categories
MAX_LISTED = 15  # names shown in an error message before "... (+N more)"
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DATE_RE = re.compile(  # ISO dates and times, 2020/01/31, 01/31/2020 or 31.01.20, 2020-01, Dec-2015, 15-Dec-2015
    r"^(\d{4}[-/]\d{1,2}[-/]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2})?.*)?"
    r"|\d{1,2}[-/.]\d{1,2}[-/.](\d{2}|\d{4})( \d{1,2}:\d{2}(:\d{2})?.*)?"
    r"|\d{4}-\d{2}"
    rf"|(\d{{1,2}}[- ])?({_MONTHS})[a-z]*[- ,]+\d{{2,4}})$",
    re.IGNORECASE,
)
_ID_NAME = re.compile(r"(^|[_\s])(id|uuid|guid|key)$|^rownames$|^unnamed: ?\d+$|^index$", re.IGNORECASE)


def looks_like_datetime(series: pd.Series) -> bool:
    """True for datetime dtypes and for string columns holding ISO dates."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return True
    if series.dtype != object:
        return False
    sample = series.dropna().astype(str).head(200)
    return bool(len(sample)) and bool(sample.map(lambda v: bool(_DATE_RE.match(v))).all())


class DatasetError(ValueError):
    """Bad training input; ``str(error)`` is a one-line message naming the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass
class Dataset:
    """Features, 0/1 target and protected attributes, row-aligned."""

    X: pd.DataFrame
    y: np.ndarray
    protected: pd.DataFrame
    kinds: dict[str, str]
    target: str
    positive: list[str]
    source: str
    sha256: str
    dropped: dict[str, str] = field(default_factory=dict)
    extras: pd.DataFrame | None = None  # e.g. the synthetic pd_true; kept with the holdout
    reason_codes: dict[str, str] = field(default_factory=dict)  # column -> reason (backend.training.reason_map)

    @property
    def features(self) -> list[str]:
        return list(self.X.columns)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "rows": len(self.X),
            "positives": int(self.y.sum()),
            "positive_rate": float(self.y.mean()),
            "target": self.target,
            "positive": self.positive,
            "features": self.kinds,
            "protected": list(self.protected.columns),
            "dropped": self.dropped,
            "reason_codes": self.reason_codes,
        }


def _listing(names: Sequence[Any]) -> str:
    names = [str(n) for n in names]
    extra = len(names) - MAX_LISTED
    return ", ".join(names[:MAX_LISTED]) + (f", ... (+{extra} more)" if extra > 0 else "")


def _split_names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def read_table(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read a CSV/TSV/Parquet file; returns the frame and the SHA-256 of the file bytes."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(MSG_NOT_FOUND.format(path=p))
    suffixes = [s.lower() for s in p.suffixes]
    suffix = (
        suffixes[-2]
        if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz") and len(suffixes) > 1
        else (suffixes[-1] if suffixes else "")
    )
    try:
        raw = p.read_bytes()
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif suffix in (".csv", ".txt", ".tsv"):
            frame = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", low_memory=False)
        else:
            raise DatasetError(MSG_FORMAT.format(suffix=suffix or p.name, path=p))
    except DatasetError:
        raise
    except pd.errors.EmptyDataError:
        raise DatasetError(MSG_EMPTY.format(path=p)) from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is reported as one line
        raise DatasetError(MSG_UNREADABLE.format(path=p, reason=f"{type(exc).__name__}: {exc}")) from None
    if frame.empty or len(frame.columns) == 0:
        raise DatasetError(MSG_EMPTY.format(path=p))
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, hashlib.sha256(raw).hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """Deterministic SHA-256 of a DataFrame's column names and values."""
    h = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def load_dataset(
    data: str | Path | pd.DataFrame,
    *,
    target: str,
    positive: Any = None,
    protected: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    kinds: Mapping[str, str] | None = None,
    reasons: str | Path | Mapping[str, Any] | None = None,
) -> Dataset:
    """Load a user's table (path or DataFrame) into a ``Dataset``.

    ``positive`` is the target value (or values, or a comma-separated string) meaning default;
    it may be omitted when the target is 0/1, true/false or yes/no (see :func:`_target_to01`).
    ``reasons``: the reason map (a YAML/JSON file or a mapping, see :mod:`backend.training.reason_map`).
    """
    from backend.training.reason_map import load_reason_map

    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise DatasetError(MSG_EMPTY.format(path="<DataFrame>"))
        frame, sha, source = data.copy(), frame_sha256(data), "<DataFrame>"
        frame.columns = [str(c).strip() for c in frame.columns]
    else:
        frame, sha = read_table(data)
        source = str(data)
    columns = list(frame.columns)
    if target not in frame.columns:
        raise DatasetError(MSG_MISSING_TARGET.format(target=target, columns=_listing(columns)))
    prot, excl = _split_names(protected), _split_names(exclude)
    for option, names in (("protected", prot), ("exclude", excl)):
        unknown = [n for n in names if n not in frame.columns]
        if unknown:
            raise DatasetError(
                MSG_UNKNOWN_COLUMNS.format(option=option, names=_listing(unknown), columns=_listing(columns))
            )
        if target in names:
            raise DatasetError(MSG_TARGET_REUSED.format(target=target, option=option))
    overrides = dict(kinds or {})
    for col, kind in overrides.items():
        if kind not in KINDS:
            raise DatasetError(MSG_BAD_KIND.format(kind=kind, column=col, kinds=", ".join(KINDS)))
        if col not in frame.columns:
            raise DatasetError(
                MSG_UNKNOWN_COLUMNS.format(option="kinds", names=col, columns=_listing(columns))
            )

    reason_codes = load_reason_map(reasons, columns=columns, protected=prot)
    frame = frame[_category_keys(frame[target]).notna()].reset_index(drop=True)
    y, pos_keys = _target_to01(frame[target], target, positive)
    dropped: dict[str, str] = {}
    feature_kinds: dict[str, str] = {}
    for col in frame.columns:
        if col == target or col in prot:
            continue
        if col in excl:
            dropped[col] = "excluded"
            continue
        reason = _drop_reason(frame[col], col) if col not in overrides else None
        if reason:
            dropped[col] = reason
        else:
            feature_kinds[col] = overrides.get(col) or infer_kind(frame[col])
    if not feature_kinds:
        raise DatasetError(
            MSG_NO_FEATURES.format(dropped=_listing([f"{c} ({r})" for c, r in dropped.items()]))
        )
    return Dataset(
        X=frame[list(feature_kinds)].copy(),
        y=y,
        protected=frame[prot].copy(),
        kinds=feature_kinds,
        target=target,
        positive=pos_keys,
        source=source,
        sha256=sha,
        dropped=dropped,
        reason_codes={c: r for c, r in reason_codes.items() if c in feature_kinds},
    )


def _category_keys(series: pd.Series) -> pd.Series:
    """``series.map(category_key)``, computed once per distinct value (a 1M-row target has two)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.array([category_key(v) for v in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=series.index, dtype=object)


def _target_to01(series: pd.Series, target: str, positive: Any) -> tuple[np.ndarray, list[str]]:
    """The target as 0/1 and the values that mean default.

    Without ``positive``: 0/1, true/false, yes/no, y/n, t/f (any case, as text, numbers or booleans)
    are read with the "true" side as the positive class; any other labels need ``positive``. A given
    ``positive`` matches exactly, else ignoring case (``--positive yes`` on "Yes"/"No")."""
    if len(series) < 2 * MIN_CLASS_COUNT:
        raise DatasetError(MSG_TOO_FEW_ROWS.format(count=len(series), target=target, minimum=2 * MIN_CLASS_COUNT,
                                                   per_class=MIN_CLASS_COUNT))
    keys = _category_keys(series)
    observed = sorted(keys.unique(), key=str)
    shown = _listing([repr(v) for v in observed])
    if positive is None or (isinstance(positive, str) and not positive.strip()):
        lowered = {str(k).lower() for k in observed}
        if not lowered <= TRUE_TOKENS | FALSE_TOKENS:
            raise DatasetError(MSG_NEED_POSITIVE.format(target=target, observed=shown))
        wanted = {k for k in observed if str(k).lower() in TRUE_TOKENS}
    else:
        values = [positive] if not isinstance(positive, list | tuple | set) else list(positive)
        wanted = {k for k in map(category_key, values) if k is not None}
        if isinstance(positive, str) and positive.strip() not in observed and "," in positive:
            wanted = {v.strip() for v in positive.split(",")}
        by_lower = {str(k).lower(): k for k in observed}
        wanted = {w if w in set(observed) else by_lower.get(w.lower(), w) for w in wanted}
        missing = [v for v in wanted if v not in set(observed)]
        if missing or not wanted:
            raise DatasetError(
                MSG_UNKNOWN_POSITIVE.format(
                    positive=_listing([repr(v) for v in missing]), target=target, observed=shown
                )
            )
    y = keys.isin(wanted).to_numpy(dtype=np.int8)
    if len(observed) < 2 or y.min() == y.max():
        raise DatasetError(MSG_SINGLE_CLASS.format(target=target, value=shown))
    for label, count in ((1, int(y.sum())), (0, int(len(y) - y.sum()))):
        if count < MIN_CLASS_COUNT:
            raise DatasetError(
                MSG_TOO_FEW.format(target=target, count=count, label=label, minimum=MIN_CLASS_COUNT)
            )
    return y, sorted(wanted)


def _drop_reason(series: pd.Series, name: str) -> str | None:
    """Why a column cannot be a feature (None when it can)."""
    values = series.dropna()
    n_unique = values.nunique()
    if n_unique <= 1:
        return "constant"
    if looks_like_datetime(series):
        return "datetime"
    is_text = not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype))
    is_int = pd.api.types.is_integer_dtype(series.dtype)
    if (is_text or is_int) and n_unique == len(series) and len(series) >= 20:
        return "ID-like (unique per row)"
    if is_text and infer_kind(series) != "categorical":
        return None
    if _ID_NAME.search(name) and n_unique > 0.5 * len(series):
        return "ID-like (name and cardinality)"
    if is_text and n_unique > MAX_CATEGORIES:
        return f"free text ({n_unique} distinct values)"
    return None


def load_schema(path: str | Path) -> dict[str, Any]:
    """Read a YAML schema into keyword arguments for ``load_dataset`` (plus ``data``)."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise DatasetError(MSG_SCHEMA.format(path=p, reason="file not found")) from None
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(MSG_SCHEMA.format(path=p, reason=type(exc).__name__)) from None
    if not isinstance(doc, dict):
        raise DatasetError(MSG_SCHEMA.format(path=p, reason="expected a mapping"))
    allowed = {"data", "target", "positive", "protected", "exclude", "kinds", "reasons"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise DatasetError(MSG_SCHEMA.format(path=p, reason=f"unknown key(s) {', '.join(unknown)}"))
    if not isinstance(doc.get("target"), str):
        raise DatasetError(MSG_SCHEMA.format(path=p, reason="'target' (a column name) is required"))
    if doc.get("kinds") is not None and not isinstance(doc["kinds"], dict):
        raise DatasetError(MSG_SCHEMA.format(path=p, reason="'kinds' must map column names to kinds"))
    if isinstance(doc.get("reasons"), str):
        reasons = Path(doc["reasons"])
        doc["reasons"] = reasons if reasons.is_absolute() else p.parent / reasons
    if doc.get("data") is not None:
        data = Path(str(doc["data"]))
        doc["data"] = data if data.is_absolute() else p.parent / data
    return doc


def from_schema(path: str | Path, data: str | Path | pd.DataFrame | None = None) -> Dataset:
    """Load the dataset a YAML schema describes (``data`` overrides the schema's ``data``)."""
    doc = load_schema(path)
    source = data if data is not None else doc.pop("data", None)
    doc.pop("data", None)
    if source is None:
        raise DatasetError(MSG_SCHEMA.format(path=path, reason="'data' is required"))
    return load_dataset(source, **doc)


def from_synthetic(df: pd.DataFrame) -> Dataset:
    """Dataset from the synthetic generator's output (features and kinds from the catalog)."""
    from backend.domain import FEATURES, PROTECTED, TARGET

    missing = [c for c in (*(f.name for f in FEATURES), TARGET) if c not in df.columns]
    if missing:
        raise DatasetError(MSG_MISSING_TARGET.format(target=missing[0], columns=_listing(df.columns)))
    kinds = {f.name: f.kind for f in FEATURES}
    extras = df[["pd_true"]].reset_index(drop=True) if "pd_true" in df.columns else None
    return Dataset(
        X=df[list(kinds)].reset_index(drop=True),
        y=df[TARGET].to_numpy(dtype=np.int8),
        protected=df[[c for c in PROTECTED if c in df.columns]].reset_index(drop=True),
        kinds=kinds,
        target=TARGET,
        positive=["1"],
        source="synthetic",
        sha256=frame_sha256(df),
        dropped={},
        extras=extras,
    )
