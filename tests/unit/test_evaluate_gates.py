"""Evaluation metrics, fairness figures and promotion gates on hand-made data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from backend.models import evaluation as ev
from backend.models.gates import (
    GateConfig,
    all_passed,
    champion_challenger_gate,
    failures,
    fairness_gates,
    min_auc_gate,
    run_gates,
)


def _sample(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    score = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    return y, score


def test_discrimination_metrics():
    y = np.array([0, 0, 1, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8])
    assert ev.auc(y, score) == pytest.approx(0.75)
    assert ev.gini(y, score) == pytest.approx(0.5)
    assert ev.ks(y, score) == pytest.approx(0.5)
    assert ev.balanced_accuracy(y, score, cutoff=0.3) == pytest.approx(0.75)
    assert ev.brier(y, score) == pytest.approx(np.mean((score - y) ** 2))


def test_calibration_curve_and_confusion():
    y, score = _sample()
    curve = ev.calibration_curve(y, score, bins=10)
    assert len(curve["mean_predicted"]) == 10 and sum(curve["count"]) == len(y)
    assert np.all(np.diff(curve["mean_predicted"]) > 0)
    perfect = ev.calibration_curve(np.r_[np.zeros(50), np.ones(50)], np.r_[np.zeros(50), np.ones(50)], bins=2)
    assert perfect["ece"] == 0.0
    cm = ev.confusion_at_cutoff(y, score, cutoff=0.5)
    assert cm["tp"] + cm["fp"] + cm["fn"] + cm["tn"] == len(y)
    assert cm["tp"] == int(np.sum((score >= 0.5) & (y == 1)))


def test_fairness_block_matches_direct_computation():
    y, score = _sample()
    rng = np.random.default_rng(1)
    groups = rng.choice(["a", "b", "tiny"], len(y), p=[0.6, 0.395, 0.005])
    block = ev.fairness_by_attribute(y, score, groups, cutoff=0.5, min_group_size=30)
    approved = score < 0.5
    rates = {g: approved[groups == g].mean() for g in ("a", "b")}
    assert block["small_groups"] == ["tiny"] and block["eligible_groups"] == ["a", "b"]
    assert block["disparate_impact"] == pytest.approx(min(rates.values()) / max(rates.values()))
    lo, hi = block["disparate_impact_ci"]
    assert lo <= block["disparate_impact"] <= hi <= 1.0
    ga = groups == "a"
    tpr_a = np.mean(score[ga & (y == 1)] >= 0.5)
    assert block["groups"]["a"]["tpr"] == pytest.approx(tpr_a)
    assert block["groups"]["a"]["n"] == int(ga.sum())
    assert block["tpr_gap"] == pytest.approx(abs(block["groups"]["a"]["tpr"] - block["groups"]["b"]["tpr"]))


def test_bootstrap_is_seeded_and_reflects_sample_size():
    y, score = _sample(20000)
    groups = np.resize(["a", "b"], len(y))
    approved = (score < 0.5).astype(int)
    a = ev.bootstrap_di_ci(approved, groups, ["a", "b"], seed=7)
    assert a == ev.bootstrap_di_ci(approved, groups, ["a", "b"], seed=7)
    small = ev.bootstrap_di_ci(approved[:500], groups[:500], ["a", "b"], seed=7)
    assert (small[1] - small[0]) > (a[1] - a[0])


def test_numeric_protected_column_is_banded():
    groups = ev.as_groups(pd.Series(np.arange(18, 90)))
    assert len(set(groups)) == 4
    assert set(ev.as_groups(pd.Series(["x", None]))) == {"x", "missing"}


def test_evaluate_report_is_json():
    y, score = _sample()
    protected = pd.DataFrame({"sex": np.resize(["f", "m"], len(y))})
    report = ev.evaluate(y, score, score * 0.3, protected=protected)
    json.dumps(report, allow_nan=False)
    assert report["auc"] == pytest.approx(roc_auc_score(y, score))
    assert report["brier"] < report["brier_raw"]
    assert set(report["fairness"]) == {"sex"}


def _fairness(rates: dict[str, float], n: dict[str, int]) -> dict:
    return {"sex": {"groups": {g: {"n": n[g], "approval_rate": r} for g, r in rates.items()}}}


def test_fairness_gate_passes_fails_and_ignores_small_groups():
    ok = fairness_gates(_fairness({"f": 0.6, "m": 0.7}, {"f": 500, "m": 500}))
    assert ok[0].passed and ok[0].value == pytest.approx(0.6 / 0.7) and ok[0].threshold == 0.8
    bad = fairness_gates(_fairness({"f": 0.4, "m": 0.7, "x": 0.1}, {"f": 500, "m": 500, "x": 5}))
    assert not bad[0].passed and bad[0].value == pytest.approx(0.4 / 0.7)
    assert "not gated, below 30 rows: x (n=5)" in bad[0].detail
    single = fairness_gates(_fairness({"f": 0.4, "x": 0.1}, {"f": 500, "x": 5}))
    assert single[0].passed and single[0].value is None
    assert fairness_gates(
        _fairness({"f": 0.4, "m": 0.7}, {"f": 500, "m": 500}), GateConfig(min_disparate_impact=0.5)
    )[0].passed


def test_champion_challenger_and_min_auc_gates():
    assert champion_challenger_gate(0.70, None).passed
    assert champion_challenger_gate(0.795, 0.80).passed
    lost = champion_challenger_gate(0.78, 0.80, champion_version="v1")
    assert not lost.passed and lost.threshold == pytest.approx(0.79) and "v1" in lost.detail
    assert min_auc_gate(0.7) is None
    assert not min_auc_gate(0.7, GateConfig(min_auc=0.75)).passed
    results = run_gates(
        {"auc": 0.7, "fairness": _fairness({"f": 0.4, "m": 0.7}, {"f": 99, "m": 99})},
        champion_auc=0.72,
        config=GateConfig(min_auc=0.75),
    )
    assert [r.name for r in results] == ["fairness:sex", "champion_challenger", "min_auc"]
    assert not all_passed(results) and all_passed([r.to_dict() for r in results[:0]])
    assert [f.split(":")[0] for f in failures(results)] == ["fairness", "champion_challenger", "min_auc"]
    assert GateConfig.from_dict(GateConfig(fairness_attributes=("sex",)).to_dict()) == GateConfig(
        fairness_attributes=("sex",)
    )
