"""The fairness refresh with its group figures from fairlearn's MetricFrame (before) and from one grouped sum (now).

``FairnessService.refresh(force=True)`` on a **copy** of a data dir's database, every month read again (the row
memory emptied), twice per path: the baseline swaps in ``shares`` as it was (one stacked ``MetricFrame`` of
``selection_rate`` with cell weights), the other runs the code as it is. The stored rates of both are compared
(they must agree to ~1e-12). Prints seconds per refresh, the ratio and the machine's load.

    PYTHONPATH=. .venv/bin/python bench/fairness_shares.py --data-dir var --registry-dir models [--repeat 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from book_copy import book_arguments, copied_services

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def shares_metricframe(parts: Sequence[Any], *, weight: str = "w") -> pd.DataFrame:
    """``backend.monitoring.fairness_metrics.shares`` before this change: the rates from one stacked
    ``MetricFrame`` of ``selection_rate`` with cell weights (the stacking and the table are shared)."""
    from fairlearn.metrics import MetricFrame, selection_rate

    from backend.monitoring.fairness_metrics import SHARE_COLUMNS, share_table, stacked

    long = stacked(parts, weight=weight)
    if long is None:
        return pd.DataFrame(columns=SHARE_COLUMNS)
    long = long.groupby(["stage", "sf", "y"], sort=False)["w"].sum().reset_index()
    y, w = long["y"].to_numpy(), long["w"].to_numpy()
    mf = MetricFrame(metrics={"rate": selection_rate}, y_true=y, y_pred=y, sensitive_features=long[["sf"]],
                     control_features=long[["stage"]], sample_params={"rate": {"sample_weight": w}})
    counts = long.assign(yw=y * w).groupby(["stage", "sf"], sort=False)[["w", "yw"]].sum()
    return share_table(counts.join(mf.by_group["rate"], how="inner"), parts)


def rates(svc: Any) -> list[float]:
    from backend.monitoring.snapshot_queries import SnapshotRepository

    with svc.db.read() as s:
        snaps = sorted(SnapshotRepository(s).list("fairness"), key=lambda x: (x.granularity, x.period))
    return [float(v) for x in snaps for t in x.payload.get("rates", {}).get("rate", []) for v in [t] if v == v]


def run(svc: Any, repeat: int) -> tuple[float, list[float]]:
    from backend.monitoring.book_state import RowMemo

    src, took = svc.alerts.sources.get("fairness"), []
    for _ in range(repeat):
        src._rows = RowMemo()  # every month read again, as after a change to the book
        t0 = time.perf_counter()
        src.refresh(force=True)
        took.append(time.perf_counter() - t0)
    return statistics.median(took), rates(svc)


def main() -> None:
    ap = argparse.ArgumentParser()
    book_arguments(ap)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with copied_services(a.data_dir, a.registry_dir) as svc:
        from unittest import mock

        with mock.patch("backend.monitoring.fairness.shares", shares_metricframe):
            before, old = run(svc, a.repeat)
        after, new = run(svc, a.repeat)
        diff = max((abs(x - y) for x, y in zip(old, new, strict=True)), default=0.0)
        print(f"fairness refresh, every period recomputed (median of {a.repeat}):")
        print(f"  before (MetricFrame)   {before:6.2f} s")
        print(f"  now (grouped sum)      {after:6.2f} s   ratio {before / after:.1f}x")
        print(f"  {len(new):,} stored rates compared: largest difference {diff:.2e}")


if __name__ == "__main__":
    main()
