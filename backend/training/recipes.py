"""What is trained: the primary model (EasyEnsemble of AdaBoost stumps), the fallback (balanced random
forest), the logistic-regression baseline they are compared with, and the calibration of raw scores
into probabilities of default. :func:`backend.training.train.train` fits and checks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from imblearn.ensemble import BalancedRandomForestClassifier, EasyEnsembleClassifier
from imblearn.pipeline import Pipeline
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import AdaBoostClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from backend.models import PD_FLOOR, FeatureEncoder

FOREST_TREES = 150
FOREST_MIN_LEAF = 5
FOREST_MAX_DEPTH = 12


def primary_pipeline(
    features: Sequence[str],
    kinds: dict[str, str],
    *,
    n_estimators: int = 10,
    n_boost: int = 50,
    seed: int = 0,
    n_jobs: int = 1,
    learning_rate: float = 1.0,
    monotone: Sequence[int] | None = None,
) -> Pipeline:
    """Encoder + EasyEnsemble of ``n_estimators`` AdaBoost bags of ``n_boost`` stumps.

    ``learning_rate`` < 1 shrinks each stump's weight (regularisation); ``monotone`` (one of -1, 0, 1
    per feature, in ``features`` order) constrains each stump to raise the risk only with a higher encoded
    value (1), only with a lower one (-1), or leaves it free (0); the ensemble, a positively weighted sum
    of such stumps, is then monotone in each constrained feature. Both keep the compiled stump form.
    """
    stump = DecisionTreeClassifier(max_depth=1, monotonic_cst=list(monotone) if monotone is not None else None)
    model = EasyEnsembleClassifier(
        n_estimators=n_estimators,
        estimator=AdaBoostClassifier(estimator=stump, n_estimators=n_boost, learning_rate=learning_rate),
        sampling_strategy="auto",
        replacement=False,
        n_jobs=n_jobs,
        random_state=seed,
    )
    return Pipeline([("encode", FeatureEncoder(columns=list(features), kinds=kinds)), ("model", model)])


def fallback_pipeline(
    features: Sequence[str],
    kinds: dict[str, str],
    *,
    n_trees: int = FOREST_TREES,
    seed: int = 0,
    n_jobs: int = 1,
) -> Pipeline:
    """Encoder + balanced random forest (each tree on a balanced bootstrap sample)."""
    model = BalancedRandomForestClassifier(
        n_estimators=n_trees,
        min_samples_leaf=FOREST_MIN_LEAF,
        max_depth=FOREST_MAX_DEPTH,
        max_features="sqrt",
        sampling_strategy="all",
        replacement=True,
        bootstrap=False,
        n_jobs=n_jobs,
        random_state=seed,
    )
    return Pipeline([("encode", FeatureEncoder(columns=list(features), kinds=kinds)), ("model", model)])


def baseline_pipeline(features: Sequence[str], kinds: dict[str, str]) -> Pipeline:
    """Plain logistic regression: median imputation, standardised numbers, one-hot categories."""
    cat = [i for i, c in enumerate(features) if kinds[c] == "categorical"]
    num = [i for i, c in enumerate(features) if kinds[c] != "categorical"]
    prep = ColumnTransformer(
        [("num", StandardScaler(), num), ("cat", OneHotEncoder(handle_unknown="ignore"), cat)]
    )
    return Pipeline(
        [
            ("encode", FeatureEncoder(columns=list(features), kinds=kinds, missing="median")),
            ("prep", prep),
            ("model", LogisticRegression(max_iter=2000, class_weight="balanced")),
        ]
    )


def fit_calibration(raw: np.ndarray, y: np.ndarray, *, method: str = "platt") -> dict[str, Any]:
    """Map raw ensemble scores to probabilities of default; returns a JSON-able spec.

    ``isotonic``: monotone step fit, stored as its breakpoints ``x``/``y`` (applied by linear
    interpolation, clipped at the ends). ``platt``: logistic fit on the logit of the raw score,
    stored as ``a``/``b`` with ``pd = 1 / (1 + exp(-(a * logit(raw) + b)))``.
    """
    raw, y = np.asarray(raw, dtype=float), np.asarray(y, dtype=float)
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if method == "platt":
        z = np.log(np.clip(raw, PD_FLOOR, 1 - PD_FLOOR) / np.clip(1 - raw, PD_FLOOR, 1 - PD_FLOOR))
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(z[:, None], y)
        return {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    raise ValueError(f"unknown calibration method {method!r} (expected 'isotonic' or 'platt')")
