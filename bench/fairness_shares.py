"""The fairness refresh with its group figures from fairlearn's MetricFrame (before) and from one grouped sum (now).

``FairnessService.refresh(force=True)`` on a **copy** of a data dir's database, every month read again (the row
memory emptied), twice per path: the baseline swaps in ``shares`` as it was (one stacked ``MetricFrame`` of
``selection_rate`` with cell weights), the other runs the code as it is. The stored rates of both are compared
(they must agree to ~1e-12). Prints seconds per refresh, the ratio and the machine's load.

    PYTHONPATH=. .venv/bin/python bench/fairness_shares.py --data-dir var --registry-dir models [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from book_copy import copied_book

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def shares_metricframe(parts: Sequence[Any], *, weight: str = "w") -> pd.DataFrame:
    """``backend.monitoring.fairness_metrics.shares`` before this change (the MetricFrame path), verbatim."""
    from fairlearn.metrics import MetricFrame, selection_rate

    from backend.monitoring.fairness_metrics import _check, attribute_columns, group_labels

    cols = ["attribute", "group", "stage", "n", "favourable", "rate"]
    frames = []
    for key, name, cells, flag in parts:
        _check(cells, [*attribute_columns(key), flag, weight])
        cells = cells[cells[weight] > 0]
        if len(cells):
            frames.append(pd.DataFrame({"sf": key + "=" + group_labels(cells, key), "stage": f"{key}|{name}",
                                        "y": cells[flag].to_numpy(dtype=np.int8),
                                        "w": cells[weight].to_numpy(dtype=float)}))
    if not frames:
        return pd.DataFrame(columns=cols)
    long = pd.concat(frames, ignore_index=True).groupby(["stage", "sf", "y"], sort=False)["w"].sum().reset_index()
    y, w = long["y"].to_numpy(), long["w"].to_numpy()
    mf = MetricFrame(metrics={"rate": selection_rate}, y_true=y, y_pred=y, sensitive_features=long[["sf"]],
                     control_features=long[["stage"]], sample_params={"rate": {"sample_weight": w}})
    counts = long.assign(yw=y * w).groupby(["stage", "sf"], sort=False)[["w", "yw"]].sum()
    merged = counts.join(mf.by_group["rate"], how="inner")
    stage = merged.index.get_level_values("stage").str.split("|", n=1)
    sf = merged.index.get_level_values("sf").str.split("=", n=1)
    out = pd.DataFrame({"attribute": sf.str[0], "group": sf.str[1], "stage": stage.str[1],
                        "n": np.rint(merged["w"].to_numpy()).astype(int),
                        "favourable": np.rint(merged["yw"].to_numpy()).astype(int),
                        "rate": merged["rate"].to_numpy(dtype=float)})
    order = {(k, nm): i for i, (k, nm, _c, _f) in enumerate(parts)}
    out["_o"] = [order[(a, s)] for a, s in zip(out["attribute"], out["stage"], strict=True)]
    return out.sort_values(["_o", "group"], ignore_index=True)[cols]


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
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CREDITRISK_DATA_DIR", "var")))
    ap.add_argument("--registry-dir", type=Path,
                    default=Path(os.environ.get("CREDITRISK_MODEL__REGISTRY_DIR", "models")))
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with copied_book(a.data_dir, a.registry_dir):
        from unittest import mock

        from backend.container import build_services, load_settings

        svc = build_services(load_settings(), migrate=False)
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
