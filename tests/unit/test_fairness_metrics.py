"""Fairness metrics against fairlearn computed directly on the same rows; the bootstrap's coverage
and determinism; small groups; the cells built from decision rows; the snapshot payload."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from backend.monitoring import fairness_metrics as fm
from backend.monitoring.config import MonitoringSettings
from backend.monitoring.fairness import FairnessService
from backend.monitoring.fairness_queries import CELL_KEYS, to_cells
from backend.platform.clock import FixedClock

RNG = np.random.default_rng(7)


def _rows(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    """Application-level rows with group-dependent stage results and outcomes."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male", "not_provided"], n, p=[0.5, 0.47, 0.03])
    age = rng.choice(["18-24", "25-34", "35-44", "65+"], n, p=[0.2, 0.4, 0.38, 0.02])
    race = rng.choice(["asian", "black", "white", "other"], n, p=[0.15, 0.2, 0.6, 0.05])
    base = 0.55 + 0.15 * (age != "18-24") + 0.05 * (sex == "male")
    model = rng.random(n) < base
    policy = model & (rng.random(n) < 0.85)
    officer = np.where(rng.random(n) < 0.9, policy, ~policy)
    final = officer & (rng.random(n) < 0.97)
    funded = final & (rng.random(n) < 0.88)
    repaid = funded & (rng.random(n) > 0.06 + 0.05 * (age == "18-24"))
    return pd.DataFrame({"sex": sex, "age_band": age, "race_ethnicity": race, "model": model, "policy": policy,
                         "officer": officer, "final": final, "funded": funded, "known": funded, "repaid": repaid,
                         "w": 1})


def _cells(rows: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in rows.columns if c != "w"]
    return rows.groupby(keys, as_index=False)["w"].sum()


# -- equal to fairlearn -------------------------------------------------------------------------------------
@pytest.mark.parametrize("attrs", [["sex"], ["age_band"], ["sex", "race_ethnicity"], ["sex", "age_band"]])
def test_selection_rates_equal_fairlearn_metricframe_on_the_raw_rows(attrs):
    rows = _rows()
    cells = _cells(rows)
    assert len(cells) < len(rows) / 5  # the cells really are a compression
    ours = fm.group_rates(cells, attrs)
    for stage in fm.STAGES:
        mf = MetricFrame(metrics=selection_rate, y_true=rows[stage], y_pred=rows[stage],
                         sensitive_features=rows[attrs])
        theirs = mf.by_group.dropna()
        got = ours[ours["stage"] == stage].set_index("group")
        labels = [fm.GROUP_SEP.join(map(str, k)) if isinstance(k, tuple) else str(k) for k in theirs.index]
        assert sorted(got.index) == sorted(labels)
        np.testing.assert_allclose(got.loc[labels, "rate"].to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-12)
        counts = rows.groupby(attrs)[stage].agg(["size", "sum"])
        assert got.loc[labels, "n"].tolist() == counts["size"].tolist()
        assert got.loc[labels, "favourable"].tolist() == counts["sum"].tolist()


def test_lowest_di_equals_demographic_parity_ratio_over_judged_groups():
    rows = _rows()
    ours = fm.group_rates(_cells(rows), ["age_band"])
    for stage in fm.STAGES:
        g = ours[ours["stage"] == stage]
        ok = fm.judged(g["group"].tolist(), g["n"].to_numpy(), 200)
        assert not ok[g["group"].tolist().index("65+")]  # about 120 rows: too small to judge
        di, ref = fm.disparate_impact(g["rate"].to_numpy(), ok)
        keep = rows["age_band"].isin(g["group"][ok])
        dpr = demographic_parity_ratio(rows.loc[keep, stage], rows.loc[keep, stage],
                                       sensitive_features=rows.loc[keep, "age_band"])
        assert np.nanmin(di[ok]) == pytest.approx(dpr, abs=1e-12)
        assert g["rate"].to_numpy()[ref] == g["rate"].to_numpy()[ok].max()  # the most favoured judged group
        assert di[ref] == 1.0


def test_tpr_fpr_and_gaps_equal_fairlearn_on_funded_loans():
    rows = _rows(20_000)
    known = rows[rows["known"]]
    ours = fm.error_rates(_cells(known), "age_band")
    for stage in ("model", "policy"):
        got = ours[ours["stage"] == stage].set_index("group")
        mf = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
                         y_true=known["repaid"], y_pred=known[stage], sensitive_features=known["age_band"])
        np.testing.assert_allclose(got.loc[mf.by_group.index, "tpr"], mf.by_group["tpr"], atol=1e-12)
        np.testing.assert_allclose(got.loc[mf.by_group.index, "fpr"], mf.by_group["fpr"], atol=1e-12)
        assert (got["positives"] + got["negatives"] == got["n"]).all()
        eod = equalized_odds_difference(known["repaid"], known[stage], sensitive_features=known["age_band"])
        gaps = [fm.gap(got[c].to_numpy(), np.ones(len(got), bool)) for c in ("tpr", "fpr")]
        assert max(gaps) == pytest.approx(eod, abs=1e-12)


def test_a_group_without_negatives_has_no_fpr_rather_than_zero():
    cells = pd.DataFrame({"sex": ["a", "a", "b", "b"], "model": [True, False, True, False],
                          "repaid": [True, True, True, False], "w": [5, 5, 4, 6]})
    er = fm.error_rates(cells, "sex", stages=["model"]).set_index("group")
    assert np.isnan(er.loc["a", "fpr"]) and er.loc["a", "negatives"] == 0 and er.loc["a", "tpr"] == 0.5
    assert er.loc["b", "tpr"] == 1.0 and er.loc["b", "fpr"] == 0.0


# -- bootstrap ----------------------------------------------------------------------------------------------
def test_bootstrap_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    p = np.array([0.50, 0.40, 0.45])  # true DI of group 1 vs the reference (group 0): 0.8
    n = np.array([1500, 1200, 900])
    rng = np.random.default_rng(11)
    covered = []
    for trial in range(300):
        k = rng.binomial(n, p)
        ci = fm.di_intervals(n, k, 0, samples=400, seed=trial)
        covered.append(ci["di_lo"][1] <= 0.8 <= ci["di_hi"][1])
    assert 0.90 <= np.mean(covered) <= 0.99, np.mean(covered)


def test_bootstrap_is_deterministic_for_a_seed():
    n, k = np.array([400, 300, 20]), np.array([250, 150, 5])
    a = fm.di_intervals(n, k, 0, samples=300, seed=5)
    b = fm.di_intervals(n, k, 0, samples=300, seed=5)
    c = fm.di_intervals(n, k, 0, samples=300, seed=6)
    for key in ("rate_lo", "rate_hi", "di_lo", "di_hi"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["di_lo"], c["di_lo"])
    assert a["di_lo"][0] == a["di_hi"][0] == 1.0  # the reference against itself
    assert a["di_lo"][1] <= 150 / 300 / (250 / 400) <= a["di_hi"][1]
    assert a["rate_lo"][2] <= 5 / 20 <= a["rate_hi"][2]


def test_counting_bootstrap_matches_resampling_rows_within_groups():
    """Binomial counts are what resampling a group's rows with replacement gives (same distribution)."""
    n, k, b = np.array([800, 300]), np.array([520, 150]), 4000
    ours = fm.bootstrap_rates(n, k, b, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    rows = [np.r_[np.ones(kk), np.zeros(nn - kk)] for nn, kk in zip(n, k, strict=True)]
    theirs = np.stack([r[rng.integers(0, len(r), (b, len(r)))].mean(axis=1) for r in rows])
    np.testing.assert_allclose(ours.mean(axis=1), theirs.mean(axis=1), atol=0.003)
    np.testing.assert_allclose(ours.std(axis=1), theirs.std(axis=1), rtol=0.06)


def test_bad_counts_and_samples_are_refused_with_clear_messages():
    with pytest.raises(ValueError) as e:
        fm.bootstrap_rates(np.array([10]), np.array([11]), 10, RNG)
    assert str(e.value) == fm.BAD_COUNTS.format(n=10, k=11)
    with pytest.raises(ValueError) as e:
        fm.bootstrap_rates(np.array([10]), np.array([1]), 0, RNG)
    assert str(e.value) == fm.BAD_SAMPLES.format(b=0)
    with pytest.raises(ValueError) as e:
        fm.group_rates(pd.DataFrame({"sex": ["a"], "w": [1]}), "sex", stages=["final"])
    assert str(e.value) == fm.MISSING_COLUMNS.format(missing=["final"], expected=["sex", "final", "w"])


# -- small groups -------------------------------------------------------------------------------------------
def test_small_groups_and_not_provided_are_shown_but_not_judged():
    groups = ["female", "male", "not_provided", "female / not_provided", "female / black"]
    ok = fm.judged(groups, np.array([500, 480, 900, 60, 29]), 30)
    assert ok.tolist() == [True, True, False, False, False]
    di, ref = fm.disparate_impact(np.array([0.5, 0.6, 0.9, 0.2, 0.1]), ok)
    assert ref == 1 and di[2] == pytest.approx(1.5)  # shown with its ratio, but never the reference
    di, ref = fm.disparate_impact(np.array([0.5, 0.6]), np.array([False, False]))
    assert ref is None and np.isnan(di).all()


# -- cells and payload ----------------------------------------------------------------------------------------
def _decision_rows() -> pd.DataFrame:
    cols = ["app", "sex", "age_band", "race_ethnicity", "arm", "phase", "ai_visible", "outcome", "status",
            "is_override", "risk_class", "recommendation", "funded", "defaulted"]
    data = [
        # a: AI arm, override towards approval rejected by four-eyes, then the recommendation (deny) final
        ("a", "female", "18-24", "black", "ai", "pilot", True, "approve", "rejected", True, "high_risk", "deny", None,
         None),
        ("a", "female", "18-24", "black", "ai", "pilot", True, "deny", "final", False, "high_risk", "deny", None, None),
        # b: control arm, approved and funded, repaid
        ("b", "male", "35-44", "white", "control", "pilot", False, "approve", "final", False, "low_risk", "approve",
         True, False),
        # c: awaiting four-eyes: in flight
        ("c", "male", "35-44", "white", "ai", "pilot", True, "approve", "pending_approval", True, "high_risk", "deny",
         None, None),
        # d: no decision yet (outer join), e: a final decision without a prediction
        ("d", None, None, None, "ai", "pilot", True, None, None, None, None, None, None, None),
        ("e", "female", "18-24", "black", "control", "pilot", False, "deny", "final", False, None, None, None, None),
    ]
    return pd.DataFrame(data, columns=cols)


def test_cells_take_the_first_decision_as_the_officers_and_count_what_is_not_judged():
    cells, apps, in_flight, unscored = to_cells(_decision_rows())
    assert (apps, in_flight, unscored) == (5, 2, 1)
    assert list(cells.columns) == [*CELL_KEYS, "w"] and cells["w"].sum() == 2
    a = cells[cells["sex"] == "female"].iloc[0]
    assert (a["officer"], a["override"], a["final"], a["model"], a["policy"], a["ai"]) == (True, True, False, False,
                                                                                          False, True)
    b = cells[cells["sex"] == "male"].iloc[0]
    assert (b["officer"], b["final"], b["model"], b["funded"], b["known"], b["repaid"], b["ai"]) == (
        True, True, True, True, True, True, False)


def _service(min_group: int = 30) -> FairnessService:
    settings = MonitoringSettings(fairness_min_group=min_group, bootstrap_samples=200)
    return FairnessService(None, FixedClock(datetime(2026, 2, 1, tzinfo=UTC)), settings)  # type: ignore[arg-type]


def _full_cells(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.assign(phase="pilot", arm=np.where(np.arange(len(rows)) % 3 == 0, "ai", "control"),
                       ai=np.arange(len(rows)) % 3 == 0, override=np.arange(len(rows)) % 17 == 0)
    return rows.groupby(list(CELL_KEYS), as_index=False)["w"].sum()


def test_payload_headline_is_the_lowest_judged_final_stage_ratio_and_flags_small_groups():
    rows = _rows(9000)
    svc = _service(min_group=200)
    payload = svc.summarize(_full_cells(rows), seed=1)
    rates = pd.DataFrame(payload["rates"])
    final = rates[(rates["view"] == "all") & (rates["stage"] == "final") & rates["attribute"].isin(fm.ATTRIBUTES)]
    lowest = final[final["judged"]].sort_values("di").iloc[0]
    assert payload["min_di"]["value"] == pytest.approx(lowest["di"], abs=1e-6)
    assert (payload["min_di"]["attribute"], payload["min_di"]["group"]) == (lowest["attribute"], lowest["group"])
    small = rates[(rates["attribute"] == "age_band") & (rates["group"] == "65+")]
    assert len(small) and not small["judged"].any()
    assert payload["population"]["decided"] == len(rows)
    assert set(rates["view"]) == {"all", "ai", "blind"}
    assert {"sex+race_ethnicity", "sex+age_band"} <= set(rates["attribute"])
    assert payload == svc.summarize(_full_cells(rows), seed=1)  # deterministic


def test_nothing_judged_gives_no_headline():
    payload = _service(min_group=10_000).summarize(_full_cells(_rows(600)), seed=1)
    assert payload["min_di"] is None
    assert payload["population"]["decided"] == 600


def _nan_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    cases = []
    for rows, cols in ((1, 1), (1, 7), (3, 1000), (12, 400), (40, 50)):
        base = rng.random((rows, cols)) * rng.choice([1.0, 1e-9, 1e9])
        cases.append(base.copy())  # no NaN
        common = base.copy()
        common[:, rng.random(cols) < 0.2] = np.nan  # the reference's rate 0 in some replicates: NaN in every row
        if np.isnan(common).all():
            common[:, 0] = 1.0
        cases.append(common)
        mixed = common.copy()
        mixed[0, rng.integers(cols)] = np.nan  # one row with a NaN more
        if rows > 1:
            mixed[-1, :] = rng.random(cols)  # one row with none
        cases.append(mixed)
        ties = np.round(base * 4) / 4  # many equal values
        ties[rng.random((rows, cols)) < 0.3] = np.nan
        ties[:, 0] = 0.5  # no row all NaN
        cases.append(ties)
        inf = base.copy()
        inf[0, 0] = np.inf
        cases.append(inf)
    return cases


@pytest.mark.parametrize("case", range(25))
def test_nan_percentile_rows_equals_numpy_bit_for_bit(case):
    a = _nan_cases()[case]
    for q in ([2.5, 97.5], [0, 50, 100], [5.0]):
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # numpy's own: an all-NaN row, inf - inf
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanpercentile(a, q, axis=1)
            got = fm.nan_percentile_rows(a, q)
        assert got.shape == want.shape and np.array_equal(got, want, equal_nan=True), (case, q)
