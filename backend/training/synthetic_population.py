"""The synthetic applicant population: who applies and what every catalog feature records.

Three latent factors per applicant, credit quality ``q``, affluence ``a`` and stability ``s``
(roughly standard normal, mildly correlated through age), drive every feature (see
:mod:`backend.training.synthetic` for the whole generator, its default process and its scenarios).
:class:`Draw` holds the distributions over one random stream; the order of its calls is part of the
output, so the same seed always gives the same applicants.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from backend.domain import (
    APR_TABLE,
    EMPLOYMENT_TYPES,
    HOME_OWNERSHIP,
    LOAN_PURPOSES,
    LOAN_TERMS,
    amortized_payment,
)

REPEAT_SHARE = 0.03  # share of rows that are a further application of an earlier applicant
_EMP = {k: i for i, k in enumerate(EMPLOYMENT_TYPES)}
_HOME = {k: i for i, k in enumerate(HOME_OWNERSHIP)}
_PUR = {k: i for i, k in enumerate(LOAN_PURPOSES)}


class Draw:
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


def draw_people(d: Draw, sd: Draw, scenario: str, w: np.ndarray) -> dict[str, np.ndarray]:
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
def draw_features(d: Draw, sd: Draw, p: dict[str, np.ndarray], down: np.ndarray) -> dict[str, np.ndarray]:
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
    x["loan_term_months"] = term = np.array(LOAN_TERMS)[np.clip(t_idx, 0, np.where(auto, 6, 4)).astype(np.int64)]
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
# fmt: on
