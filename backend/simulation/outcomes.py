"""What happened to the loans: approved applicants take the loan (most of them) and default by the
generator's ground truth, a few months after the decision; a default is only known once it happened
before the outcome feed was read (``SimConfig.outcomes_as_of``), so recent vintages are still immature.
Pure: the frame goes to :meth:`OutcomeService.import_frame` (the import users run)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.simulation.config import SimConfig
from backend.simulation.draws import Draws

DAYS_PER_MONTH = 30.44


def outcome_frame(cfg: SimConfig, applications: pd.DataFrame, final: pd.DataFrame, draws: Draws) -> pd.DataFrame:
    """The outcome feed for the final decisions ``final`` (application_id, outcome, decided_at) of the
    generated ``applications`` (application_id, default), in the columns the outcome import reads."""
    as_of = cfg.outcomes_as_of
    frame = applications[["application_id", "default"]].merge(final, on="application_id")
    pos = applications.reset_index().set_index("application_id").loc[frame["application_id"], "index"].to_numpy()
    approved = frame["outcome"].to_numpy() == "approve"
    funded = approved & (draws.funded[pos] < cfg.funded_share)
    months_to_default = 2.0 + draws.gamma[pos]
    decided = pd.to_datetime(frame["decided_at"], utc=True)
    default_at = decided + pd.to_timedelta(months_to_default * DAYS_PER_MONTH, unit="D")
    as_of_ts = pd.Timestamp(as_of)
    observed_default = funded & (frame["default"].to_numpy() == 1) & (default_at <= as_of_ts).to_numpy()
    obs = np.where(observed_default, default_at, as_of_ts)
    obs = np.maximum(pd.to_datetime(obs, utc=True), decided + pd.Timedelta(days=1))
    keep = decided < as_of_ts
    return pd.DataFrame({"application_id": frame["application_id"][keep],
                         "funded": funded[keep.to_numpy()],
                         "default_flag": np.where(funded, observed_default, None)[keep.to_numpy()],
                         "observation_date": pd.to_datetime(obs[keep.to_numpy()], utc=True)})
