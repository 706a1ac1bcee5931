"""PSI for the 93 catalogue features: our vectorized PSI vs evidently's DataDriftPreset (PSI test).

Run: ``.venv/bin/python bench/psi.py [--rows 1000000] [--evidently-rows N] [--seed 0]``

Reference: ``--rows`` synthetic applications (no scenario); current: ``--rows`` applications of another
seed with the data-quality incident over the whole window (so some features drift). Both sides are
pandas DataFrames in memory before any clock starts; generation is not timed.

* ours: for every feature, fit the bins on the reference (deciles / categories, a missing bin), count
  both sides with :mod:`backend.monitoring.psi` and compute the PSI (what the drift service does);
* evidently 0.7: ``Report([DataDriftPreset(method="psi")]).run(current, reference)`` with a
  ``DataDefinition`` of the same numerical and categorical columns (its computation only; rendering
  the HTML would add more).

Target (issue 6): ours at least 10x faster at 1M vs 1M rows. ``--evidently-rows`` runs evidently (and
ours again, for a same-size ratio) on the first N rows of each side when 1M is too slow or too big
for the machine. A few features are printed three ways, to show the numbers agree once the binning
is the same: ours (reference deciles + missing bin), ours on evidently's bins (Sturges equal-width
bins over both samples for numeric columns with more than 20 values, one bin per value otherwise,
missing values dropped) and evidently's value. Timings depend on the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from backend.domain import features as cat
from backend.monitoring.psi import fit_spec, numeric_codes, psi_from_counts, spec_counts
from backend.training.synthetic import generate

TARGET_RATIO = 10.0
SHOWN = ("annual_income", "revolving_utilization", "num_inquiries_6m", "credit_score", "loan_purpose",
         "employment_verified")


def timed(label: str, fn: Callable[[], Any]) -> tuple[Any, tuple[float, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:58s} wall {wall:8.2f} s   cpu {cpu:8.2f} s", flush=True)
    return out, (wall, cpu)


def kinds() -> dict[str, str]:
    return {f.name: "categorical" if f.kind == "categorical" else "numeric" for f in cat.FEATURES}


def ours(reference: pd.DataFrame, current: pd.DataFrame, bins: int = 10) -> dict[str, float]:
    out = {}
    for col, kind in kinds().items():
        r, c = reference[col].to_numpy(), current[col].to_numpy()
        spec = fit_spec(r, kind, bins)
        out[col] = float(psi_from_counts(spec_counts(r, spec)[0], spec_counts(c, spec)[0]))
    return out


def evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    k = kinds()
    definition = DataDefinition(numerical_columns=[c for c, v in k.items() if v == "numeric"],
                                categorical_columns=[c for c, v in k.items() if v == "categorical"])
    snap = Report([DataDriftPreset(method="psi")]).run(Dataset.from_pandas(current[list(k)], data_definition=definition),
                                                       Dataset.from_pandas(reference[list(k)], data_definition=definition))
    out = {}
    for m in snap.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            out[cfg["column"]] = float(m["value"])
    return out


def _evidently_shares(counts: np.ndarray) -> np.ndarray:
    """Evidently's empty-bin rule: 1e-4, or the smallest non-empty share / 1e6 when that is <= 1e-4."""
    p = counts / counts.sum()
    smallest = p[p > 0].min()
    return np.where(p == 0, smallest / 1e6 if smallest <= 1e-4 else 1e-4, p)


def ours_on_evidently_bins(r: pd.Series, c: pd.Series, kind: str) -> float:
    """Our counting on the bins evidently's PSI test builds (missing values dropped first, as it does),
    with its empty-bin rule: the same number as evidently's when the binning is the same."""
    r, c = r.dropna(), c.dropna()
    if kind == "numeric" and r.nunique() > 20:
        rv, cv = r.to_numpy(float), c.to_numpy(float)
        edges = np.histogram_bin_edges(np.r_[rv, cv], bins="sturges")[1:-1]
        rc, cc = (np.bincount(numeric_codes(v, edges), minlength=edges.size + 2)[:-1] for v in (rv, cv))
    else:
        keys = sorted(set(r.unique()) | set(c.unique()), key=str)
        rc = r.value_counts().reindex(keys, fill_value=0).to_numpy()
        cc = c.value_counts().reindex(keys, fill_value=0).to_numpy()
    rp, cp = _evidently_shares(rc), _evidently_shares(cc)
    return float(np.sum((rp - cp) * np.log(rp / cp)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side for our PSI")
    parser.add_argument("--evidently-rows", type=int, default=None, help="rows per side for evidently (default --rows)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ev_rows = min(args.evidently_rows or args.rows, args.rows)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{len(cat.FEATURES)} features, {args.rows:,} reference vs {args.rows:,} current rows")
    start = pd.Timestamp("2025-08-01", tz="UTC")
    reference, _ = timed(f"generate the reference ({args.rows:,} rows, not part of the ratio)",
                         lambda: generate(args.rows, seed=args.seed, start=start, months=6))
    current, _ = timed(f"generate the current ({args.rows:,} rows, incident all along)",
                       lambda: generate(args.rows, seed=args.seed + 1, start=start, months=6,
                                        scenario="data_quality_incident", scenario_start=start,
                                        scenario_end=start + pd.DateOffset(months=6)))
    gc.collect()
    mine, t_ours = timed(f"ours: PSI of all {len(cat.FEATURES)} features, {args.rows:,} vs {args.rows:,}",
                         lambda: ours(reference, current))
    ref_ev, cur_ev = reference.iloc[:ev_rows], current.iloc[:ev_rows]
    t_ours_ev = t_ours
    if ev_rows < args.rows:
        mine_small, t_ours_ev = timed(f"ours at evidently's size ({ev_rows:,} vs {ev_rows:,})",
                                      lambda: ours(ref_ev, cur_ev))
    else:
        mine_small = mine
    gc.collect()
    theirs, t_ev = timed(f"evidently DataDriftPreset(method='psi'), {ev_rows:,} vs {ev_rows:,}",
                         lambda: evidently(ref_ev, cur_ev))
    ratio, cpu_ratio = t_ev[0] / t_ours_ev[0], t_ev[1] / t_ours_ev[1]
    print(f"\nratio at {ev_rows:,} rows per side: evidently {t_ev[0]:.2f} s / ours {t_ours_ev[0]:.2f} s = "
          f"{ratio:.1f}x wall ({cpu_ratio:.1f}x in CPU time); "
          f"{'meets' if ratio >= TARGET_RATIO else 'misses'} the {TARGET_RATIO:.0f}x target")
    if ev_rows < args.rows:
        print(f"ours at {args.rows:,} rows per side: {t_ours[0]:.2f} s wall, {t_ours[1]:.2f} s CPU "
              "(evidently not run at that size)")
    k = kinds()
    print(f"\n{'feature':26s} {'ours':>10s} {'ours, evidently bins':>21s} {'evidently':>10s}   (n = {ev_rows:,})")
    for col in SHOWN:
        same = ours_on_evidently_bins(ref_ev[col], cur_ev[col], k[col])
        print(f"{col:26s} {mine_small[col]:10.4f} {same:21.4f} {theirs.get(col, float('nan')):10.4f}")
    worst = max(abs(ours_on_evidently_bins(ref_ev[c], cur_ev[c], k[c]) - theirs[c]) for c in theirs)
    print(f"largest |ours on evidently's bins - evidently| over {len(theirs)} features: {worst:.2e}")
    print("(ours and evidently differ where the bins differ: deciles of the reference plus a missing bin vs "
          "equal-width bins over both samples with missing values dropped)")


if __name__ == "__main__":
    main()
