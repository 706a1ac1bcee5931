"""Reference rows, window samples and the evidently deep dive of the drift page.

The deep dive is evidently 0.7's ``DataDriftPreset`` (``from evidently import Report``,
``from evidently.presets import DataDriftPreset``; ``Report.run(current, reference)`` returns a
snapshot whose ``get_html_str(as_iframe=False)`` is a self-contained HTML page with its scripts
inlined). It compares a bounded sample of the reference (the champion's held-out rows) with a
bounded random sample (fixed seed, so the same window gives the same report) of the applications
of one window, both with the reference model's PD as an extra ``model_score`` column. Only the
window's highest-PSI features are shown (20 by default): evidently renders every column it gets,
which takes about a second per column per report here. The stat
test is evidently's PSI with the page's "act" threshold, so "drift detected" in the report means
PSI above the act band. Evidently bins differently from our stored PSI (it uses Sturges
equal-width bins over both samples for numeric columns with more than 20 values and drops missing
values), so its figures are a second opinion, not the same numbers.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from backend.models import HOLDOUT, ModelProvider, ServingModel, read_checksums, read_verified
from backend.monitoring import drift_queries as q
from backend.platform.db.engine import Database

SAMPLE_ROWS = 20_000  # rows per side of the deep dive (bounded: evidently is a notebook tool)
MAX_SAMPLE_ROWS = 100_000
SEED = 20_250_908
SCORE_COLUMN = "model_score"

NO_REFERENCE = "model {version} has no usable training reference ({file}): {reason}"
EMPTY_WINDOW = "no applications between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC"
BAD_ROWS = "rows must be between 100 and 100,000 (got {rows!r})."


def score_frame(model: ServingModel, frame: pd.DataFrame) -> np.ndarray:
    """The model's calibrated PD for raw feature rows (primary model, else the fallback)."""
    X = model.encoder.transform(frame[list(model.columns)])
    role, compiled = ("primary", model.primary) if model.primary is not None else ("fallback", model.fallback)
    return np.asarray(model.calibrate(compiled.predict_proba(X), model=role), dtype=np.float64)


def load_holdout(models: ModelProvider, version: str) -> pd.DataFrame:
    """The held-out rows stored with ``version`` (SHA-256 verified before parsing)."""
    reg = models.registry()
    try:
        version = reg.resolve(version)  # an MLflow registry fetches (and verifies) it into its cache
    except Exception as exc:  # noqa: BLE001 - one clear message whatever went wrong
        raise RuntimeError(NO_REFERENCE.format(version=version, file=HOLDOUT, reason=exc)) from exc
    folder = reg.path / version
    try:
        data = read_verified(folder, HOLDOUT, read_checksums(folder, reg.name, version, reg.keys), reg.name, version)
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - one clear message whatever went wrong
        raise RuntimeError(NO_REFERENCE.format(version=version, file=HOLDOUT, reason=exc)) from exc


def sample_window(db: Database, start: datetime, end: datetime, kinds: Mapping[str, str], rows: int,
                  *, seed: int = SEED) -> pd.DataFrame:
    """Up to ``rows`` applications of ``[start, end)`` drawn at random (fixed seed), features parsed."""
    with db.read() as s:
        ids = q.window_ids(s, start, end)
        if not ids:
            raise ValueError(EMPTY_WINDOW.format(start=start, end=end))
        if len(ids) > rows:
            pick = np.sort(np.random.default_rng(seed).choice(len(ids), size=rows, replace=False))
            ids = [ids[i] for i in pick.tolist()]
        blobs = q.features_of(s, ids)
    return q.parse_features(blobs, kinds)


def build_html(reference: pd.DataFrame, current: pd.DataFrame, kinds: Mapping[str, str], *,
               threshold: float) -> str:
    """Evidently's data-drift report (PSI per column) of ``current`` against ``reference`` as HTML."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [c for c in kinds if c in reference and c in current]
    definition = DataDefinition(numerical_columns=[c for c in columns if kinds[c] != "categorical"],
                                categorical_columns=[c for c in columns if kinds[c] == "categorical"])
    report = Report([DataDriftPreset(method="psi", threshold=threshold)])
    snapshot = report.run(Dataset.from_pandas(current[columns], data_definition=definition),
                          Dataset.from_pandas(reference[columns], data_definition=definition))
    return str(snapshot.get_html_str(as_iframe=False))


def deep_dive_html(db: Database, models: ModelProvider, version: str, kinds: Mapping[str, str],
                   start: datetime, end: datetime, *, rows: int = SAMPLE_ROWS, threshold: float) -> str:
    """The evidently report of the window ``[start, end)`` against ``version``'s held-out rows, on the
    columns of ``kinds`` plus the model score (the score needs every model column, so all are read)."""
    if isinstance(rows, bool) or not isinstance(rows, int) or not 100 <= rows <= MAX_SAMPLE_ROWS:
        raise ValueError(BAD_ROWS.format(rows=rows))
    model = models.get(version)
    reference = load_holdout(models, version)
    if len(reference) > rows:
        reference = reference.sample(n=rows, random_state=SEED)
    current = sample_window(db, start, end, {c: model.kinds.get(c, "numeric") for c in model.columns}, rows)
    reference = reference.assign(**{SCORE_COLUMN: score_frame(model, reference)})
    current = current.assign(**{SCORE_COLUMN: score_frame(model, current)})
    return build_html(reference, current, {**kinds, SCORE_COLUMN: "numeric"}, threshold=threshold)
