"""The fits of a training run (each model's cross-validation folds and its final fit), in this process or in
worker processes: they are independent and seeded, so the models are the same wherever they ran."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from backend.models import auc

FitKey = tuple[str, int | None]  # (model, fold); fold None: the final fit on the whole training split
PARALLEL_FIT_ROWS = 5_000  # training rows from which the fits run in worker processes (below: their start costs more)


def _fit_one(pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, tr: np.ndarray | None,
             va: np.ndarray | None) -> tuple[Any, float]:
    """One fit of the training run, in this process or a worker: on the rows ``tr`` (all when None), returning the
    out-of-fold scores of ``va`` (a cross-validation fold) or the fitted pipeline (``va`` None), and its seconds."""
    t = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        model = clone(pipe).fit(X if tr is None else X.iloc[tr], y if tr is None else y[tr])
        out = model if va is None else model.predict_proba(X.iloc[va])[:, 1]
    return out, time.perf_counter() - t


@dataclass(frozen=True, eq=False)
class _Fit:
    model: str
    fold: int | None  # None: the final fit on the whole training split
    tr: np.ndarray | None
    va: np.ndarray | None

    @property
    def key(self) -> FitKey:
        return self.model, self.fold

    def label(self, folds: int) -> str:
        return f"fit {self.model}" if self.fold is None else f"cv {self.model} fold {self.fold + 1}/{folds}"


def _fit_workers(workers: int | None, rows: int, tasks: int) -> int:
    """``workers`` as given, or (None) the machine's cores when the training split has at least
    :data:`PARALLEL_FIT_ROWS` rows; never more than there are fits."""
    if workers is None:
        workers = (os.cpu_count() or 1) if rows >= PARALLEL_FIT_ROWS else 1
    return max(1, min(int(workers), tasks))


def run_fits(pipes: dict[str, Pipeline], X: pd.DataFrame, y: np.ndarray, folds: list, workers: int | None,
             tick: Callable[[str], None]) -> tuple[dict[FitKey, Any], dict[FitKey, float], int]:
    """Every fit of a training run (each model's cross-validation folds and its final fit): they are independent
    and seeded, so worker processes give the same models and scores as one process, in about 1/workers of the
    time on the demo's 40,000 rows (one fit after another left the second core idle). In the workers the models go
    in ``pipes`` order (the primary, the longest, first), each one's final fit before its folds; the progress
    ticks as each fit finishes."""
    tasks = [_Fit(name, None, None, None) for name in pipes]
    tasks += [_Fit(name, k, tr, va) for name in pipes for k, (tr, va) in enumerate(folds)]
    n = _fit_workers(workers, len(y), len(tasks))
    out: dict[FitKey, Any] = {}
    secs: dict[FitKey, float] = {}
    if n == 1:  # the folds of each model, then the final fits
        for task in sorted(tasks, key=lambda t: (t.fold is None, list(pipes).index(t.model), t.fold or 0)):
            out[task.key], secs[task.key] = _fit_one(pipes[task.model], X, y, task.tr, task.va)
            tick(task.label(len(folds)))
        return out, secs, n
    from joblib.externals.loky import get_reusable_executor

    # loky restarts a worker whose memory grew by 300 MB since it started (its leak guard; a large training frame
    # does that) and warns when fits were queued for it: they run on the new worker, nothing is lost or refitted
    warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor",
                            category=UserWarning)
    executor = get_reusable_executor(max_workers=n)  # kept for the next run in this process (the demo's retrain)
    order = sorted(tasks, key=lambda t: (list(pipes).index(t.model), t.fold is not None))  # final fits first
    futures = {executor.submit(_fit_one, pipes[t.model], X, y, t.tr, t.va): t for t in order}
    for fut in as_completed(futures):
        task = futures[fut]
        out[task.key], secs[task.key] = fut.result()
        tick(task.label(len(folds)))
    return out, secs, n


def cv_scores(scores: dict[FitKey, Any], name: str, y: np.ndarray,
              folds: list) -> tuple[np.ndarray, dict[str, Any]]:
    """Out-of-fold scores and the per-fold AUCs of model ``name``."""
    oof = np.zeros(len(y))
    aucs = []
    for k, (_, va) in enumerate(folds):
        oof[va] = scores[(name, k)]
        aucs.append(auc(y[va], oof[va]))
    return oof, {
        "auc_mean": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "folds": [float(a) for a in aucs],
    }
