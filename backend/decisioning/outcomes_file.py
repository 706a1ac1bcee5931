"""The outcome file: reading it and checking its rows (vectorized), before anything is looked up or written.

* **Format** (CSV or Parquet; column names are case-insensitive, other columns are ignored):
  ``application_id`` (our application UUID or the application's ``external_id``), ``funded``
  (true/false, 1/0, yes/no), ``default_flag`` or ``defaulted`` (the same, or empty when not funded or
  not yet known), ``observation_date`` (ISO date or datetime; a time without an offset is UTC).
  A file that cannot be read, or lacks a required column, is refused as a whole
  (:class:`OutcomeFileError`).
* **Rows**: a rejected row gets every reason that applies (:class:`Reasons`); the reasons that need the
  book (unknown id, before the application, stale) are added by :class:`~backend.decisioning.outcomes.OutcomeService`.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

COLUMNS = ("application_id", "funded", "default_flag", "observation_date")
DEFAULT_ALIASES = ("default_flag", "defaulted")
TEMPLATE = ",".join(COLUMNS) + "\n" + "sim7-000123,true,false,2026-01-31\n"
_UUID_RE = r"\{?[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}\}?"
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")

# whole-file refusals (asserted by tests)
MISSING_COLUMNS = ("The file lacks the required column(s) {missing}. Expected columns: application_id, funded, "
                   "default_flag (or defaulted), observation_date.")
BOTH_DEFAULT_COLUMNS = "The file has both default_flag and defaulted columns; keep one."
UNREADABLE = "Cannot read {name} as {kind}: {detail}"
BAD_SUFFIX = "An outcome file must end in .csv or .parquet (got {name!r})."
NO_FILE = "No such file: {name}"

# row reasons (asserted by tests)
R_MISSING_ID = "missing application id"
R_UNKNOWN_ID = "unknown application id"
R_FUNDED_EMPTY = "funded is empty"
R_BAD_FUNDED = "funded must be true/false, 1/0 or yes/no"
R_BAD_DEFAULT = "default_flag must be true/false, 1/0, yes/no or empty"
R_DATE_EMPTY = "observation_date is empty"
R_BAD_DATE = "observation_date is not an ISO date or datetime"
R_FUTURE = "observation_date is in the future"
R_BEFORE_APP = "observation_date is before the application date"
R_DEFAULT_UNFUNDED = "default flagged on a loan that was not funded"
R_DUPLICATE = "the application appears more than once in this file"
R_STALE = "stale: a newer observation is already stored"


class OutcomeFileError(ValueError):
    """The whole file was refused (unreadable, or a required column is missing); nothing was written."""


class RejectedRow(NamedTuple):
    row: int  # as in the file: CSV counts the header as row 1; Parquet counts data rows from 1
    application_id: str  # as given
    reason: str


def read_outcome_file(path: Path) -> tuple[pd.DataFrame, int, str]:
    """The file as a frame, the file row number of its first data row, and the SHA-256 of its bytes."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise OutcomeFileError(BAD_SUFFIX.format(name=path.name))
    try:
        data = path.read_bytes()
    except OSError:
        raise OutcomeFileError(NO_FILE.format(name=path)) from None
    sha = hashlib.sha256(data).hexdigest()
    kind = "CSV" if suffix == ".csv" else "Parquet"
    try:
        if suffix == ".csv":
            # every cell as text (we parse it), blank lines kept so row numbers match the file
            df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, skip_blank_lines=False,
                             encoding="utf-8-sig")
            first = 2
        else:
            df = pd.read_parquet(io.BytesIO(data))
            first = 1
    except Exception as exc:  # noqa: BLE001 - any parser failure refuses the file with its reason
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise OutcomeFileError(UNREADABLE.format(name=path.name, kind=kind, detail=detail)) from None
    return df, first, sha


def columns(df: pd.DataFrame) -> dict[str, Any]:
    """Required column name -> the frame's column, or OutcomeFileError naming what is missing."""
    names = {str(c).strip().lower(): c for c in df.columns}
    if all(a in names for a in DEFAULT_ALIASES):
        raise OutcomeFileError(BOTH_DEFAULT_COLUMNS)
    missing = [c for c in ("application_id", "funded") if c not in names]
    if not any(a in names for a in DEFAULT_ALIASES):
        missing.append("default_flag (or defaulted)")
    if "observation_date" not in names:
        missing.append("observation_date")
    if missing:
        raise OutcomeFileError(MISSING_COLUMNS.format(missing=", ".join(missing)))
    default = next(a for a in DEFAULT_ALIASES if a in names)
    return {"application_id": names["application_id"], "funded": names["funded"], "default": names[default],
            "observation_date": names["observation_date"]}


def cell_text(col: pd.Series) -> pd.Series:
    """Cells as stripped text ("" when missing), object dtype."""
    if col.dtype != object or col.isna().any():
        col = col.astype(object).where(col.notna(), "")
    return col.astype(str).str.strip()


def parse_bools(col: pd.Series, txt: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """(values as nullable booleans, empty mask, bad mask)."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        empty = col.isna().to_numpy()
        bad = ~empty & ~col.isin([0, 1]).to_numpy()
        return col.where(~bad & ~empty).astype("boolean"), empty, bad
    s = txt.str.lower()
    empty = (s == "").to_numpy()
    yes, no = s.isin(_TRUE).to_numpy(), s.isin(_FALSE).to_numpy()
    values = pd.Series(pd.array(yes, dtype="boolean"), index=col.index)
    values[~(yes | no)] = pd.NA
    return values, empty, ~empty & ~yes & ~no


def parse_dates(col: pd.Series, txt: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(UTC timestamps, NaT when empty or bad; empty mask)."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return pd.to_datetime(col, utc=True), col.isna().to_numpy()
    codes, uniques = pd.factorize(txt)  # files repeat few dates: parse each distinct value once
    parsed = pd.to_datetime(pd.Series(uniques, dtype=object), format="ISO8601", utc=True, errors="coerce")
    return pd.Series(parsed.array.take(codes), index=col.index), (txt == "").to_numpy()


NAT = np.datetime64("NaT", "ns")


def as_utc(values: np.ndarray) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(values.astype("datetime64[ns]")).tz_localize("UTC"))


def uuid_hex(given: pd.Series) -> pd.Series:
    """32 lower-case hex digits for values written as a UUID, NaN otherwise."""
    ok = given.str.fullmatch(_UUID_RE)
    return given.where(ok).str.lower().str.replace(r"[{}-]", "", regex=True)


def new_uuid_hex(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as hex, without building ``uuid.UUID`` objects."""
    b = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    h = b.tobytes().hex()
    return [h[i:i + 32] for i in range(0, 32 * n, 32)]


def lookup(index: pd.Index, values: np.ndarray, keys: Any, missing: Any) -> tuple[np.ndarray, np.ndarray]:
    """(values looked up by key, found mask): a vectorized dict lookup."""
    pos = index.get_indexer(keys)
    found = pos >= 0
    out = np.where(found, values.take(np.where(found, pos, 0)) if len(values) else missing, missing)
    return out, found


class Reasons:
    """Every reason of every row; text that quotes values is built for the flagged rows only."""

    def __init__(self, n: int) -> None:
        self.text = np.full(n, "", dtype=object)

    def add(self, mask: Any, msg: str, detail: Callable[[np.ndarray], Any] | None = None) -> None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            return
        add = np.full(int(m.sum()), msg, dtype=object)
        if detail is not None:
            add = add + np.asarray(detail(m), dtype=object)
        cur = self.text[m]
        self.text[m] = np.where(cur == "", add, cur + "; " + add)

    @property
    def ok(self) -> np.ndarray:
        return np.asarray(self.text == "", dtype=bool)


def got(txt: pd.Series) -> Callable[[np.ndarray], Any]:
    return lambda m: " (got '" + txt[m].str.slice(0, 40) + "')"


def queryable(given: pd.Series) -> np.ndarray:
    """Could be an external id: non-empty, fits the column, storable text (no NUL, no lone surrogate)."""
    ok = (given != "") & (given.str.len() <= 64) & ~given.str.contains("[\x00\ud800-\udfff]", regex=True)
    return ok.to_numpy(dtype=bool)
