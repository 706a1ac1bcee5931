"""The randomness of a simulated history, fixed by the seed: the applications (the synthetic generator,
with the incident's corrupted feed when asked) and one set of random numbers per application, so a day
draws the same numbers however the run is cut (resumed runs write the same history)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from backend.simulation.config import ID_PREFIX


class Draws:
    """Per-application random numbers, fixed by the seed and the row (not by how the run is cut)."""

    def __init__(self, seed: int, n: int) -> None:
        rng = np.random.default_rng([seed, 2])
        self.officer = rng.random(n)
        self.noise = rng.standard_normal(n)
        self.time = rng.standard_normal(n)
        self.time2 = rng.standard_normal(n)
        self.pick = rng.random(n)
        self.pick2 = rng.random(n)
        self.override = rng.random(n)
        self.review = rng.random(n)
        self.llm = rng.random(n)
        self.cache = rng.random(n)
        self.funded = rng.random(n)
        self.gamma = rng.gamma(2.0, 3.0, n)  # months from funding to a default, beyond the first two
        # drawn last, so every draw above is the same as before these were added
        self.rated = rng.random(n)  # the officer rates the explanation
        self.helpful = rng.random(n)  # ... as helpful
        self.opened = rng.random(n)  # the officer opens the AI card before deciding (adoption)
        self.request_time = rng.standard_normal((3, n))  # the scoring request's timings (request_timings)


#: Median milliseconds and log-spread of each recorded component of a scoring request: validation, the
#: compiled model with its attributions, the database lookup (the API's measured 2.1-2.6 ms per request).
REQUEST_TIMINGS = {"validate_ms": (0.30, 0.35), "score_ms": (1.6, 0.40), "db_read_ms": (0.8, 0.55)}


def request_timings(draws: Draws, idx: np.ndarray) -> list[dict[str, float]]:
    """The simulated timings of the scoring requests of rows ``idx``: lognormal around :data:`REQUEST_TIMINGS`,
    fixed by the seed. The simulator records these instead of timing its own batched scoring, which measured
    the machine running the simulation (a busy test machine made the September incident's verification read a
    latency regression that never happened) and is not what one request costs."""
    z = draws.request_time[:, idx]
    cols = {k: np.exp(np.log(median) + spread * z[j]) for j, (k, (median, spread)) in enumerate(REQUEST_TIMINGS.items())}
    return [{k: float(v[i]) for k, v in cols.items()} for i in range(len(idx))]


def generate_applications(n: int, *, seed: int, start: datetime, end: datetime,
                          incident: tuple[datetime, datetime] | None) -> pd.DataFrame:
    """``n`` generated applications from ``start`` (those before ``end``); ``incident``: the window of the
    data-quality incident's corrupted feed."""
    from backend.training import generate

    months = max(1, round((end - start).days / 30.44))
    kw: dict[str, Any] = {}
    if incident is not None:
        kw = {"scenario": "data_quality_incident", "scenario_start": incident[0], "scenario_end": incident[1]}
    df = generate(n, seed=seed, start=start, months=months, id_prefix=f"{ID_PREFIX}{seed}-", **kw)
    return df[df["applied_at"] < pd.Timestamp(end)]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with None for missing (faster than ``DataFrame.to_dict`` on object columns)."""
    cols = list(frame.columns)
    values = frame.to_numpy(dtype=object)
    values[pd.isna(values)] = None
    return [dict(zip(cols, row, strict=True)) for row in values]


def hash01(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``key``."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big") / 2.0**64
