"""Training time of the primary (and fallback) on synthetic data.

Run: ``.venv/bin/python bench/training.py [--rows 100000] [--seed 0] [--full]``

Prints wall and CPU seconds to encode the rows, to fit the primary pipeline (FeatureEncoder +
EasyEnsemble of 10 AdaBoost bags x 50 stumps) on all rows, and to fit the fallback (balanced
random forest); target: the primary under 2 minutes on 100k rows. ``--full`` also times the
whole ``train()`` (5-fold CV of three models, calibration, compilation, evaluation). Timings
depend on the machine and its load (``os.getloadavg`` is printed); nothing here asserts them.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from threadpoolctl import threadpool_limits

from backend.models.encoder import FeatureEncoder
from backend.training.dataset import from_synthetic
from backend.training.recipes import fallback_pipeline, primary_pipeline
from backend.training.synthetic import generate
from backend.training.train import train

TARGET_PRIMARY_S = 120.0
TARGET_ROWS = 100_000


def timed(label: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:52s} wall {wall:8.1f} s   cpu {cpu:8.1f} s")
    return out, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="also time the whole train()")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    frame, _ = timed(f"generate {args.rows:,} synthetic rows", lambda: generate(args.rows, seed=args.seed))
    data = from_synthetic(frame)
    print(f"rows {len(data.y):,}, features {len(data.features)}, default rate {data.y.mean():.3%}")
    timed("encode (FeatureEncoder fit + transform)",
          lambda: FeatureEncoder(columns=data.features, kinds=data.kinds).fit(data.X, data.y).transform(data.X))  # fmt: skip
    with threadpool_limits(limits=1, user_api="blas"):
        primary = primary_pipeline(data.features, data.kinds, seed=args.seed, n_jobs=args.n_jobs)
        _, t_primary = timed(
            "fit primary (EasyEnsemble 10 x AdaBoost 50 stumps)", lambda: primary.fit(data.X, data.y)
        )
        fallback = fallback_pipeline(data.features, data.kinds, seed=args.seed, n_jobs=args.n_jobs)
        timed("fit fallback (BalancedRandomForest 150 trees)", lambda: fallback.fit(data.X, data.y))
    if args.rows == TARGET_ROWS:
        verdict = "meets" if t_primary < TARGET_PRIMARY_S else "misses"
        print(f"primary on {args.rows:,} rows: {t_primary:.1f} s ({verdict} the < {TARGET_PRIMARY_S:.0f} s target; "
              f"ratio target/measured {TARGET_PRIMARY_S / t_primary:.2f})")  # fmt: skip
    else:
        print(f"primary on {args.rows:,} rows: {t_primary:.1f} s (the target is for {TARGET_ROWS:,} rows)")
    if args.full:
        result, _ = timed("full train() incl. 5-fold CV of 3 models", lambda: train(data, seed=args.seed))
        for key, value in result.report["timings"].items():
            print(f"  {key:20s} {value:8.1f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
