"""The Alerts page's "Run checks now" (issue 20, item 7: target <= 5 s on the default history; was 32.3 s).

The button calls :meth:`AlertService.evaluate` with ``refresh=True``: refresh the drift, performance,
fairness and phase-comparison summaries, read every rule, then open, update or resolve alerts. This
script times that call in-process on a **copy** of a data directory's database (the click writes
snapshots, alerts and audit rows; the original is never touched):

* **baseline**: every summary recomputed in full with nothing remembered or reused (drift, fairness and the
  phase comparison with ``force=True``, the month memories emptied, the reads the snapshots kept ignored),
  then the rules judged (``evaluate(refresh=False)``): the work the button did before any reuse;
* **after**: the button's call itself, ``evaluate(refresh=True, actor=<a risk manager>)``: once with
  nothing in memory (fairness and performance read every month, the comparison's stored count is
  verified), then on the book as it is (nothing changed since the last click) and after one new
  application is scored (its month's token changed: that month is read and counted again, the others
  are kept; ``backend.monitoring.book_state``).

Each is run ``--repeat`` times after one untimed warm-up click (the model load and the process's
first reads are paid there, reported as "first click"); per-source times are printed, and the ratio
baseline / after. Timings depend on the machine and its load (``uptime`` is printed).

    PYTHONPATH=. .venv/bin/python bench/run_checks.py --data-dir var --registry-dir models [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from book_copy import book_arguments, copied_services

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 5.0


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def baseline_click(svc: Any) -> dict[str, float]:
    """Every summary recomputed from the book with nothing remembered or reused (the path before the month
    tokens: every month read and summarised, the comparison recounted, drift's periods counted), then the rules."""
    from backend.alerts.service import REFRESHED
    from backend.analytics.experiments_months import MonthReads
    from backend.monitoring import fairness_queries
    from backend.monitoring.book_state import RowMemo

    at, times = svc.clock.now(), {}
    kept_cells = fairness_queries.stored_cells
    fairness_queries.stored_cells = lambda *a: None  # type: ignore[assignment]
    try:
        for name in REFRESHED:
            src = svc.alerts.sources.get(name)
            if name in ("fairness", "performance"):
                src._rows = RowMemo()  # nothing remembered: every month read again
            elif name == "experiments":
                src._months = MonthReads()
                src._months.kept = lambda s, month: None  # the stored month reads ignored too
            t0 = time.perf_counter()
            if name == "drift":
                src.refresh_all(until=at, force=True)
            elif name == "performance":
                src._stored = lambda *a: None
                src.refresh(until=at)
                del src._stored
            else:
                src.refresh(until=at, force=True)
            times[name] = time.perf_counter() - t0
    finally:
        fairness_queries.stored_cells = kept_cells
    times["rules"] = timed(lambda: svc.alerts.evaluate(at=at, refresh=False))[0]
    return times


def new_click(svc: Any, actor: str) -> dict[str, float]:
    """The button's call, with each source's refresh timed through a wrapper."""
    timings: dict[str, float] = {}
    sources = svc.alerts.sources
    original = sources.get

    def get(name: str) -> Any:
        src = original(name)
        return _Timed(src, name, timings)

    sources.get = get  # type: ignore[method-assign]
    try:
        total, _ = timed(lambda: svc.alerts.evaluate(refresh=True, actor=actor))
    finally:
        del sources.get
    timings["rules"] = total - sum(timings.values())
    return timings


class _Timed:
    def __init__(self, src: Any, name: str, out: dict[str, float]) -> None:
        self._src, self._name, self._out = src, name, out

    def __getattr__(self, attr: str) -> Any:
        fn = getattr(self._src, attr)
        if attr not in ("refresh", "refresh_all"):
            return fn

        def run(*a: Any, **kw: Any) -> Any:
            took, out = timed(lambda: fn(*a, **kw))
            self._out[self._name] = self._out.get(self._name, 0.0) + took
            return out
        return run


def score_one(svc: Any) -> None:
    """One new application through the scoring service (the records change)."""
    from backend.domain import Actor
    from backend.training.synthetic import generate

    df = generate(1, seed=2026).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    svc.scoring.score(df.where(df.notna(), None).to_dict("records")[0], submitter=Actor.system())


def summary(label: str, runs: list[dict[str, float]]) -> float:
    totals = [sum(r.values()) for r in runs]
    parts = "  ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}" for k in runs[0])
    p50 = statistics.median(totals)
    print(f"  {label:<44} p50 {p50:6.2f} s  max {max(totals):6.2f} s   ({parts})")
    worst = runs[totals.index(max(totals))]
    print(f"  {'':<44} slowest run: " + "  ".join(f"{k} {v:.2f}" for k, v in worst.items()))
    return p50


def main() -> None:
    ap = argparse.ArgumentParser()
    book_arguments(ap)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with copied_services(a.data_dir, a.registry_dir) as svc:
        from sqlalchemy import text

        with svc.db.read() as s:
            actor = s.execute(text("SELECT username FROM users WHERE role = 'risk_manager' AND NOT disabled "
                                   "ORDER BY username LIMIT 1")).scalar_one()
            apps = s.execute(text("SELECT count(*) FROM applications")).scalar_one()
        print(f"{apps:,} applications; actor {actor}")
        first = sum(baseline_click(svc).values())
        print(f"  first click of the process (baseline path, untimed warm-up): {first:.2f} s")
        base = [baseline_click(svc) for _ in range(a.repeat)]
        from backend.analytics.experiments_months import MonthReads
        from backend.monitoring.book_state import RowMemo

        svc.fairness._rows, svc.performance._rows, svc.experiments._months = RowMemo(), RowMemo(), MonthReads()
        once = new_click(svc, actor)
        print(f"  first Run checks now, nothing in memory (as after a restart): {sum(once.values()):.2f} s  "
              + "  ".join(f"{k} {v:.2f}" for k, v in once.items()))
        same = [new_click(svc, actor) for _ in range(a.repeat)]
        changed = []
        for _ in range(a.repeat):
            score_one(svc)
            changed.append(new_click(svc, actor))
        b = summary("baseline (every summary recomputed)", base)
        u = summary("after: Run checks now, book unchanged", same)
        c = summary("after: Run checks now, one new application", changed)
        print(f"  ratio baseline/after: unchanged {b / u:.1f}x, after a change {b / c:.1f}x;  target <= {TARGET_S:g} s")
        svc.close()


if __name__ == "__main__":
    main()
