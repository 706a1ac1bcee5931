"""Monitoring pages open on the newest complete period with something to show (issue 20: the Fairness
"by month" picker opened on a month with one decided application; drift on the half-filled week)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from backend.monitoring import drift_default, fairness_default
from backend.monitoring.snapshot_queries import Snapshot

NOW = datetime(2026, 12, 6, 10, tzinfo=UTC)


def _snap(period: str, n: int, value: float | None, gran: str = "month") -> Snapshot:
    start = datetime.fromisoformat(f"{period}-01").replace(tzinfo=UTC) if gran == "month" else NOW
    end = (pd.Timestamp(start) + pd.DateOffset(months=1)).to_pydatetime() if gran == "month" else NOW
    return Snapshot("fairness", gran, period, start, end, "", NOW, n, value, {})


def test_fairness_opens_on_the_newest_ended_month_with_a_judged_figure() -> None:
    months = [_snap("2026-09", 2000, 0.9), _snap("2026-10", 2100, 0.88), _snap("2026-11", 1, None),
              _snap("2026-12", 300, 0.85)]
    assert fairness_default(months, NOW) == 1  # November: nothing judged; December: not over
    assert fairness_default([_snap("2026-12", 300, 0.85)], NOW) == 0  # nothing ended: the judged one
    assert fairness_default([_snap("2026-11", 1, None), _snap("2026-12", 0, None)], NOW) == 0  # some decisions
    assert fairness_default([], NOW) == 0
    phases = [_snap("pilot", 900, 0.9, "phase"), _snap("scaled", 50, None, "phase")]
    assert fairness_default(phases, NOW) == 0


def test_drift_opens_on_the_newest_complete_period_with_enough_rows() -> None:
    s = pd.DataFrame({"period": ["W46", "W47", "W48", "W49"], "n": [4000, 4100, 4200, 300],
                      "complete": [True, True, True, False]})
    assert drift_default(s, 500) == 2
    s.loc[2, "n"] = 20  # a thin complete week is skipped too
    assert drift_default(s, 500) == 1
    assert drift_default(s.assign(complete=False), 500) == 1  # none complete: the newest big enough
    assert drift_default(s.assign(n=1), 500) == 3
    assert drift_default(s.iloc[:0], 500) == 0
