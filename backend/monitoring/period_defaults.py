"""Which period a monitoring page opens on: the newest *complete* period with enough data to say
something (never an empty or half-filled one just because it is the newest). One rule for the Fairness
and Drift pages, tested in tests/unit/test_period_defaults.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from backend.monitoring.snapshot_queries import Snapshot


def fairness_default(periods: Sequence[Snapshot], now: datetime) -> int:
    """Index of the newest period whose figure could be judged (``value`` set) and whose window has
    ended (months; a phase counts as soon as it has a judged figure); else the newest with decisions;
    else the last."""
    def ended(s: Snapshot) -> bool:
        return s.granularity != "month" or s.window_end <= now

    for ok in (lambda s: s.value is not None and ended(s), lambda s: s.value is not None, lambda s: bool(s.n)):
        found = [i for i, s in enumerate(periods) if ok(s)]
        if found:
            return found[-1]
    return max(len(periods) - 1, 0)


def drift_default(series: pd.DataFrame, min_rows: int) -> int:
    """Index (position in ``series``) of the newest complete period with at least ``min_rows`` applications;
    else the newest with ``min_rows``; else the last."""
    if series.empty:
        return 0
    big = (series["n"] >= min_rows).to_numpy()
    done = series["complete"].to_numpy(dtype=bool) if "complete" in series else big
    for mask in (big & done, big):
        idx = [i for i, m in enumerate(mask) if m]
        if idx:
            return idx[-1]
    return len(series) - 1
