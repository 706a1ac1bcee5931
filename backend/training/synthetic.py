"""Seeded, vectorized synthetic credit applications with a known ground-truth default process.

Applicants. Three latent factors per applicant, credit quality ``q``, affluence ``a`` and
stability ``s`` (roughly standard normal, mildly correlated through age), drive every feature of
``backend.training.features.FEATURES``: log-normal incomes, balances and limits; logit-normal
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

from backend.training import features as cat
from backend.training.loan_terms import APR_TABLE, amortized_payment

SCENARIOS = ("none", "data_quality_incident", "economic_downturn", "population_shift")
UNKNOWN_SCENARIO = "unknown scenario {scenario!r}; expected one of " + ", ".join(SCENARIOS)
BAD_ARGUMENTS = "need n_rows >= 1, months >= 1 and 0 < default_rate < 1"
BAD_WINDOW = "scenario_start must be before scenario_end"
UNSUPPORTED_SUFFIX = "unsupported dataset file suffix {suffix!r}: use .csv or .parquet"
REPEAT_SHARE = 0.03  # share of rows that are a further application of an earlier applicant
LATENT_NOISE = 2.0  # weight of the unobserved risk component (sets the achievable AUC)
CHUNK_ROWS = 1 << 16  # features are drawn in cache-sized blocks; fixed, as it is part of the draw order
WEEKDAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.45, 0.3])  # Monday..Sunday
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 19, 18, 16, 17, 18, 17, 14, 11, 9, 8, 7, 5, 3, 2.0])
OUT_COLUMNS = (*cat.ID_COLUMNS, *cat.FEATURE_NAMES, *cat.PROTECTED, "pd_true", cat.TARGET)
_EMP = {k: i for i, k in enumerate(cat.EMPLOYMENT_TYPES)}
_HOME = {k: i for i, k in enumerate(cat.HOME_OWNERSHIP)}
_PUR = {k: i for i, k in enumerate(cat.LOAN_PURPOSES)}
_DTYPES = (
    {f.name: cat.pandas_dtype(f) for f in cat.FEATURES}
    | dict.fromkeys(("application_id", "applicant_id", *cat.PROTECTED), "object")
    | {"pd_true": "float64", cat.TARGET: "int64"}
)


class _Draw:
    """Distribution helpers over one Generator and a fixed row count (parametrised by means)."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng, self.n = rng, n

    def norm(self) -> np.ndarray:
        return self.rng.standard_normal(self.n)

    def unif(self, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        return self.rng.uniform(lo, hi, self.n)

    def logn(self, mu, sigma: float) -> np.ndarray:
        return np.exp(mu + sigma * self.rng.standard_normal(self.n))

    def bern(self, p) -> np.ndarray:
        return (self.rng.random(self.n) < p).astype(np.int64)

    def pois(self, mean) -> np.ndarray:
        return self.rng.poisson(np.broadcast_to(mean, (self.n,)))

    def nb(self, mean, shape: float) -> np.ndarray:
        """Negative-binomial (over-dispersed) counts with the given mean and dispersion ``shape``."""
        return self.rng.negative_binomial(shape, shape / (shape + np.broadcast_to(mean, (self.n,))))

    def gamma(self, shape: float, mean) -> np.ndarray:
        return self.rng.gamma(shape, np.broadcast_to(mean, (self.n,)) / shape)

    def choice(self, logits: list) -> np.ndarray:
        """Row-wise categorical codes from k logit columns (inverse CDF, computed in place)."""
        cum = np.stack(np.broadcast_arrays(*logits), axis=0)
        np.exp(cum, out=cum)
        np.cumsum(cum, axis=0, out=cum)
        return (self.rng.random(self.n) * cum[-1] > cum[:-1]).sum(axis=0)


def _utc(t: datetime | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_localize(UTC) if t.tzinfo is None else t.tz_convert(UTC)


def _timestamps(d: _Draw, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Sorted epoch seconds in [start, end), weekday- and business-hour-heavy (hours in UTC)."""
    span = int((end - start).total_seconds())
    days = WEEKDAY_WEIGHTS[(start.weekday() + np.arange(-(-span // 86400))) % 7]
    day = d.rng.choice(len(days), size=d.n, p=days / days.sum())
    hour = d.rng.choice(24, size=d.n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    offset = (day * 86400 + hour * 3600 + d.rng.integers(0, 3600, d.n)) % span
    return np.sort(int(start.timestamp()) + offset)


def _people(d: _Draw, sd: _Draw, scenario: str, w: np.ndarray) -> dict[str, np.ndarray]:
    """Protected attributes, latent factors (q, a, s) and applicant numbers; repeats share them."""
    n = d.n
    age = 18 + 67 * d.rng.beta(1.8, 3.2, n)
    sex = d.rng.choice(3, n, p=[0.49, 0.48, 0.03])
    race = d.rng.choice(6, n, p=[0.07, 0.12, 0.17, 0.58, 0.03, 0.03])
    e = d.rng.standard_normal((n, 3))
    if scenario == "population_shift":  # a younger, less affluent, less established segment ramps in
        new = sd.rng.random(n) < 0.6 * w
        age = np.where(new, 18 + 22 * sd.rng.beta(1.4, 3.0, n), age)
        e = e - new[:, None] * np.array([0.5, 0.5, 0.3])
    repeat = d.rng.random(n) < REPEAT_SHARE
    repeat[0] = False  # a repeat needs an earlier first application to copy
    first, src = np.flatnonzero(~repeat), np.arange(n)
    src[repeat] = first[d.rng.integers(0, len(first), int(repeat.sum()))]
    age, sex, race, e = age[src], sex[src], race[src], e[src]
    applicant = (np.cumsum(~repeat) - 1)[src]
    az = (age - 42) / 14
    s = 0.12 * az + 0.97 * e[:, 0]  # stability
    shift = np.array([0.1, -0.2, -0.15, 0.0, 0.0, 0.0])[race] - 0.08 * (sex == 0)  # mild, synthetic gaps
    a = 0.1 * az - 0.04 * az**2 + shift + 0.97 * e[:, 1]  # affluence
    q = 0.25 * a + 0.2 * s + 0.9 * e[:, 2]  # credit quality (no direct age term)
    return {"age": age, "az": az, "sex": sex, "race": race, "s": s, "a": a, "q": q, "applicant": applicant}


# fmt: off
def _features(d: _Draw, sd: _Draw, p: dict[str, np.ndarray], down: np.ndarray) -> dict[str, np.ndarray]:
    """Every catalog feature (categoricals as int codes) drawn from the latent factors.

    ``down`` is the economic-downturn intensity per row (0 outside that scenario); its extra
    draws come from ``sd`` so the baseline stream of ``d`` does not depend on the scenario.
    """
    n, age, az, s, a, q = d.n, p["age"], p["az"], p["s"], p["a"], p["q"]
    x: dict[str, np.ndarray] = {}
    life_m = np.floor((age - 16) * 12)
    # applicant & employment
    emp = d.choice([1.9 + 0.5 * s, -0.2 - 0.4 * s - 0.3 * a - 0.3 * az, -0.1 + 0.2 * a + 0.2 * az,
                    -0.6 - 0.3 * s, -6 + 5.5 * np.clip((age - 58) / 8, 0, 1.6), -2.8 - 0.5 * s])
    self_emp, retired, unemployed = emp == _EMP["self_employed"], emp == _EMP["retired"], emp == _EMP["unemployed"]
    tenure = np.minimum(np.round(d.gamma(1.3, np.exp(3.4 + 0.5 * s + 0.35 * az))), life_m)
    x["months_employed"] = np.where(self_emp | retired, np.nan, np.where(unemployed, 0, tenure))
    industry = np.nan_to_num(x["months_employed"]) + d.gamma(1.2, 36 * np.exp(0.3 * az))
    x["months_in_industry"] = np.where(retired, 0, np.minimum(np.round(industry), life_m))
    x["employment_type"] = emp
    x["num_jobs_5y"] = d.pois(np.exp(0.2 - 0.35 * s - 0.2 * az))
    x["employment_verified"] = d.bern(np.array([0.95, 0.9, 0.7, 0.85, 0.97, 0.6])[emp])
    x["months_at_address"] = np.minimum(np.round(d.gamma(1.2, np.exp(3.5 + 0.4 * s + 0.5 * az))), life_m)
    x["num_address_changes_3y"] = d.pois(np.exp(-0.3 - 0.5 * s - 0.3 * az))
    x["home_ownership"] = home = d.choice([-1.5 + 1.2 * az + 0.3 * a, 0.1 + 0.8 * a + 0.5 * az,
                                           0.5 - 0.4 * a - 0.3 * az, -1.5 - 1.0 * az])
    owner = home <= _HOME["mortgage"]
    x["residence_verified"] = d.bern(0.9 + 0.05 * (s > 0))
    x["application_fields_missing"] = d.pois(np.exp(-1.6 - 0.3 * s))
    # income (log-normal, scaled by employment type)
    income = np.exp(10.85 + 0.45 * a + 0.1 * s + np.array([0.35, 0.4, 0.6, 0.45, 0.4, 0.5])[emp] * d.norm())
    x["annual_income"] = income = np.round(np.maximum(income * np.array([1, 0.5, 1.05, 0.9, 0.6, 0.3])[emp], 4000), -2)
    other = d.bern(0.15 + 0.3 * unemployed) * income * d.unif(0.05, 0.5)
    x["other_income"] = np.round(np.where(retired, 0.6 * income, other), -2)
    x["income_verified"] = d.bern(np.where(self_emp, 0.65, np.where(unemployed, 0.7, 0.88)))
    x["num_income_sources"] = 1 + (x["other_income"] > 0) + d.pois(0.08)
    mi = income / 12
    # bureau tradelines
    hist = np.maximum(0, age - 18 - d.rng.exponential(2.5 * np.exp(-0.4 * q))) * d.unif(0.85, 1.0)
    total = d.nb(np.exp(0.9 + 0.5 * np.log1p(hist) + 0.25 * a), 5.0)
    x["num_total_accounts"] = total = np.where(hist >= 1 / 12, np.maximum(total, 1), 0)
    x["credit_history_months"] = cm = np.where(total > 0, np.floor(hist * 12), 0)
    mort = ((home == _HOME["mortgage"]) | (d.unif() < 0.03)) & (total > 0)
    x["num_open_accounts"] = opened = np.maximum(d.rng.binomial(total, np.clip(0.55 + 0.05 * a, 0.2, 0.9)), mort)
    x["num_revolving_accounts"] = rev = d.rng.binomial(opened - mort, 0.6)
    x["num_installment_accounts"], x["has_mortgage_tradeline"] = opened - rev, mort.astype(np.int64)
    inst = opened - rev - mort
    x["num_satisfactory_accounts"] = total - d.rng.binomial(total, expit(-3.3 - 0.9 * q))
    x["avg_account_age_months"] = np.floor(cm * d.unif(0.3, 0.7))
    x["num_accounts_opened_12m"] = o12 = np.minimum(total, d.pois(np.exp(-0.4 - 0.25 * s - 0.15 * q + 0.2 * (age < 30))))
    x["num_accounts_opened_24m"] = o24 = np.minimum(total, o12 + d.pois(np.exp(-0.6 - 0.2 * s)))
    newest = np.where(o12 > 0, d.unif(0, 12), np.where(o24 > 0, d.unif(12, 24), 24 + d.gamma(1.2, 30)))
    x["months_since_newest_account"] = np.minimum(np.floor(newest), cm)
    rev_limit = rev * d.logn(8.0 + 0.45 * a + 0.35 * q, 0.5)
    inst_orig, mort_orig = inst * d.logn(9.2 + 0.35 * a, 0.5), mort * d.logn(12.2 + 0.45 * a, 0.3)
    x["total_credit_limit"] = rev_limit + inst_orig + mort_orig
    one = np.maximum(rev_limit / np.maximum(rev, 1) * d.unif(1, 1.8), inst_orig / np.maximum(inst, 1))
    x["highest_credit_limit"] = np.minimum(np.maximum(mort_orig, one), x["total_credit_limit"])
    x["thin_file"] = ((total < 3) | (cm < 12)).astype(np.int64)
    # delinquencies, public records, inquiries (over-dispersed counts driven by credit quality)
    x["num_delinquencies_2y"] = dq = d.nb(0.22 * np.exp(-q) * (total > 0), 0.8)
    x["num_30dpd_12m"], x["num_60dpd_24m"] = d.rng.binomial(dq, 0.55), d.rng.binomial(dq, 0.3)
    x["num_90dpd_ever"] = d90 = d.rng.binomial(dq, 0.15) + d.pois(0.005 * np.exp(-0.9 * q) * np.minimum(hist, 20))
    older = ((d90 > 0) | (d.unif() < expit(-1.8 - 0.8 * q))) & (cm > 24)
    last = np.where(dq > 0, d.unif(0, 24), np.where(older, 24 + d.gamma(1.5, 24), np.nan))
    x["months_since_last_delinquency"] = np.minimum(np.floor(last), cm)
    x["num_currently_past_due"] = cpd = d.rng.binomial(opened, expit(-4.8 - 1.1 * q))
    x["past_due_amount"] = np.round(cpd * d.logn(5.8, 0.8), 2)
    x["num_chargeoffs"] = d.pois(0.04 * np.exp(-1.1 * q))
    x["num_collections"] = coll = d.pois(0.1 * np.exp(-q))
    x["collections_amount"] = np.round(coll * d.logn(6.3, 1.0), 2)
    x["has_bankruptcy"] = bk = d.bern(expit(-3.7 - 0.8 * q))
    x["has_judgment"], x["has_garnishment"] = d.bern(0.012 * np.exp(-0.8 * q)), d.bern(0.005 * np.exp(-0.8 * q))
    x["has_foreclosure_or_repo"] = d.bern(0.01 * np.exp(-0.9 * q))
    x["months_since_bankruptcy"] = np.where(bk == 1, np.floor(d.unif(6, 121)), np.nan)
    x["num_public_records"] = bk + x["has_judgment"] + x["has_garnishment"] + d.pois(0.02)
    m6 = np.exp(-0.2 - 0.3 * q - 0.2 * s)
    x["num_inquiries_6m"] = i6 = d.nb(m6, 2.0) + sd.pois(0.6 * down)
    x["num_inquiries_12m"] = i12 = i6 + d.nb(0.7 * m6, 2.0)
    gap = np.where(i6 > 0, d.unif(0, 6), np.where(i12 > 0, d.unif(6, 12), d.unif(12, 48)))
    x["months_since_last_inquiry"] = np.where((i12 > 0) | (d.unif() < 0.6), np.floor(gap), np.nan)
    # utilization (logit-normal, a few cards over the limit)
    util = np.where(rev > 0, 1.08 * expit(-0.9 - 0.95 * q - 0.2 * a + 0.8 * d.norm()), 0.0)
    x["revolving_utilization"] = util = np.minimum(util * (1 + 0.3 * down) + 0.05 * down * (rev > 0), 1.5)
    x["revolving_credit_limit"], x["revolving_balance"] = rev_limit, (rev_bal := util * rev_limit)
    x["open_to_buy"] = np.maximum(rev_limit - rev_bal, 0)
    x["max_card_utilization"] = mx = np.where(rev > 1, util + np.maximum(1.05 - util, 0) * d.unif() ** 2, util)
    over = d.rng.binomial(rev, np.clip((util - 0.25) * 1.1, 0, 1))
    x["num_cards_over_75pct_util"] = np.maximum(over, (mx > 0.75) & (rev > 0))
    x["installment_utilization"] = iu = np.where(inst > 0, np.clip(d.unif(0, 0.5) + d.unif(0, 0.5) - 0.05 * q, 0.01, 1), 0.0)
    x["installment_balance"] = inst_bal = iu * inst_orig
    x["num_accounts_with_balance"] = d.rng.binomial(opened, np.clip(0.35 + 0.5 * util, 0, 1))
    x["utilization_change_6m"] = 0.06 * d.norm() - 0.015 * q + 0.08 * down
    # obligations
    housing = np.exp(np.array([5.4, 7.2, 7.0, 6.0])[home] + np.array([0.2, 0.5, 0.4, 0.2])[home] * np.log(income / 55_000)
                     + 0.3 * d.norm())
    x["monthly_housing_payment"] = housing = np.round(np.where((home == _HOME["other"]) & (d.unif() < 0.5), 0.0, housing), 2)
    x["student_loan_payment"] = student = np.round(d.bern(expit(-0.9 - 0.9 * az)) * d.logn(5.6, 0.5), 2)
    x["monthly_debt_payments"] = debt_pay = np.round(0.028 * rev_bal + inst_bal / d.unif(24, 60) + student, 2)
    x["total_debt_balance"] = rev_bal + inst_bal + student * d.unif(60, 120)
    x["debt_to_income"], x["housing_to_income"] = (housing + debt_pay) / mi, housing / mi
    # loan terms (amount log-normal by purpose; payment from a fixed, not risk-based, APR table)
    x["loan_purpose"] = pur = d.choice([1.2 + 1.2 * (util - 0.3), -0.7 + 0.8 * owner, -0.2, -1.6, -1.8 - 0.6 * az,
                                        -0.8, -1.6 + 1.5 * self_emp, -0.9])
    auto = pur == _PUR["auto"]
    mu = np.array([9.4, 9.6, 9.8, 8.4, 8.9, 8.8, 9.9, 8.6])[pur]
    x["loan_amount"] = amount = np.round(np.clip(np.exp(mu + 0.35 * a + 0.55 * d.norm()), 1000, 100_000), -2)
    t_idx = np.round(2 + 1.1 * np.log(amount / 8000) + 1.2 * auto + 0.5 * d.norm())
    x["loan_term_months"] = term = np.array(cat.LOAN_TERMS)[np.clip(t_idx, 0, np.where(auto, 6, 4)).astype(np.int64)]
    x["estimated_monthly_payment"] = pmt = amortized_payment(amount, term, APR_TABLE[pur])
    x["payment_to_income"], x["loan_to_income"] = pmt / mi, amount / income
    x["residual_income_monthly"] = np.round(mi - housing - debt_pay - pmt, 2)
    x["is_refinance"] = d.bern(np.where(auto, 0.18, 0.04))
    x["autopay_enrolled"] = d.bern(expit(0.1 + 0.4 * s))
    x["days_to_first_payment"] = np.where(d.unif() < 0.8, 30, d.rng.integers(15, 61, n))
    # collateral: none / vehicle / real_estate / deposit / equipment
    secured = d.unif() < np.array([0.04, 0.0, 0.92, 0.02, 0.02, 0.25, 0.35, 0.06])[pur] + 0.3 * (pur == 1) * owner
    ctype = np.select([~secured, auto, pur == _PUR["home_improvement"], pur == _PUR["small_business"]], [0, 1, 2, 4], 3)
    buy = (ctype == 1) | (ctype == 4)
    dp = np.minimum(np.where(buy, 0.18 * d.rng.standard_exponential(n) * np.clip(1 + 0.3 * a, 0.3, 1.8), 0), 0.6)
    price = amount / (1 - dp)
    c_age = d.rng.gamma(np.array([1, 2, 2, 1, 1.5])[ctype], np.array([0, 2, 12.5, 0, 2])[ctype])
    c_age = np.where(ctype == 0, np.nan, np.where((ctype == 1) & (d.unif() < 0.4), 0.0, c_age))
    z, u = d.norm(), d.unif()
    home_value = np.where(mort_orig > 0, mort_orig / (0.45 + 0.5 * u), np.exp(12.6 + 0.45 * a + 0.25 * z))
    value = np.select([ctype == 1, ctype == 2, ctype == 3, ctype == 4],
                      [price * np.exp(-0.05 - 0.07 * np.nan_to_num(c_age) + 0.1 * z), home_value,
                       amount * (1 + 0.25 * u), 0.85 * price], 0.0)
    owed = np.where(ctype == 2, mort_orig * d.unif(0.4, 0.95), 0)
    x["is_secured"], x["collateral_type"], x["collateral_value"] = secured.astype(np.int64), ctype, np.round(value, 2)
    x["collateral_age_years"] = np.round(c_age, 1)
    x["down_payment"], x["down_payment_pct"] = np.round(price - amount, 2), np.round(100 * dp, 2)
    x["loan_to_value"] = np.where(secured, (owed + amount) / np.maximum(value, 1), np.nan)
    # banking behaviour (deposit relationship with us)
    x["has_checking_account"] = chk = d.bern(expit(0.2 + 0.4 * s + 0.2 * a))
    x["months_as_customer"] = mac = chk * np.minimum(np.round(d.gamma(1.3, 55 * np.exp(0.3 * s + 0.3 * az))), life_m)
    x["has_direct_deposit"] = dd = chk * d.bern(np.where(emp <= _EMP["part_time"], 0.65, 0.35))
    balance = d.logn(7.0 + 0.7 * a + 0.35 * q, 0.9) - 400 * d.bern(expit(-2.5 - q))
    x["avg_monthly_balance"] = np.round(chk * balance, 2)
    x["savings_balance"] = np.round(chk * d.bern(0.55) * d.logn(7.8 + 0.9 * a + 0.4 * q, 1.1), 2)
    deposits = chk * np.where(dd == 1, 0.8 * mi * d.logn(0, 0.1), mi * d.unif(0.05, 0.65))
    x["avg_monthly_deposits"], x["deposit_to_income_ratio"] = np.round(deposits, 2), deposits * 12 / income
    x["balance_volatility"] = chk * d.logn(-0.5 - 0.3 * q - 0.3 * a, 0.5)
    x["num_overdrafts_12m"] = od = chk * (d.nb(0.4 * np.exp(-0.9 * q - 0.3 * a), 0.6) + sd.pois(down))
    x["num_nsf_12m"] = d.rng.binomial(od, 0.3)
    x["days_negative_balance_12m"] = np.minimum(od + d.pois(2.0 * od), 366)
    x["num_prior_loans_with_us"] = prior = d.pois(np.where(chk == 1, 0.35 * np.exp(0.2 * a) * np.minimum(1 + mac / 60, 4), 0.05))
    x["num_late_payments_with_us"] = d.pois(prior * 0.25 * np.exp(-q))
    # bureau score last: it summarises the bureau file drawn above
    x["credit_score"] = np.round(705 + 48 * q - 22 * np.log1p(dq) - 15 * np.log1p(d90) - 45 * bk - 20 * np.log1p(coll)
                                 - 60 * np.maximum(util - 0.3, 0) - 6 * i6 + 6 * np.log1p(hist) - 10 * x["thin_file"]
                                 + 18 * d.norm())
    return x


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
        d = _Draw(rng, sl.stop - lo)
        part = _features(d, _Draw(srng, d.n), {k: v[sl] for k, v in people.items()}, down[sl])
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


def _corrupt(sd: _Draw, x: dict[str, np.ndarray], window: np.ndarray) -> None:
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
    d, sd = _Draw(np.random.default_rng(seed), n_rows), _Draw(np.random.default_rng([seed, 1]), n_rows)
    secs = _timestamps(d, t0, t1)
    window = (secs >= s0.timestamp()) & (secs < s1.timestamp())
    ramp = np.clip((secs - s0.timestamp()) / max(s1.timestamp() - s0.timestamp(), 1.0), 0, 1)
    people = _people(d, sd, scenario, ramp)
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
    for f in cat.FEATURES:
        if f.kind == "categorical":
            cols[f.name] = np.array(f.categories, dtype=object)[x[f.name]]
            continue
        v = x[f.name].astype(np.float64 if f.kind == "numeric" else np.int64, copy=False)
        cols[f.name] = np.clip(v, f.lower, f.upper, out=v, casting="unsafe")  # integer bounds are whole
    age_band = np.searchsorted(np.array([25, 35, 45, 55, 65]), people["age"], side="right")
    for name, codes in (("sex", people["sex"]), ("age_band", age_band), ("race_ethnicity", people["race"])):
        cols[name] = np.array(cat.PROTECTED_CATEGORIES[name], dtype=object)[codes]
    cols["pd_true"], cols[cat.TARGET] = pd_true, target
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
        df = pd.read_csv(path, float_precision="round_trip", keep_default_na=False, na_values=[""])
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        raise ValueError(UNSUPPORTED_SUFFIX.format(suffix=path.suffix))
    if "applied_at" in df:
        df["applied_at"] = pd.to_datetime(df["applied_at"], utc=True)
    return df.astype({k: v for k, v in _DTYPES.items() if k in df})
