"""Generated lenders' files of many shapes (issue 19): what `creditrisk train --data FILE` must take as it comes.

Each shape is a small table with a real signal, written as CSV or Parquet, with the options a user would
pass (target, positive, protected, exclude). ``REFUSED`` are files that must stop before training with
one line naming the problem. ``tests/`` is on ``sys.path``, so test modules import this directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Shape:
    name: str
    build: Callable[[np.random.Generator], pd.DataFrame]
    target: str
    suffix: str  # .csv or .parquet
    positive: str | None = None
    protected: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    id_column: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path, seed: int = 0) -> Path:
        frame = self.build(np.random.default_rng(seed))
        path = folder / f"{self.name}{self.suffix}"
        if self.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        return path


def _risk(rng: np.random.Generator, n: int, *signals: np.ndarray, rate: float = 0.25) -> np.ndarray:
    """0/1 outcomes whose log-odds rise with the standardised signals, at about ``rate`` positives."""
    z = sum((s - np.nanmean(s)) / (np.nanstd(s) or 1.0) for s in signals)
    z = np.nan_to_num(np.asarray(z, dtype=float))
    lo, hi = -12.0, 12.0
    for _ in range(60):  # the intercept giving the wanted positive rate
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(1.5 * z + mid)))).mean() > rate:
            hi = mid
        else:
            lo = mid
    return (rng.random(n) < 1 / (1 + np.exp(-(1.5 * z + lo)))).astype(int)


def hmda_like(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    """All numeric ratios plus yes/no flags, a yes/no target and a yes/no protected column (AER's HMDA)."""
    dir_ = rng.uniform(0.1, 0.6, n)
    lvr = rng.uniform(0.3, 1.0, n)
    pbcr = rng.choice(["yes", "no"], n, p=[0.1, 0.9])
    deny = _risk(rng, n, dir_, lvr, (pbcr == "yes") * 3.0, rate=0.15)
    return pd.DataFrame({"dir": dir_.round(3), "hir": (dir_ * 0.8).round(3), "lvr": lvr.round(3),
                         "ccs": rng.integers(1, 7, n), "mcs": rng.integers(1, 5, n), "pbcr": pbcr,
                         "dmi": rng.choice(["no", "yes"], n, p=[0.95, 0.05]),
                         "self": rng.choice(["no", "yes"], n, p=[0.88, 0.12]),
                         "single": rng.choice(["no", "yes"], n), "uria": rng.uniform(1.8, 10.6, n).round(1),
                         "condominium": rng.integers(0, 2, n), "afam": rng.choice(["no", "yes"], n, p=[0.86, 0.14]),
                         "deny": np.where(deny == 1, "yes", "no")})


def with_missing(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    """Missing values in numeric, yes/no and categorical columns; missingness that carries signal."""
    income = rng.lognormal(10, 0.5, n)
    dti = rng.uniform(0, 0.6, n)
    months = rng.integers(1, 80, n).astype(float)
    y = _risk(rng, n, -np.log(income), dti, rate=0.2)
    income[rng.random(n) < 0.15] = np.nan
    months[(y == 0) & (rng.random(n) < 0.6)] = np.nan  # never delinquent: informative missingness
    owner = pd.Series(rng.choice(["Y", "N", None], n, p=[0.5, 0.4, 0.1]), dtype=object)
    grade = pd.Series(rng.choice(["A", "B", "C", "D", None], n), dtype=object)
    return pd.DataFrame({"income": income, "dti": dti, "months_since_delinq": months, "owner": owner,
                         "grade": grade, "default_flag": y})


def numbers_only(rng: np.random.Generator, n: int = 500) -> pd.DataFrame:
    """No string column at all: floats, integers and 0/1 integer flags; a 0/1 integer target."""
    a, b = rng.normal(size=n), rng.normal(size=n)
    flag = rng.integers(0, 2, n)
    return pd.DataFrame({"a": a, "b": b.round(2), "count": rng.poisson(3, n), "flag": flag,
                         "bad": _risk(rng, n, a, -b, flag * 2.0)})


def one_of_a_kind(rng: np.random.Generator, n: int = 500) -> pd.DataFrame:
    """Exactly one numeric and exactly one categorical column; a boolean target."""
    x = rng.normal(size=n)
    region = rng.choice(["north", "south", "east", "west"], n)
    y = _risk(rng, n, x, (region == "south") * 2.0)
    return pd.DataFrame({"x": x, "region": region, "defaulted": y.astype(bool)})


def dates_and_ids(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    """Date-like (ISO, US, month) and id-like columns that must not become features; a Y/N target."""
    x = rng.normal(size=n)
    start = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    return pd.DataFrame({"loan_id": [f"L{i:07d}" for i in rng.permutation(n)],
                         "customer_id": rng.permutation(n) + 10_000,
                         "application_date": start.strftime("%Y-%m-%d"), "funded_on": start.strftime("%m/%d/%Y"),
                         "issue_d": start.strftime("%b-%Y"), "x": x, "term": rng.choice([36, 60], n),
                         "purpose": rng.choice(["car", "debt", "home", "other"], n),
                         "status": np.where(_risk(rng, n, x) == 1, "Y", "N")})


def rare_positive(rng: np.random.Generator, n: int = 3000) -> pd.DataFrame:
    """1% positives; the target is "0"/"1" text."""
    x, z = rng.normal(size=n), rng.normal(size=n)
    y = _risk(rng, n, x, z, rate=0.01)
    while y.sum() < 25:  # keep the rare class usable for a stratified split and 3 folds
        y[rng.integers(0, n)] = 1
    return pd.DataFrame({"x": x, "z": z, "channel": rng.choice(["web", "branch", "broker"], n),
                         "target": pd.Series(y).astype(str)})


SHAPES = [
    Shape("hmda_like", hmda_like, "deny", ".csv", protected=("afam",)),
    Shape("missing_values", with_missing, "default_flag", ".parquet"),
    Shape("numbers_only", numbers_only, "bad", ".parquet"),
    Shape("one_of_a_kind", one_of_a_kind, "defaulted", ".csv"),
    Shape("dates_and_ids", dates_and_ids, "status", ".csv", exclude=("term",), id_column="loan_id"),
    Shape("rare_positive", rare_positive, "target", ".parquet"),
    Shape("yes_no_parquet", hmda_like, "deny", ".parquet", protected=("afam",), exclude=("single",)),
]


def _tiny(rows: int, constant: bool = False) -> Callable[[np.random.Generator], pd.DataFrame]:
    def build(rng: np.random.Generator) -> pd.DataFrame:
        y = np.zeros(rows, dtype=int) if constant else (np.arange(rows) % 2)
        return pd.DataFrame({"x": rng.normal(size=rows), "y": y})
    return build


REFUSED = [  # (shape, words the one-line message must contain)
    (Shape("one_row", _tiny(1), "y", ".csv"), ("'y'", "only 1 row(s)", "need at least 20")),
    (Shape("too_few_rows", _tiny(12), "y", ".csv"), ("'y'", "only 12 row(s)")),
    (Shape("too_few_positives", lambda rng: pd.DataFrame({"x": rng.normal(size=300), "y": [int(i < 5) for i in range(300)]}),
           "y", ".parquet"), ("'y'", "only 5 row(s) of class 1")),
    (Shape("constant_target", _tiny(200, constant=True), "y", ".parquet"), ("'y'", "single class")),
    (Shape("ambiguous_labels", lambda rng: pd.DataFrame({"x": rng.normal(size=100),
                                                          "y": rng.choice(["good", "bad"], 100)}), "y", ".csv"),
     ("--positive", "'bad'", "'good'")),
]
