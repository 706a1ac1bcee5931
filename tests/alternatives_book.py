"""A small generated book whose age-band screen fails (the alternatives search's tests share it).

3,000 applicants by default, a protected ``age_band`` (young 35%) and a feature ``tenure_gap`` shifted for the young
that carries real risk: the base model approves the young much less often.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.training.dataset import Dataset


def book(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    young = rng.random(n) < 0.35
    frame = pd.DataFrame({
        "tenure_gap": rng.normal(1.6 * young, 1.0),
        "utilization": rng.normal(0, 1, n),
        "inquiries": rng.poisson(1.5, n).astype(float),
        "verified": rng.choice(["yes", "no"], n),
        "age_band": np.where(young, "18-34", "35+"),
        "sex": rng.choice(["female", "male"], n),
    })
    risk = 1.1 * frame["tenure_gap"] + 1.0 * frame["utilization"] + 0.4 * frame["inquiries"] - 3.0
    frame["bad"] = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(int)
    return frame


def dataset(frame: pd.DataFrame, features: list[str] | None = None) -> Dataset:
    feats = features or ["tenure_gap", "utilization", "inquiries", "verified"]
    kinds = {f: ("categorical" if f in ("verified", "age_band", "sex") else "numeric") for f in feats}
    return Dataset(X=frame[feats].copy(), y=frame["bad"].to_numpy(dtype=np.int8),
                   protected=frame[["age_band", "sex"]].copy(), kinds=kinds, target="bad", positive=["1"],
                   source="generated test book", sha256="0" * 64)
