"""Feature catalog, Regulation B reason catalog and the synthetic application generator."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from backend.domain import features as cat
from backend.domain import reason_codes as rc
from backend.training import synthetic as syn

START = datetime(2025, 8, 1, tzinfo=UTC)
SEPT, OCT = pd.Timestamp("2025-09-01", tz=UTC), pd.Timestamp("2025-10-01", tz=UTC)
INCIDENT_FEATURES = ("annual_income", "revolving_utilization", "max_card_utilization", "num_inquiries_6m")


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return syn.generate(20_000, seed=11)


def psi(ref: pd.Series, cur: pd.Series, bins: int = 10) -> float:
    """Population stability index over reference deciles, with NaN as its own bin."""
    ref, cur = ref.to_numpy(float), cur.to_numpy(float)
    edges = np.unique(np.nanquantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(v: np.ndarray) -> np.ndarray:
        idx = np.where(np.isnan(v), len(edges) + 1, np.searchsorted(edges, v, side="right"))
        return np.clip(np.bincount(idx, minlength=len(edges) + 2) / len(v), 1e-4, None)

    r, c = shares(ref), shares(cur)
    return float(np.sum((c - r) * np.log(c / r)))


# --- feature catalog -------------------------------------------------------------------------


def test_catalog_is_consistent():
    assert 85 <= len(cat.FEATURES) <= 100
    assert len(set(cat.FEATURE_NAMES)) == len(cat.FEATURE_NAMES)
    assert set(cat.FEATURES_BY_NAME) == set(cat.FEATURE_NAMES)
    assert {f.group for f in cat.FEATURES} == set(cat.GROUPS)
    for f in cat.FEATURES:
        assert f.name.isidentifier() and f.name == f.name.lower(), f.name
        assert f.kind in cat.KINDS and f.description, f.name
        assert f.reason_code in rc.REASONS, f.name
        if f.kind == "categorical":
            assert f.categories and all(isinstance(c, str) for c in f.categories), f.name
        else:
            assert f.categories is None, f.name
            assert f.lower is not None and f.upper is not None and f.lower < f.upper, f.name
        if f.kind == "binary":
            assert (f.lower, f.upper) == (0, 1), f.name
    assert set(cat.MAY_BE_MISSING) <= {f.name for f in cat.FEATURES if f.kind == "numeric"}


def test_required_features_exist_with_the_expected_types():
    expected = {
        "annual_income": "numeric", "debt_to_income": "numeric", "loan_amount": "numeric",
        "loan_term_months": "integer", "credit_score": "integer", "revolving_utilization": "numeric",
        "num_delinquencies_2y": "integer", "num_inquiries_6m": "integer", "months_employed": "numeric",
        "credit_history_months": "integer", "home_ownership": "categorical", "employment_type": "categorical",
        "loan_purpose": "categorical", "has_bankruptcy": "binary", "down_payment": "numeric",
        "num_open_accounts": "integer", "avg_monthly_balance": "numeric", "num_overdrafts_12m": "integer",
    }  # fmt: skip
    assert {name: cat.FEATURES_BY_NAME[name].kind for name in expected} == expected
    score = cat.FEATURES_BY_NAME["credit_score"]
    assert (score.lower, score.upper) == (300, 850)
    assert cat.FEATURES_BY_NAME["loan_amount"].unit == "USD"


def test_protected_attributes_are_never_features_nor_proxies():
    assert cat.PROTECTED == ("sex", "age_band", "race_ethnicity")
    assert set(cat.PROTECTED_CATEGORIES) == set(cat.PROTECTED)
    assert not set(cat.PROTECTED) & set(cat.FEATURE_NAMES)
    forbidden = {"age", "zip", "zipcode", "postal", "gender", "sex", "race", "ethnicity", "birth", "dob",
                 "marital", "religion", "nationality", "language", "dependents"}  # fmt: skip
    for name in cat.FEATURE_NAMES:
        tokens = set(name.split("_"))
        assert not tokens & (forbidden - {"age"}), name
        if "age" in tokens:  # only the age of things, never of the applicant
            assert name in {"avg_account_age_months", "collateral_age_years"}, name
    assert "age" not in cat.FEATURE_NAMES and "age_years" not in cat.FEATURE_NAMES
    assert {cat.TARGET, *cat.ID_COLUMNS}.isdisjoint(cat.FEATURE_NAMES)


def test_only_loan_terms_are_mutable():
    assert {"loan_amount", "loan_term_months", "down_payment"} <= set(cat.MUTABLE_FEATURES)
    for name in ("annual_income", "credit_score", "num_delinquencies_2y", "months_employed"):
        assert not cat.FEATURES_BY_NAME[name].mutable
    assert {cat.FEATURES_BY_NAME[n].group for n in cat.MUTABLE_FEATURES} <= {"loan_terms", "collateral"}


def test_features_in_group_and_dtypes():
    assert sum(len(cat.features_in_group(g)) for g in cat.GROUPS) == len(cat.FEATURES)
    with pytest.raises(ValueError, match="unknown feature group"):
        cat.features_in_group("nope")
    assert cat.pandas_dtype(cat.FEATURES_BY_NAME["has_bankruptcy"]) == "int64"


# --- Regulation B reasons --------------------------------------------------------------------


def test_form_c1_reasons_are_verbatim():
    assert len(rc.FORM_C1) == 24
    texts = list(rc.FORM_C1.values())
    assert texts[0] == "Credit application incomplete"
    assert texts[-1] == "Other, specify"
    for text in (
        "Insufficient number of credit references provided", "Unable to verify credit references",
        "Temporary or irregular employment", "Income insufficient for amount of credit requested",
        "Excessive obligations in relation to income", "Delinquent past or present credit obligations with others",
        "Number of recent inquiries on credit bureau report", "Value or type of collateral not sufficient",
        "Garnishment or attachment", "Foreclosure or repossession", "Bankruptcy", "No credit file",
    ):  # fmt: skip
        assert text in texts
    for key, text in rc.OTHER_SPECIFIED.items():
        assert (
            key.startswith("other_") and text.startswith(rc.OTHER_PREFIX) and len(text) > len(rc.OTHER_PREFIX)
        )
        assert not rc.is_form_reason(key)
    assert rc.REASONS == {**rc.FORM_C1, **rc.OTHER_SPECIFIED}


def test_reason_for_and_mapping_table():
    assert rc.reason_for("debt_to_income") == (
        "excessive_obligations",
        "Excessive obligations in relation to income",
    )
    assert rc.reason_for("has_bankruptcy") == ("bankruptcy", "Bankruptcy")
    assert rc.reason_for("num_inquiries_6m")[1] == "Number of recent inquiries on credit bureau report"
    for name in ("sex", "age_band", "nope"):
        with pytest.raises(KeyError, match="unknown feature"):
            rc.reason_for(name)
    assert [row[0] for row in rc.MAPPING_TABLE] == list(cat.FEATURE_NAMES)
    assert all(rc.REASONS[key] == text for _, key, text in rc.MAPPING_TABLE)


# --- generator: shape, types, bounds ---------------------------------------------------------


def test_columns_and_dtypes_match_the_catalog(df):
    assert list(df.columns) == [*cat.ID_COLUMNS, *cat.FEATURE_NAMES, *cat.PROTECTED, "bureau_key_factors", "pd_true",
                                cat.TARGET]
    assert len(df) == 20_000
    for f in cat.FEATURES:
        assert str(df[f.name].dtype) == cat.pandas_dtype(f), f.name
        if f.kind == "categorical":
            assert set(df[f.name].unique()) <= set(f.categories), f.name
        if f.kind == "binary":
            assert set(df[f.name].unique()) <= {0, 1}, f.name
    assert str(df["applied_at"].dtype) == "datetime64[ns, UTC]"
    assert df["application_id"].map(type).eq(str).all() and df["applicant_id"].map(type).eq(str).all()
    assert df[cat.TARGET].dtype == np.int64 and set(df[cat.TARGET].unique()) == {0, 1}
    assert df["pd_true"].between(0, 1).all()


def test_values_respect_bounds_and_missingness(df):
    for f in cat.FEATURES:
        col = df[f.name]
        if f.name not in cat.MAY_BE_MISSING:
            assert col.notna().all(), f.name
        if f.kind != "categorical":
            present = col.dropna()
            assert present.ge(f.lower).all() and present.le(f.upper).all(), f.name
    no_tenure = df["employment_type"].isin(["self_employed", "retired"])
    assert df["months_employed"].isna().eq(no_tenure).all()
    assert df["loan_to_value"].isna().eq(df["is_secured"] == 0).all()
    assert df["months_since_bankruptcy"].isna().eq(df["has_bankruptcy"] == 0).all()
    assert 0.05 < (df["loan_amount"] > 25_000).mean() < 0.3  # a $25,000 cap bites for a real share
    assert 0.4 < np.log(df["annual_income"]).std() < 0.9  # log-normal incomes


def test_realistic_correlations(df):
    corr = df[
        ["credit_score", "num_delinquencies_2y", "revolving_utilization", "annual_income", "pd_true"]
    ].corr(method="spearman")
    assert corr.loc["credit_score", "num_delinquencies_2y"] < -0.2
    assert corr.loc["credit_score", "revolving_utilization"] < -0.2
    assert corr.loc["credit_score", "pd_true"] < -0.2
    young, old = df["age_band"] == "18-24", df["age_band"].isin(["55-64", "65+"])
    assert df.loc[young, "credit_history_months"].median() < df.loc[old, "credit_history_months"].median() / 3


def test_ids_and_repeat_applicants(df):
    assert df["application_id"].is_unique and df["application_id"].str.startswith("APP11-").all()
    repeat_share = 1 - df["applicant_id"].nunique() / len(df)
    assert 0.01 < repeat_share < 0.06
    per_applicant = df.groupby("applicant_id")[list(cat.PROTECTED)].nunique()
    assert (per_applicant == 1).all().all()
    other = syn.generate(50, seed=11, id_prefix="T-")
    assert other["application_id"].str.startswith("T-APP11-").all()


def test_applied_at_is_within_range_sorted_and_weekday_heavy(df):
    at = df["applied_at"]
    assert at.min() >= pd.Timestamp(START) and at.max() < pd.Timestamp("2026-02-01", tz=UTC)
    assert at.is_monotonic_increasing
    assert at.dt.strftime("%Y-%m").nunique() == 6
    weekday = (at.dt.dayofweek < 5).mean()
    assert weekday / 5 > 2 * (1 - weekday) / 2  # a weekday is more than twice as busy as a weekend day
    assert at.dt.hour.between(8, 17).mean() > 0.6
    short = syn.generate(500, seed=1, start=datetime(2024, 1, 1), months=1)  # naive start = UTC
    assert short["applied_at"].min() >= pd.Timestamp("2024-01-01", tz=UTC)
    assert short["applied_at"].max() < pd.Timestamp("2024-02-01", tz=UTC)


def test_same_arguments_give_identical_frames():
    a, b = syn.generate(3_000, seed=5), syn.generate(3_000, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = syn.generate(3_000, seed=6)
    assert not a["annual_income"].equals(c["annual_income"])
    big = syn.generate(syn.CHUNK_ROWS + 10, seed=5)  # spans two blocks
    assert big["application_id"].is_unique and big[list(cat.FEATURE_NAMES)].notna().any().all()


@pytest.mark.parametrize("rate", [0.05, 0.12])
def test_default_rate_matches_the_argument(rate):
    frame = syn.generate(40_000, seed=3, default_rate=rate)
    assert frame["pd_true"].mean() == pytest.approx(rate, abs=1e-6)
    se = np.sqrt(rate * (1 - rate) / len(frame))
    assert abs(frame[cat.TARGET].mean() - rate) < 4 * se


def test_protected_attributes_are_present_but_not_inputs_to_the_default_process(df):
    for name, categories in cat.PROTECTED_CATEGORIES.items():
        assert set(df[name].unique()) == set(categories), name
    # the risk function reads catalog features only
    x = {f.name: df[f.name].to_numpy() for f in cat.FEATURES}
    for f in cat.FEATURES:
        if f.kind == "categorical":
            x[f.name] = pd.Categorical(df[f.name], categories=f.categories).codes.astype(np.int64)

    class Recorder(dict):
        def __init__(self, values):
            super().__init__(values)
            self.seen: set[str] = set()

        def __getitem__(self, key):
            self.seen.add(key)
            return super().__getitem__(key)

    rec = Recorder(x)
    risk = syn._risk(rec, np.zeros(len(df)))
    assert rec.seen and rec.seen <= set(cat.FEATURE_NAMES) and np.isfinite(risk).all()


# --- scenarios -------------------------------------------------------------------------------


def test_data_quality_incident_shifts_features_in_the_window_only():
    base = syn.generate(30_000, seed=7)
    inc = syn.generate(30_000, seed=7, scenario="data_quality_incident")  # default window: September
    inside = (inc["applied_at"] >= SEPT) & (inc["applied_at"] < OCT)
    pd.testing.assert_frame_equal(base[~inside], inc[~inside])
    pd.testing.assert_series_equal(base["pd_true"], inc["pd_true"])
    ref = base[base["applied_at"] < SEPT]
    later = inc[inc["applied_at"] >= OCT]
    for name in INCIDENT_FEATURES:
        assert psi(ref[name], inc.loc[inside, name]) > 0.25, name
        assert psi(ref[name], later[name]) < 0.05, name
    assert inc.loc[inside, "revolving_utilization"].isna().mean() > 0.1
    assert psi(ref["credit_score"], inc.loc[inside, "credit_score"]) < 0.05


def test_incident_window_can_be_chosen():
    lo, hi = datetime(2025, 10, 15, tzinfo=UTC), datetime(2025, 10, 22, tzinfo=UTC)
    base = syn.generate(8_000, seed=2)
    inc = syn.generate(8_000, seed=2, scenario="data_quality_incident", scenario_start=lo, scenario_end=hi)
    changed = (base.fillna(-1) != inc.fillna(-1)).any(axis=1)
    assert changed.any()
    assert inc.loc[changed, "applied_at"].between(pd.Timestamp(lo), pd.Timestamp(hi), inclusive="left").all()


def test_economic_downturn_raises_defaults_and_utilization_gradually():
    frame = syn.generate(60_000, seed=4, scenario="economic_downturn")
    month = frame["applied_at"].dt.month
    first, last = frame[month == 8], frame[month == 1]
    assert first["pd_true"].mean() == pytest.approx(0.05, abs=0.005)
    assert last["pd_true"].mean() > 1.5 * first["pd_true"].mean()
    assert last["revolving_utilization"].mean() > first["revolving_utilization"].mean() + 0.03
    by_month = frame.groupby(frame["applied_at"].dt.strftime("%Y-%m"))["pd_true"].mean()
    assert by_month.is_monotonic_increasing or by_month.diff().dropna().min() > -0.003


def test_population_shift_changes_the_applicant_mix():
    frame = syn.generate(60_000, seed=4, scenario="population_shift")
    month = frame["applied_at"].dt.month
    first, last = frame[month == 8], frame[month == 1]
    assert (last["age_band"] == "18-24").mean() > 2 * (first["age_band"] == "18-24").mean()
    assert psi(first["credit_history_months"], last["credit_history_months"]) > 0.25
    assert last[cat.TARGET].mean() > first[cat.TARGET].mean()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        syn.generate(10, scenario="meteor")
    with pytest.raises(ValueError, match=syn.BAD_WINDOW):
        syn.generate(10, scenario="data_quality_incident", scenario_start=datetime(2025, 9, 2, tzinfo=UTC),
                     scenario_end=datetime(2025, 9, 1, tzinfo=UTC))  # fmt: skip
    for kwargs in ({"default_rate": 0.0}, {"default_rate": 1.0}, {"months": 0}):
        with pytest.raises(ValueError, match="default_rate"):
            syn.generate(10, **kwargs)
    with pytest.raises(ValueError):
        syn.generate(0)


# --- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_read_round_trip(tmp_path, suffix):
    frame = syn.generate(1_500, seed=9, scenario="data_quality_incident")  # has NaN and zeros
    path = syn.write_dataset(frame, tmp_path / "sub" / f"apps{suffix}")
    assert path.exists() and path.suffix == suffix
    pd.testing.assert_frame_equal(syn.read_dataset(path), frame)


def test_bad_suffix_is_a_clear_error(tmp_path, df):
    for call in (lambda p: syn.write_dataset(df.head(), p), syn.read_dataset):
        with pytest.raises(
            ValueError, match=r"unsupported dataset file suffix '\.json': use \.csv or \.parquet"
        ):
            call(tmp_path / "apps.json")


# --- learnability ----------------------------------------------------------------------------


def test_signal_is_learnable_but_not_trivial(df):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from threadpoolctl import threadpool_limits

    numeric = [f.name for f in cat.FEATURES if f.kind != "categorical"]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), list(cat.CATEGORICAL_FEATURES)),
    ])  # fmt: skip
    train, test = df.iloc[:15_000], df.iloc[15_000:]
    with threadpool_limits(1):  # tiny problem: BLAS threads only contend on a shared machine
        model = make_pipeline(prep, LogisticRegression(solver="newton-cholesky")).fit(
            train, train[cat.TARGET]
        )
    auc = roc_auc_score(test[cat.TARGET], model.predict_proba(test)[:, 1])
    assert 0.7 < auc < 0.92


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_datasets(n):
    for seed in range(30):  # a single row must never be drawn as the repeat of an earlier one
        assert len(syn.generate(n, seed=seed)) == n


def test_bureau_key_factors_are_valid_codes_and_sometimes_absent(df):
    from backend.domain import parse_key_factors

    parsed = [parse_key_factors(v) for v in df["bureau_key_factors"]]
    assert all(len([c for c in p if c != "84"]) <= 4 for p in parsed)
    none = sum(1 for p in parsed if not p) / len(parsed)
    assert 0.01 < none < 0.06  # the bureau sent none for a few applications
    # a factor follows the applicant's own file: revolving utilisation code 10 only above 30%
    util = df["revolving_utilization"].to_numpy()
    assert all(util[i] > 0.3 for i, p in enumerate(parsed) if "10" in p)
