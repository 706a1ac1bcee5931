"""The fairness refresh with its DI intervals from ``np.nanpercentile`` (before) and ``nan_percentile_rows`` (now).

``FairnessService.refresh(force=True)`` on a **copy** of a data dir's database, every month read again (the row
memory emptied), ``--repeat`` times per path, the paths interleaved: the baseline swaps ``np.nanpercentile`` back in
for the bootstrap intervals of the disparate-impact ratios, the other runs the code as it is. Every stored
snapshot's figures are compared (bit for bit, the intervals included). Prints seconds per refresh and the ratio.

    PYTHONPATH=. .venv/bin/python bench/fairness_intervals.py --data-dir var --registry-dir models [--repeat 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from book_copy import book_arguments, copied_services

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def payloads(svc: Any) -> list[str]:
    from backend.monitoring.snapshot_queries import SnapshotRepository

    with svc.db.read() as s:
        snaps = sorted(SnapshotRepository(s).list("fairness"), key=lambda x: (x.granularity, x.period))
    # every figure; not the read it was made from, nor the window (the open month's ends at the clock's now)
    return [repr({k: v for k, v in x.payload.items() if k not in ("read", "window")}) for x in snaps]


def once(svc: Any) -> float:
    from backend.monitoring.book_state import RowMemo

    src = svc.alerts.sources.get("fairness")
    src._rows = RowMemo()  # every month read again, as after a change to the book
    t0 = time.perf_counter()
    src.refresh(force=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    book_arguments(ap)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    before, after = [], []
    with copied_services(a.data_dir, a.registry_dir) as svc:
        for _ in range(a.repeat):
            with mock.patch("backend.monitoring.fairness_metrics.nan_percentile_rows",
                            lambda r, q: np.nanpercentile(r, q, axis=1)):
                before.append(once(svc))
            old = payloads(svc)
            after.append(once(svc))
            new = payloads(svc)
    b, n = statistics.median(before), statistics.median(after)
    print(f"fairness refresh, every period recomputed (median of {a.repeat}, interleaved):")
    print(f"  before (np.nanpercentile)      {b:6.2f} s")
    print(f"  now (nan_percentile_rows)      {n:6.2f} s   ratio {b / n:.2f}x")
    print(f"  {len(new):,} stored snapshots compared: {'identical' if old == new else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
