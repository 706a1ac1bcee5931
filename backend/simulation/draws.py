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
