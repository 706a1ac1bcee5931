"""A lender's file of N rows through the training path (issue 19: "1M rows: it trains").

Run: ``.venv/bin/python bench/lender_file.py [--rows 1000000] [--train-rows 200000] [--folds 2]``

A generated mortgage-like file (numeric ratios, yes/no flags with missing values, a categorical, an ISO
date, a row id, a yes/no target at ~12 %) is written as Parquet, then timed in one run:

- ``pandas.read_parquet`` alone (the baseline) vs ``load_dataset`` (kinds, drops, target), as a ratio;
- the feature encoder's fit and transform on every row;
- ``train`` (primary, fallback, logistic baseline, CV, calibration, compilation, fidelity) on
  ``--train-rows`` rows of the same file with the production ensembles and ``--folds`` folds;
- ``creditrisk score``'s column plan and row conversion on 100,000 rows of the file.

Prints seconds and ratios; nothing is asserted (figures go to the README with this command).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from backend.models import FeatureEncoder
from backend.training.dataset import load_dataset
from backend.training.train import train


def lender_file(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dti, lvr = rng.uniform(0.05, 0.7, n), rng.uniform(0.2, 1.1, n)
    ccs = rng.integers(1, 7, n).astype(float)
    pbcr = rng.random(n) < 0.08
    z = 3 * dti + 2 * lvr + 0.4 * ccs + 1.5 * pbcr - 6.0
    deny = rng.random(n) < 1 / (1 + np.exp(-z))
    ccs[rng.random(n) < 0.02] = np.nan
    flag = np.where(pbcr, "yes", "no").astype(object)
    flag[rng.random(n) < 0.01] = None
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    return pd.DataFrame({"loan_id": np.arange(n) + 1_000_000, "application_date": day.strftime("%Y-%m-%d"),
                         "dir": dti.round(3), "lvr": lvr.round(3), "ccs": ccs, "pbcr": flag,
                         "self": rng.choice(["yes", "no"], n, p=[0.1, 0.9]),
                         "purpose": rng.choice(["purchase", "refinance", "home_improvement", "other"], n),
                         "uria": rng.uniform(1.8, 10.6, n).round(1), "race": rng.choice(["a", "b", "c"], n),
                         "deny": np.where(deny, "yes", "no")})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--train-rows", type=int, default=200_000)
    ap.add_argument("--folds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lender.parquet"
        lender_file(args.rows).to_parquet(path, index=False)
        t = time.perf_counter()
        pd.read_parquet(path)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        ds = load_dataset(path, target="deny", protected="race")
        load_s = time.perf_counter() - t
        print(f"{args.rows:,} rows: read_parquet {read_s:.2f} s; load_dataset {load_s:.2f} s "
              f"({load_s / read_s:.1f}x the read); features {ds.kinds}; dropped {ds.dropped}; "
              f"positive rate {ds.y.mean():.3f}")
        t = time.perf_counter()
        enc = FeatureEncoder(columns=ds.features, kinds=ds.kinds).fit(ds.X, ds.y)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        enc.transform(ds.X)
        print(f"encoder fit {fit_s:.2f} s, transform {time.perf_counter() - t:.2f} s on {args.rows:,} rows")
        sub = load_dataset(pd.read_parquet(path).head(args.train_rows), target="deny", protected="race")
        t = time.perf_counter()
        result = train(sub, cv_folds=args.folds)
        m = result.report["summary"]
        print(f"train on {args.train_rows:,} rows ({args.folds} folds, production ensembles): "
              f"{time.perf_counter() - t:.1f} s; held-out AUC {m['auc']:.3f} vs logistic baseline "
              f"{m['baseline_auc']:.3f}; timings {({k: round(v, 1) for k, v in result.report['timings'].items()})}")
        from types import SimpleNamespace

        from backend.scoring.batch import model_rows, plan_columns

        serving = SimpleNamespace(columns=result.encoder_spec["columns"], kinds=result.encoder_spec["kinds"],
                                  categories=result.encoder_spec["categories"],
                                  manifest={"target": "deny", "protected": ["race"],
                                            "data": {"dropped": sub.dropped}})
        head = pd.read_parquet(path).head(100_000)
        t = time.perf_counter()
        rows = model_rows(head, serving, plan_columns(list(head.columns), serving))
        print(f"score file plan + conversion: {len(rows):,} rows in {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
