"""Seeded, vectorized synthetic credit applications with a known ground-truth default process.

Applicants. Three latent factors per applicant, credit quality ``q``, affluence ``a`` and
stability ``s`` (roughly standard normal, mildly correlated through age), drive every feature of
``backend.domain.features.FEATURES``: log-normal incomes, balances and limits; logit-normal
bounded ratios (utilization); Poisson / negative-binomial counts (inquiries, delinquencies,
overdrafts); categorical choices by row-wise softmax. Derived columns (DTI, payment-to-income,
loan-to-value, ...) are computed from the drawn ones, so rows are internally consistent, and every
value respects its feature's ``lower``/``upper``. NaN appears only in ``MAY_BE_MISSING`` (e.g.
``months_employed`` of self-employed and retired applicants). About 3% of rows are a further
application of an earlier applicant (same ``applicant_id``, protected attributes and latents).

Protected attributes. ``sex``, ``age_band`` and ``race_ethnicity`` are drawn first. Age drives
credit history, tenure and housing; sex and race/ethnicity shift affluence by at most 0.2 standard
deviations. These synthetic gaps exist so the fairness monitors have something to find; they are
not estimates of any real population. Protected attributes never enter the default process.

Default process. ``risk = f(features) + LATENT_NOISE * u``: ``f`` is a fixed function of the
true (uncorrupted) features (bureau score, with extra weight below 640; utilization, with a hinge
above 80%; DTI, with a hinge above 43%; payment-to-income, income, delinquencies, inquiries, public
records, term, employment, verification, overdrafts, loan-to-value above 1, purpose) and ``u`` is
unobserved noise that caps the achievable AUC (logistic regression reaches about 0.82). The
intercept is solved numerically so that ``mean(pd_true) == default_rate`` over the reference rows
(all rows; for ``economic_downturn``/``population_shift`` the rows before the scenario starts);
``pd_true = expit(risk + intercept)`` and ``default ~ Bernoulli(pd_true)``.

Scenarios act over ``[scenario_start, scenario_end)``; the default start is the 2nd month (the
middle of the data when ``months == 1``):

* ``none``: stationary.
* ``data_quality_incident`` (default end: one month after the start): inside the window only, the *recorded*
  features break while ``pd_true``/``default`` stay those of the true applicant: 40% of incomes
  are captured monthly (/12), the bureau utilization feed returns 0 for 30% and NaN for 15% of
  rows (revolving and max-card utilization), inquiries are double-counted (PSI > 0.25 on all five
  features). Rows outside the window equal the ``none`` dataset of the same seed.
* ``economic_downturn`` (default end: end of data): intensity ramps from 0 to 1 and stays;
  utilization and its 6-month change rise, overdrafts and inquiries increase, and an unobserved
  macro shock adds up to 0.8 to the log-odds: default rates roughly double by the end.
* ``population_shift`` (same ramp): up to 60% of applicants come from a new, younger, less affluent
  and less established segment; history, income, housing and everything downstream shift, and the
  default rate rises through the unchanged default process.

Determinism: baseline draws come from ``default_rng(seed)`` and scenario draws from
``default_rng([seed, 1])``, in a fixed order; the same arguments always give an identical frame.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import expit, logit

from backend.domain import (
    FEATURE_NAMES,
    FEATURES,
    ID_COLUMNS,
    PROTECTED,
    PROTECTED_CATEGORIES,
    TARGET,
    pandas_dtype,
)
from backend.training.synthetic_bureau import key_factor_column
from backend.training.synthetic_population import Draw, draw_features, draw_people

KEY_FACTORS_COLUMN = "bureau_key_factors"  # the bureau's key-factor codes (backend/training/synthetic_bureau.py)
SCENARIOS = ("none", "data_quality_incident", "economic_downturn", "population_shift")
UNKNOWN_SCENARIO = "unknown scenario {scenario!r}; expected one of " + ", ".join(SCENARIOS)
BAD_ARGUMENTS = "need n_rows >= 1, months >= 1 and 0 < default_rate < 1"
BAD_WINDOW = "scenario_start must be before scenario_end"
UNSUPPORTED_SUFFIX = "unsupported dataset file suffix {suffix!r}: use .csv or .parquet"
LATENT_NOISE = 2.0  # weight of the unobserved risk component (sets the achievable AUC)
CHUNK_ROWS = 1 << 16  # features are drawn in cache-sized blocks; fixed, as it is part of the draw order
WEEKDAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.45, 0.3])  # Monday..Sunday
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 19, 18, 16, 17, 18, 17, 14, 11, 9, 8, 7, 5, 3, 2.0])
OUT_COLUMNS = (*ID_COLUMNS, *FEATURE_NAMES, *PROTECTED, KEY_FACTORS_COLUMN, "pd_true", TARGET)
_DTYPES = (
    {f.name: pandas_dtype(f) for f in FEATURES}
    | dict.fromkeys(("application_id", "applicant_id", *PROTECTED, KEY_FACTORS_COLUMN), "object")
    | {"pd_true": "float64", TARGET: "int64"}
)


def _utc(t: datetime | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_localize(UTC) if t.tzinfo is None else t.tz_convert(UTC)


def _timestamps(d: Draw, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Sorted epoch seconds in [start, end), weekday- and business-hour-heavy (hours in UTC)."""
    span = int((end - start).total_seconds())
    days = WEEKDAY_WEIGHTS[(start.weekday() + np.arange(-(-span // 86400))) % 7]
    day = d.rng.choice(len(days), size=d.n, p=days / days.sum())
    hour = d.rng.choice(24, size=d.n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    offset = (day * 86400 + hour * 3600 + d.rng.integers(0, 3600, d.n)) % span
    return np.sort(int(start.timestamp()) + offset)


# fmt: off
def _risk(x: dict[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
    """Latent log-odds of default before the intercept, from the true (uncorrupted) features."""
    util, dti, score = x["revolving_utilization"], x["debt_to_income"], x["credit_score"]
    return (0.45 * (700 - score) / 50 + 0.5 * np.maximum(640 - score, 0) / 50
            + 0.35 * util + 4.0 * np.maximum(util - 0.8, 0) + 0.9 * np.minimum(dti, 2) + 1.5 * np.maximum(dti - 0.43, 0)
            + 1.5 * np.minimum(x["payment_to_income"], 1) - 0.28 * np.log(x["annual_income"] / 55_000)
            + 0.28 * np.log1p(x["num_delinquencies_2y"]) + 0.3 * np.log1p(x["num_currently_past_due"])
            + 0.11 * np.minimum(x["num_inquiries_6m"], 8) + 0.45 * x["has_bankruptcy"] + 0.25 * np.log1p(x["num_collections"])
            + 0.3 * x["has_foreclosure_or_repo"] + 0.25 * x["has_garnishment"] + 0.01 * (x["loan_term_months"] - 36)
            + np.array([0, 0.15, 0.2, 0.25, 0.05, 0.6])[x["employment_type"]]
            - 0.12 * np.log1p(np.nan_to_num(x["months_employed"]) / 12) - 0.1 * np.log1p(x["credit_history_months"] / 12)
            + 0.18 * np.log1p(x["num_overdrafts_12m"]) + 0.2 * np.log1p(x["num_late_payments_with_us"])
            + 0.3 * (1 - x["income_verified"]) + 0.25 * (1 - x["employment_verified"])
            + 0.5 * np.maximum(np.nan_to_num(x["loan_to_value"]) - 1, 0) + 0.06 * np.minimum(x["num_address_changes_3y"], 5)
            + np.array([0.1, -0.1, -0.15, 0.15, 0.0, 0.0, 0.35, 0.1])[x["loan_purpose"]]
            + 0.1 * (x["application_fields_missing"] > 0) - 0.1 * x["has_direct_deposit"] + LATENT_NOISE * noise)
# fmt: on


def _in_chunks(
    rng: np.random.Generator, srng: np.random.Generator, people: dict[str, np.ndarray], down: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features and latent risk for all rows, computed block by block (about 2x faster)."""
    n = len(down)
    x: dict[str, np.ndarray] = {}
    risk = np.empty(n)
    for lo in range(0, n, CHUNK_ROWS):
        sl = slice(lo, min(lo + CHUNK_ROWS, n))
        d = Draw(rng, sl.stop - lo)
        part = draw_features(d, Draw(srng, d.n), {k: v[sl] for k, v in people.items()}, down[sl])
        risk[sl] = _risk(part, d.norm())
        for name, values in part.items():
            if name not in x:
                x[name] = np.empty(n, dtype=values.dtype)
            x[name][sl] = values
    return x, risk


def _solve_intercept(risk: np.ndarray, rate: float) -> float:
    """The b with mean(expit(risk + b)) == rate: safeguarded Newton (the mean is increasing in b)."""
    lo, hi = -60.0, 60.0
    b = float(logit(rate) - np.mean(risk))
    for _ in range(100):
        p = expit(risk + b)
        f = float(p.mean()) - rate
        if abs(f) < 1e-12:
            break
        lo, hi = (b, hi) if f < 0 else (lo, b)
        step = b - f / max(float(np.mean(p * (1 - p))), 1e-12)
        b = step if lo < step < hi else (lo + hi) / 2
    return b


def _corrupt(sd: Draw, x: dict[str, np.ndarray], window: np.ndarray) -> None:
    """Data-quality incident: corrupt the recorded features of the rows inside the window."""
    monthly = window & (sd.unif() < 0.4)  # income captured per month instead of per year
    x["annual_income"] = np.where(monthly, np.round(x["annual_income"] / 12, 2), x["annual_income"])
    feed = sd.unif()  # bureau utilization feed: zeros for 30%, missing for 15%
    for name in ("revolving_utilization", "max_card_utilization"):
        x[name] = np.where(window & (feed < 0.3), 0.0, np.where(window & (feed < 0.45), np.nan, x[name]))
    for name in ("num_inquiries_6m", "num_inquiries_12m"):  # inquiries double-counted
        x[name] = np.where(window, 2 * x[name], x[name])


def _ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    """``prefix`` + zero-padded ``numbers`` as an object array of str (vectorized in Arrow)."""
    width = max(7, len(str(int(numbers.max(initial=0)))))
    text = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "").to_numpy(zero_copy_only=False)


def generate(
    n_rows: int,
    *,
    seed: int = 0,
    start: datetime = datetime(2025, 8, 1, tzinfo=UTC),
    months: int = 6,
    default_rate: float = 0.05,
    scenario: str = "none",
    scenario_start: datetime | None = None,
    scenario_end: datetime | None = None,
    id_prefix: str = "",
) -> pd.DataFrame:
    """Generate ``n_rows`` synthetic applications, sorted by ``applied_at`` (see the module docstring).

    Naive datetimes are taken as UTC. Ids are ``{id_prefix}APP{seed}-{row:07d}`` and
    ``{id_prefix}CUS{seed}-{applicant:07d}``. Raises ``ValueError`` for an unknown scenario,
    bad sizes or rates, or an empty scenario window.
    """
    if scenario not in SCENARIOS:
        raise ValueError(UNKNOWN_SCENARIO.format(scenario=scenario))
    if n_rows < 1 or months < 1 or not 0 < default_rate < 1:
        raise ValueError(BAD_ARGUMENTS)
    t0 = _utc(start)
    t1 = t0 + pd.DateOffset(months=months)
    month = pd.DateOffset(months=1)
    s0 = _utc(scenario_start) if scenario_start is not None else t0 + (month if months > 1 else (t1 - t0) / 2)
    s1 = _utc(scenario_end) if scenario_end is not None else (s0 + month if scenario == SCENARIOS[1] else t1)
    if scenario != "none" and s0 >= s1:
        raise ValueError(BAD_WINDOW)
    d, sd = Draw(np.random.default_rng(seed), n_rows), Draw(np.random.default_rng([seed, 1]), n_rows)
    secs = _timestamps(d, t0, t1)
    window = (secs >= s0.timestamp()) & (secs < s1.timestamp())
    ramp = np.clip((secs - s0.timestamp()) / max(s1.timestamp() - s0.timestamp(), 1.0), 0, 1)
    people = draw_people(d, sd, scenario, ramp)
    down = ramp if scenario == "economic_downturn" else np.zeros(n_rows)
    x, risk = _in_chunks(d.rng, sd.rng, people, down)
    shifted = scenario in ("economic_downturn", "population_shift") and bool((ramp == 0).any())
    intercept = _solve_intercept(risk[ramp == 0] if shifted else risk, default_rate)
    pd_true = expit(risk + intercept + 0.8 * down)  # + the unobserved macro shock of a downturn
    target = d.bern(pd_true)
    if scenario == "data_quality_incident":
        _corrupt(sd, x, window)
    cols: dict[str, object] = {
        "application_id": _ids(f"{id_prefix}APP{seed}-", np.arange(n_rows)),
        "applicant_id": _ids(f"{id_prefix}CUS{seed}-", people["applicant"]),
        "applied_at": pd.to_datetime(secs, unit="s", utc=True),
    }
    for f in FEATURES:
        if f.kind == "categorical":
            cols[f.name] = np.array(f.categories, dtype=object)[x[f.name]]
            continue
        v = x[f.name].astype(np.float64 if f.kind == "numeric" else np.int64, copy=False)
        cols[f.name] = np.clip(v, f.lower, f.upper, out=v, casting="unsafe")  # integer bounds are whole
    age_band = np.searchsorted(np.array([25, 35, 45, 55, 65]), people["age"], side="right")
    for name, codes in (("sex", people["sex"]), ("age_band", age_band), ("race_ethnicity", people["race"])):
        cols[name] = np.array(PROTECTED_CATEGORIES[name], dtype=object)[codes]
    cols[KEY_FACTORS_COLUMN] = key_factor_column(cols, np.random.default_rng([seed, 2]))  # type: ignore[arg-type]
    cols["pd_true"], cols[TARGET] = pd_true, target
    return pd.DataFrame(cols, columns=list(OUT_COLUMNS), copy=False)


def write_dataset(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV or Parquet, chosen by the file suffix; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(UNSUPPORTED_SUFFIX.format(suffix=path.suffix))
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


def read_dataset(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet dataset and restore the catalog dtypes (UTC timestamps, str ids)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df = pd.read_csv(path, float_precision="round_trip", keep_default_na=False, na_values=[""],
                         dtype={KEY_FACTORS_COLUMN: str})  # codes such as "05" stay text
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        raise ValueError(UNSUPPORTED_SUFFIX.format(suffix=path.suffix))
    if "applied_at" in df:
        df["applied_at"] = pd.to_datetime(df["applied_at"], utc=True)
    if KEY_FACTORS_COLUMN in df:
        df[KEY_FACTORS_COLUMN] = df[KEY_FACTORS_COLUMN].fillna("")  # the bureau sent none
    return df.astype({k: v for k, v in _DTYPES.items() if k in df})
