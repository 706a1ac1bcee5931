"""Evaluation metrics and the model's evaluation report.

Small pure functions (numpy in, floats or plain dicts out) and ``evaluate`` which assembles the
JSON-serialisable report stored in the manifest. Conventions: ``y`` is 1 for default (bad) and 0
for repaid; ``score`` is the model's raw probability of default (the balanced-bag ensemble score);
``pd`` is the calibrated probability of default. The policy cutoff classifies an application as
``high_risk`` (deny) when ``score >= cutoff``; "approved" means not high risk. For fairness,
"selection rate" is the share approved.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, roc_auc_score, roc_curve

POLICY_CUTOFF = 0.5  # raw balanced-ensemble score at or above which an application is high risk
CALIBRATION_BINS = 10
DI_THRESHOLD = 0.80  # four-fifths rule
MIN_GROUP_SIZE = 30  # smaller protected groups are reported but not used in DI/gaps
BOOTSTRAP_RESAMPLES = 500
BOOTSTRAP_ALPHA = 0.05
MAX_GROUPS = 10  # numeric protected columns with more distinct values are cut into quartile bands


def _num(x: Any) -> float | None:
    """Plain float for JSON (None for NaN/inf)."""
    v = float(x)
    return v if math.isfinite(v) else None


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve.

    Parameters
    ----------
    y : array of {0, 1}
        Outcomes (1 = default).
    score : array of float
        Higher means riskier.
    """
    return float(roc_auc_score(y, score))


def gini(y: np.ndarray, score: np.ndarray) -> float:
    """Gini coefficient (accuracy ratio), ``2 * AUC - 1``."""
    return 2.0 * auc(y, score) - 1.0


def ks(y: np.ndarray, score: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score CDFs of goods and bads."""
    fpr, tpr, _ = roc_curve(y, score)
    return float(np.max(tpr - fpr))


def balanced_accuracy(y: np.ndarray, score: np.ndarray, *, cutoff: float = POLICY_CUTOFF) -> float:
    """Mean of sensitivity and specificity of the decision ``score >= cutoff``."""
    return float(balanced_accuracy_score(y, (np.asarray(score) >= cutoff).astype(int)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Brier score: mean squared error of probabilities (lower is better)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return float(np.mean((p - y) ** 2))


def calibration_curve(y: np.ndarray, p: np.ndarray, *, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability curve on equal-count (quantile) bins of ``p``.

    Returns
    -------
    dict
        ``mean_predicted``, ``observed_rate``, ``count`` per non-empty bin, and ``ece`` (expected
        calibration error: count-weighted mean |observed - predicted|).
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, bins) if len(g)]
    pred = np.array([p[g].mean() for g in groups])
    obs = np.array([y[g].mean() for g in groups])
    count = np.array([len(g) for g in groups])
    ece = float(np.sum(count * np.abs(obs - pred)) / max(count.sum(), 1))
    return {
        "mean_predicted": [float(v) for v in pred],
        "observed_rate": [float(v) for v in obs],
        "count": [int(c) for c in count],
        "ece": ece,
    }


def confusion_at_cutoff(y: np.ndarray, score: np.ndarray, *, cutoff: float = POLICY_CUTOFF) -> dict[str, Any]:
    """Confusion matrix of ``high_risk = score >= cutoff`` against defaults (positive = default)."""
    y = np.asarray(y).astype(bool)
    hi = np.asarray(score) >= cutoff
    tp, fp = int(np.sum(hi & y)), int(np.sum(hi & ~y))
    fn, tn = int(np.sum(~hi & y)), int(np.sum(~hi & ~y))
    return {
        "cutoff": float(cutoff),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "approval_rate": float((tn + fn) / max(len(y), 1)),
        "default_rate_approved": _num(fn / (tn + fn)) if tn + fn else None,
    }


def as_groups(values: pd.Series | np.ndarray) -> np.ndarray:
    """Group labels for a protected attribute (strings; numeric columns banded into quartiles)."""
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(s.dtype) and s.nunique() > MAX_GROUPS:
        s = pd.qcut(s, 4, duplicates="drop").astype(str)
    return s.astype(object).where(s.notna(), "missing").astype(str).to_numpy()


def disparate_impact(approved: np.ndarray, groups: np.ndarray, eligible: list[str]) -> float | None:
    """Lowest / highest approval rate among ``eligible`` groups (None when undefined)."""
    rates = [approved[groups == g].mean() for g in eligible]
    if len(rates) < 2 or max(rates) == 0:
        return None
    return float(min(rates) / max(rates))


def bootstrap_di_ci(
    approved: np.ndarray,
    groups: np.ndarray,
    eligible: list[str],
    *,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    alpha: float = BOOTSTRAP_ALPHA,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of the disparate-impact ratio.

    Resampling the rows of the eligible groups with replacement is drawn exactly, and vectorized
    over all resamples at once: the rows landing in each group are multinomial, and the approvals
    among a group's resampled rows are binomial with that group's observed approval rate.
    """
    if len(eligible) < 2:
        return None
    masks = [groups == g for g in eligible]
    sizes = np.array([m.sum() for m in masks], dtype=np.int64)
    rates = np.array([approved[m].mean() for m in masks], dtype=float)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(int(sizes.sum()), sizes / sizes.sum(), size=n_resamples)
    approvals = rng.binomial(counts, rates)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = approvals / counts
        ratio = np.nanmin(boot, axis=1) / np.nanmax(boot, axis=1)
    ratio = ratio[np.isfinite(ratio)]
    if not len(ratio):
        return None
    return float(np.quantile(ratio, alpha / 2)), float(np.quantile(ratio, 1 - alpha / 2))


def fairness_by_attribute(
    y: np.ndarray,
    score: np.ndarray,
    groups: np.ndarray,
    *,
    cutoff: float = POLICY_CUTOFF,
    min_group_size: int = MIN_GROUP_SIZE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-group approval rate, TPR and FPR (fairlearn ``MetricFrame``), DI with a CI, and gaps.

    TPR is the share of defaulters flagged high risk; FPR the share of repayers flagged high risk
    (wrongly denied). Groups smaller than ``min_group_size`` are listed but left out of the
    disparate-impact ratio and the gaps.
    """
    from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate

    y = np.asarray(y).astype(int)
    high = (np.asarray(score) >= cutoff).astype(int)
    # MetricFrame on the (group, outcome, decision) cells weighted by their counts: the same
    # per-group figures as on the rows, without fairlearn's per-row overhead on large samples.
    cells = pd.DataFrame({"group": groups, "y": y, "high": high}).value_counts().reset_index()
    w = cells["count"].to_numpy(dtype=float)

    def approval_rate(yt: np.ndarray, yp: np.ndarray, sample_weight: np.ndarray) -> float:
        return float(np.sum(sample_weight * (1 - yp)) / np.sum(sample_weight))

    def n_rows(yt: np.ndarray, yp: np.ndarray, sample_weight: np.ndarray) -> float:
        return float(np.sum(sample_weight))

    metrics = {
        "approval_rate": approval_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "n": n_rows,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics=metrics,
            y_true=cells["y"].to_numpy(),
            y_pred=cells["high"].to_numpy(),
            sensitive_features=cells["group"].rename("group"),
            sample_params={m: {"sample_weight": w} for m in metrics},
        )
    table = frame.by_group
    per_group: dict[str, dict[str, Any]] = {
        str(g): {
            "n": int(round(row["n"])),
            "approval_rate": _num(row["approval_rate"]),
            "tpr": _num(row["tpr"]),
            "fpr": _num(row["fpr"]),
        }
        for g, row in table.iterrows()
    }
    eligible = [g for g, v in per_group.items() if v["n"] >= min_group_size]
    small = [g for g, v in per_group.items() if v["n"] < min_group_size]
    approved = 1 - high

    def gap(metric: str) -> float | None:
        vals = [per_group[g][metric] for g in eligible if per_group[g][metric] is not None]
        return float(max(vals) - min(vals)) if len(vals) >= 2 else None

    rates = {g: per_group[g]["approval_rate"] for g in eligible}
    ci = bootstrap_di_ci(approved, groups, eligible, n_resamples=n_resamples, seed=seed)
    return {
        "groups": per_group,
        "eligible_groups": eligible,
        "small_groups": small,
        "min_group_size": int(min_group_size),
        "disparate_impact": disparate_impact(approved, groups, eligible),
        "disparate_impact_ci": list(ci) if ci else None,
        "least_approved_group": min(rates, key=rates.__getitem__) if rates else None,
        "most_approved_group": max(rates, key=rates.__getitem__) if rates else None,
        "tpr_gap": gap("tpr"),
        "fpr_gap": gap("fpr"),
    }


def model_metrics(
    y: np.ndarray,
    score: np.ndarray,
    pd_: np.ndarray | None = None,
    *,
    cutoff: float = POLICY_CUTOFF,
    bins: int = CALIBRATION_BINS,
) -> dict[str, Any]:
    """Discrimination, accuracy at the cutoff, and calibration of one model on one sample."""
    out: dict[str, Any] = {
        "auc": auc(y, score),
        "gini": gini(y, score),
        "ks": ks(y, score),
        "balanced_accuracy": balanced_accuracy(y, score, cutoff=cutoff),
        "confusion": confusion_at_cutoff(y, score, cutoff=cutoff),
        "brier_raw": brier(y, score),
        "calibration_raw": calibration_curve(y, score, bins=bins),
    }
    if pd_ is not None:
        out["brier"] = brier(y, pd_)
        out["calibration"] = calibration_curve(y, pd_, bins=bins)
        out["auc_calibrated"] = auc(y, pd_)
    return out


def evaluate(
    y: np.ndarray,
    score: np.ndarray,
    pd_: np.ndarray | None = None,
    *,
    protected: pd.DataFrame | Mapping[str, Any] | None = None,
    cutoff: float = POLICY_CUTOFF,
    bins: int = CALIBRATION_BINS,
    min_group_size: int = MIN_GROUP_SIZE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Full evaluation report of one model on a held-out sample (JSON-serialisable).

    Parameters
    ----------
    y : array of {0, 1}
        Held-out outcomes.
    score : array of float
        Raw model probability of default; the policy cutoff applies to it.
    pd_ : array of float, optional
        Calibrated probability of default (Brier and calibration curve before/after).
    protected : DataFrame, optional
        Protected attributes row-aligned with ``y``; one fairness block per column.
    """
    y = np.asarray(y).astype(int)
    score = np.asarray(score, dtype=float)
    report = {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "positive_rate": float(y.mean()),
        **model_metrics(y, score, pd_, cutoff=cutoff, bins=bins),
        "fairness": {},
    }
    if protected is not None:
        frame = pd.DataFrame(protected).reset_index(drop=True)
        for col in frame.columns:
            report["fairness"][str(col)] = fairness_by_attribute(
                y,
                score,
                as_groups(frame[col]),
                cutoff=cutoff,
                min_group_size=min_group_size,
                n_resamples=n_resamples,
                seed=seed,
            )
    return report
