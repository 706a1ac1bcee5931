"""Train the primary (EasyEnsemble) and fallback (balanced random forest) models.

``train`` does, on a ``Dataset``: a stratified held-out test split; stratified k-fold
cross-validation on the training part (AUC mean/std for the primary, the fallback and a plain
logistic-regression baseline); calibration of both ensembles' raw scores on their out-of-fold
predictions (the balanced bags push raw scores towards 0.5); the final fits; compilation to
arrays with a fidelity check against scikit-learn on every held-out row; and the evaluation
report on the held-out rows. ``train_and_register`` adds loading and registration for the CLI.

Progress is reported as ``progress(step_name, done, total)`` after each step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.model_selection import StratifiedKFold, train_test_split
from threadpoolctl import threadpool_limits

from backend.models import (
    POLICY_CUTOFF,
    apply_calibration,
    brier,
    calibration_curve,
    compile_estimator,
    evaluate,
    model_metrics,
)
from backend.platform.ports import ProgressCallback
from backend.training.dataset import Dataset, DatasetError
from backend.training.fits import cv_scores, run_fits
from backend.training.recipes import (
    FOREST_TREES,
    baseline_pipeline,
    fallback_pipeline,
    fit_calibration,
    primary_pipeline,
)

FIDELITY_TOLERANCE = 1e-9  # max |compiled - scikit-learn| probability allowed on the held-out rows
BACKGROUND_ROWS = 500  # training rows kept as the attribution background
MSG_NO_TARGET = "no --target given and the data is not in the synthetic generator's format"
MSG_FOLDS = ("target column {target!r}: the training split has only {rarest} row(s) of its rarer class, fewer than "
             "the {folds} cross-validation folds; give more rows of that class or fewer folds")
MSG_UNFAITHFUL = "compiled {model} differs from scikit-learn by {diff:.3g} (> {tol:g}) on the held-out rows"


@dataclass
class TrainResult:
    """Everything the registry stores for one trained model version."""

    dataset: Dataset
    primary: Pipeline
    fallback: Pipeline
    baseline: Pipeline
    compiled_primary: Any
    compiled_fallback: Any
    encoder_spec: dict[str, Any]
    calibration: dict[str, dict[str, Any]]
    holdout: pd.DataFrame  # raw features + protected + target (+ extras) of the held-out rows
    report: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return self.dataset.features


def train(
    dataset: Dataset,
    *,
    seed: int = 0,
    test_size: float = 0.2,
    cv_folds: int = 5,
    n_estimators: int = 10,
    n_boost: int = 50,
    n_trees: int = FOREST_TREES,
    calibration: str = "platt",
    n_jobs: int = 1,
    cutoff: float = POLICY_CUTOFF,
    progress: ProgressCallback | None = None,
    primary_options: dict[str, Any] | None = None,
    workers: int | None = None,
) -> TrainResult:
    """Train, cross-validate, calibrate, compile and evaluate both models on ``dataset``.

    ``workers``: processes for the fits (each model's folds and final fit; None: the machine's cores from
    :data:`backend.training.fits.PARALLEL_FIT_ROWS` training rows, else 1); the models are the same whatever the number.
    ``n_jobs`` is passed to the ensembles for fitting (1 is fastest on small data); BLAS is kept
    single-threaded (multi-threaded BLAS made the logistic baseline ~10x slower on 2 busy cores).
    ``primary_options``: ``learning_rate`` and ``monotone`` of :func:`primary_pipeline` (the
    less-discriminatory-alternatives search, :mod:`backend.training.alternatives`); recorded in the params.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(
            dataset,
            seed=seed,
            test_size=test_size,
            cv_folds=cv_folds,
            n_estimators=n_estimators,
            n_boost=n_boost,
            n_trees=n_trees,
            calibration=calibration,
            n_jobs=n_jobs,
            cutoff=cutoff,
            progress=progress,
            primary_options=dict(primary_options or {}),
            workers=workers,
        )


def split_indices(y: np.ndarray, *, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The stratified train/held-out split of every training run: the same rows for the same ``y`` and seed,
    whatever the features (so alternatives are evaluated on the same held-out rows)."""
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    return np.asarray(idx_train), np.asarray(idx_test)


def _train(
    dataset: Dataset,
    *,
    seed: int,
    test_size: float,
    cv_folds: int,
    n_estimators: int,
    n_boost: int,
    n_trees: int,
    calibration: str,
    n_jobs: int,
    cutoff: float,
    progress: ProgressCallback | None,
    primary_options: dict[str, Any],
    workers: int | None,
) -> TrainResult:
    t_start = time.perf_counter()
    total, done = 3 * cv_folds + 7, 0  # cv fits, 3 final fits, calibrate, compile, evaluate, done

    def tick(step: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(step, done, total)

    features, kinds = dataset.features, dataset.kinds
    idx_train, idx_test = split_indices(dataset.y, test_size=test_size, seed=seed)
    X_tr, y_tr = dataset.X.iloc[idx_train].reset_index(drop=True), dataset.y[idx_train]
    rarest = int(min(y_tr.sum(), len(y_tr) - y_tr.sum()))
    if rarest < cv_folds:  # stop before any fit, in one line (StratifiedKFold would fail later)
        raise DatasetError(MSG_FOLDS.format(rarest=rarest, folds=cv_folds, target=dataset.target))
    X_te, y_te = dataset.X.iloc[idx_test].reset_index(drop=True), dataset.y[idx_test]
    pipes = {
        "primary": primary_pipeline(
            features, kinds, n_estimators=n_estimators, n_boost=n_boost, seed=seed, n_jobs=n_jobs,
            **primary_options,
        ),
        "fallback": fallback_pipeline(features, kinds, n_trees=n_trees, seed=seed, n_jobs=n_jobs),
        "baseline": baseline_pipeline(features, kinds),
    }
    folds = list(StratifiedKFold(cv_folds, shuffle=True, random_state=seed).split(X_tr, y_tr))
    results, secs, used = run_fits(pipes, X_tr, y_tr, folds, workers, tick)
    timings: dict[str, float] = {"fit_workers": used}  # the seconds below are each fit's own, wherever it ran
    oof, cv = {}, {}
    for name in pipes:
        oof[name], cv[name] = cv_scores(results, name, y_tr, folds)
        timings[f"cv_{name}_s"] = sum(secs[(name, k)] for k in range(len(folds)))
    fitted = {}
    for name in pipes:
        fitted[name] = results[(name, None)]
        timings[f"fit_{name}_s"] = secs[(name, None)]
        if "n_jobs" in fitted[name].named_steps["model"].get_params():
            fitted[name].named_steps["model"].set_params(n_jobs=1)  # single-row reference scoring
    calib = {m: fit_calibration(oof[m], y_tr, method=calibration) for m in ("primary", "fallback")}
    tick("calibrate")

    encoder = fitted["primary"].named_steps["encode"]
    if encoder.to_dict() != fitted["fallback"].named_steps["encode"].to_dict():
        raise RuntimeError("primary and fallback encoders differ; they must share one spec")
    rng = np.random.default_rng(seed)
    background = encoder.transform(
        X_tr.iloc[np.sort(rng.choice(len(X_tr), min(BACKGROUND_ROWS, len(X_tr)), replace=False))]
    )
    M_te = encoder.transform_records(X_te)
    compiled, scores, fidelity = {}, {}, {}
    for name in ("primary", "fallback"):
        compiled[name] = compile_estimator(fitted[name].named_steps["model"])
        compiled[name].set_background(background)
        scores[name] = fitted[name].predict_proba(X_te)[:, 1]
        diff = float(np.max(np.abs(compiled[name].predict_proba(M_te) - scores[name])))
        if diff > FIDELITY_TOLERANCE:
            raise RuntimeError(MSG_UNFAITHFUL.format(model=name, diff=diff, tol=FIDELITY_TOLERANCE))
        fidelity[name] = diff
    tick("compile")

    protected = dataset.protected.iloc[idx_test].reset_index(drop=True)
    pd_te = {m: apply_calibration(calib[m], scores[m]) for m in ("primary", "fallback")}
    ev = {
        m: evaluate(y_te, scores[m], pd_te[m], protected=protected, cutoff=cutoff, seed=seed)
        for m in ("primary", "fallback")
    }
    base_score = fitted["baseline"].predict_proba(X_te)[:, 1]
    ev["baseline"] = model_metrics(y_te, base_score, cutoff=cutoff)
    calibration_report = {
        m: {
            "method": calib[m]["method"],
            "fitted_on": f"out-of-fold predictions ({cv_folds}-fold)",
            "brier_before": brier(y_te, scores[m]),
            "brier_after": brier(y_te, pd_te[m]),
            "curve_before": calibration_curve(y_te, scores[m]),
            "curve_after": calibration_curve(y_te, pd_te[m]),
        }
        for m in ("primary", "fallback")
    }
    tick("evaluate")

    holdout = pd.concat([X_te, protected, pd.DataFrame({dataset.target: y_te})], axis=1)
    if dataset.extras is not None:
        holdout = pd.concat([holdout, dataset.extras.iloc[idx_test].reset_index(drop=True)], axis=1)
    holdout = holdout.loc[:, ~holdout.columns.duplicated()]
    timings["total_s"] = time.perf_counter() - t_start
    params = {
        "seed": seed,
        "test_size": test_size,
        "cv_folds": cv_folds,
        "n_estimators": n_estimators,
        "n_boost": n_boost,
        "n_trees": n_trees,
        "calibration": calibration,
        "cutoff": cutoff,
        **({"primary_options": primary_options} if primary_options else {}),
    }
    cvp = cv["primary"]
    summary = {k: ev["primary"][k] for k in ("auc", "gini", "ks", "balanced_accuracy", "brier_raw", "brier")}
    summary.update(
        cv_auc_mean=cvp["auc_mean"],
        cv_auc_std=cvp["auc_std"],
        fallback_auc=ev["fallback"]["auc"],
        baseline_auc=ev["baseline"]["auc"],
        baseline_cv_auc_mean=cv["baseline"]["auc_mean"],
    )
    report = {
        "summary": summary,
        "dataset": dataset.summary(),
        "split": {
            "train_rows": len(idx_train),
            "test_rows": len(idx_test),
            "test_size": test_size,
            "stratified": True,
            "seed": seed,
        },
        "params": params,
        "cv": cv,
        "test": ev,
        "calibration": calibration_report,
        "fidelity": {"max_abs_diff": fidelity, "tolerance": FIDELITY_TOLERANCE, "rows": len(idx_test)},
        "timings": timings,
    }
    tick("done")
    return TrainResult(
        dataset=dataset,
        primary=fitted["primary"],
        fallback=fitted["fallback"],
        baseline=fitted["baseline"],
        compiled_primary=compiled["primary"],
        compiled_fallback=compiled["fallback"],
        encoder_spec=encoder.to_dict(),
        calibration=calib,
        holdout=holdout,
        report=report,
        params=params,
    )


def train_and_register(
    data: str | Path | pd.DataFrame | None = None,
    *,
    target: str | None = None,
    positive: Any = None,
    protected: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    reasons: str | Path | None = None,
    schema: str | Path | None = None,
    registry_root: str | Path = "models",
    name: str = "creditrisk",
    rows: int = 20_000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    gates: Any = None,
    registered_at: Any = None,
    registry: Any = None,
    search_alternatives: bool = False,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Load data (a file, a DataFrame, a YAML schema, or the synthetic generator when ``data`` and
    ``schema`` are None), train, register as a candidate and return the JSON report with the
    new ``version``. ``search_alternatives``: then search for a less discriminatory alternative
    (:mod:`backend.training.alternatives`) and register the chosen one as the challenger; the report gains
    ``alternatives`` (the search record, with ``version`` the registered alternative or None).

    A file or DataFrame holding the synthetic generator's columns with no ``target`` given is read
    as synthetic data (catalog features, ``PROTECTED`` attributes, ``pd_true`` kept out). ``registry``: where
    to register (``services.models.registry()``: the local folder or MLflow); default the folder ``registry_root``.
    """
    from backend.domain import FEATURE_NAMES, TARGET
    from backend.models import Registry
    from backend.training.dataset import from_schema, from_synthetic, load_dataset

    if schema is not None:
        dataset = from_schema(schema, data)
    elif data is None:
        from backend.training.synthetic import generate

        dataset = from_synthetic(generate(rows, seed=seed))
    elif target is None:
        from backend.training.dataset import DatasetError, read_table
        from backend.training.synthetic import read_dataset

        frame = data if isinstance(data, pd.DataFrame) else read_table(data)[0]
        if not set(FEATURE_NAMES) | {TARGET} <= set(frame.columns):
            raise DatasetError(MSG_NO_TARGET)
        dataset = from_synthetic(frame if isinstance(data, pd.DataFrame) else read_dataset(data))
    else:
        dataset = load_dataset(data, target=target, positive=positive, protected=protected, exclude=exclude,
                               reasons=reasons)
    result = train(dataset, seed=seed, progress=progress, **train_kwargs)
    registry = registry if registry is not None else Registry(registry_root, name=name)  # the services' registry
    version = registry.register(result, gates=gates, at=registered_at)  # at: the caller's clock (simulator)
    report = registry.report(version)
    if search_alternatives:
        from backend.training.alternatives import register_chosen, search

        record = search(dataset, result, gate_config=gates)
        alt = register_chosen(registry, dataset, result, record, gates=gates, at=registered_at, progress=progress,
                              lineage={"base_version": version})
        report["alternatives"] = {**record, "version": alt,
                                  "report": registry.report(alt) if alt else None}
    return report
