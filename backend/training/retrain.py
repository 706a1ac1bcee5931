"""Retraining from the decision book: fetch -> train -> gates -> register as challenger.

:func:`retrain_from_book` is what ``creditrisk retrain``, the registry page's button and the alert
runner (accuracy alert -> retrain) call. It reads the applications made in the last
``settings.monitoring.retrain_window_months`` before ``at`` whose outcome is known by ``at``
(funded, ``defaulted`` recorded, ``observed_at <= at``), trains with the same code path as
``creditrisk train`` (:func:`backend.training.train.train`), evaluates with the same gates (plus
the champion scored on the challenger's held-out rows, in ``Registry.register``) and registers
the result as the challenger with its lineage. It never promotes: that goes through the canary.

Selection bias: outcomes exist only for *funded* loans, so the training rows are the applicants
who were approved and funded; declined applicants have no label. A model retrained on them
learns the funded population, and its held-out metrics describe funded loans only. The report
states the funded share of the window; the control arm (officers deciding without the model) is
the unbiased comparison on the Realized performance page.

:func:`retrain_due` answers ``creditrisk retrain --if-due`` (for cron): due when the last
registration is older than ``settings.monitoring.retrain_every_days`` or an alert whose action
is ``retrain`` (the accuracy rule) is open or acknowledged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from backend.models import ModelAdmin, ModelProvider, unresolved_alerts
from backend.platform.db.engine import Database
from backend.platform.ports import Clock, ProgressCallback
from backend.training.queries import count_applications, labeled_applications

RETRAIN_ACTION = "retrain"
RETRAIN_CV_FOLDS = 3  # as the demo's first model: 3-fold CV keeps a retrain on the demo book under a minute
MIN_ROWS = 1000  # labeled rows needed: a 20% holdout of at least 200 funded loans
MIN_DEFAULTS = 30  # defaults needed: a few in every CV fold and in the holdout
TARGET = "default"
MSG_TOO_FEW_ROWS = ("too little data to retrain: {rows:,} funded loan(s) with a known outcome applied "
                    "{start:%Y-%m-%d} to {end:%Y-%m-%d} (need at least {minimum:,}); widen the window with "
                    "--months or wait for more outcomes. Nothing was registered.")
MSG_TOO_FEW_DEFAULTS = ("too few defaults to retrain: {defaults} among {rows:,} funded loans applied {start:%Y-%m-%d} "
                        "to {end:%Y-%m-%d} (need at least {minimum}); widen the window with --months or wait for "
                        "more outcomes. Nothing was registered.")
MSG_BAD_MONTHS = "the retraining window must be 1 to 120 months (got {months})"
SELECTION_BIAS = ("Selection bias: outcomes exist only for funded loans. This model learnt from the {rows:,} funded "
                  "loans with a known outcome, {share:.0%} of the {applications:,} applications in the window; "
                  "declined applicants have no label. Its held-out metrics describe funded loans, not every "
                  "applicant; the control arm (Realized performance page) is the unbiased comparison.")


class RetrainError(ValueError):
    """Retraining refused (too little data, bad window); nothing was registered."""


@dataclass(frozen=True)
class BookSample:
    frame: pd.DataFrame  # features, protected attributes, ``default``
    applications: int  # every application in the window (funded or not)
    start: datetime
    end: datetime


# -- reading the book ----------------------------------------------------------------------------
def fetch_labeled(db: Database, start: datetime, end: datetime, columns: list[str]) -> BookSample:
    """Funded applications made in ``[start, end)`` whose default flag was observed by ``end``."""
    from backend.domain import PROTECTED

    with db.read() as s:
        rows = labeled_applications(s, start, end)
        applications = count_applications(s, start, end)
    X = pd.DataFrame.from_records([r.features or {} for r in rows], columns=columns)
    P = pd.DataFrame.from_records([r.protected or {} for r in rows], columns=list(PROTECTED))
    y = pd.Series([int(bool(r.defaulted)) for r in rows], name=TARGET, dtype=np.int8)
    return BookSample(pd.concat([X, P, y], axis=1), applications, start, end)


def open_retrain_alerts(db: Database) -> list[str]:
    """Rules of the unresolved alerts whose action is ``retrain``."""
    with db.read() as s:
        return sorted({a.rule for a in unresolved_alerts(s, RETRAIN_ACTION)})


# -- use cases ---------------------------------------------------------------------------------
def _schema(models: ModelProvider) -> dict[str, str]:
    """Feature names and kinds: the champion's (what the book was validated against), else the catalog."""
    try:
        manifest = models.registry().manifest("champion")
        return {f["name"]: f["kind"] for f in manifest["features"]}
    except Exception:  # noqa: BLE001 - no champion yet: the catalog
        from backend.domain import FEATURES

        return {f.name: f.kind for f in FEATURES}


def _dataset(sample: BookSample, kinds: dict[str, str], source: str) -> Any:
    from backend.domain import PROTECTED
    from backend.training.dataset import Dataset, frame_sha256

    frame = sample.frame
    X = frame[list(kinds)].copy()
    for col, kind in kinds.items():
        if kind != "categorical":
            X[col] = pd.to_numeric(X[col], errors="coerce")
    return Dataset(X=X, y=frame[TARGET].to_numpy(dtype=np.int8), protected=frame[list(PROTECTED)].copy(),
                   kinds=kinds, target=TARGET, positive=["1"], source=source, sha256=frame_sha256(frame))


class Retrainer:
    """Retraining from the book (``creditrisk retrain``, the console's Retrain button, the monitor's
    ``--retrain-on-alert``). Built by the composition root with what it reads and writes."""

    def __init__(self, db: Database, clock: Clock, models: ModelProvider, admin: ModelAdmin, *,
                 window_months: int, every_days: int) -> None:
        """``window_months``: how far back a retrain reads by default; ``every_days``: a scheduled retrain is
        due when the last registration is older (``CREDITRISK_MONITORING__RETRAIN_*``)."""
        self.db, self.clock, self.models, self.admin = db, clock, models, admin
        self.window_months, self.every_days = window_months, every_days

    def from_book(self, actor: Any, *, at: datetime | None = None, months: int | None = None,
                  progress: ProgressCallback | None = None, seed: int = 0, min_rows: int = MIN_ROWS,
                  min_defaults: int = MIN_DEFAULTS, trigger: str = "manual", search_alternatives: bool = False,
                  **train_kwargs: Any) -> dict[str, Any]:
        """Retrain on the book and register the result as the challenger (never promoted here).

        Returns the registry's report of the new version plus ``lineage``, ``selection_bias`` and
        ``timings``. Raises :class:`RetrainError` (nothing registered) when the window holds fewer
        than ``min_rows`` labeled rows or fewer than ``min_defaults`` defaults. ``search_alternatives``: then
        search for a less discriminatory alternative on the same rows and register the chosen one as the challenger
        (``alternatives`` in the report, :mod:`backend.training.alternatives`; its registration audited too).
        """
        from backend.training.train import train

        t0 = time.perf_counter()
        at = at or self.clock.now()
        months = int(months or self.window_months)
        if not 1 <= months <= 120:
            raise RetrainError(MSG_BAD_MONTHS.format(months=months))
        start = (pd.Timestamp(at) - pd.DateOffset(months=months)).to_pydatetime()
        kinds = _schema(self.models)
        sample = fetch_labeled(self.db, start, at, list(kinds))
        rows, defaults = len(sample.frame), int(sample.frame[TARGET].sum())
        if rows < min_rows:
            raise RetrainError(MSG_TOO_FEW_ROWS.format(rows=rows, start=start, end=at, minimum=min_rows))
        if defaults < min_defaults:
            raise RetrainError(MSG_TOO_FEW_DEFAULTS.format(defaults=defaults, rows=rows, start=start, end=at,
                                                           minimum=min_defaults))
        source = (f"book: funded applications applied {start:%Y-%m-%d} to {at:%Y-%m-%d} with outcomes observed by "
                  f"{at:%Y-%m-%d}")
        dataset = _dataset(sample, kinds, source)
        t_fetch = time.perf_counter()
        result = train(dataset, seed=seed, progress=progress, **{"cv_folds": RETRAIN_CV_FOLDS, **train_kwargs})
        t_train = time.perf_counter()
        bias = SELECTION_BIAS.format(rows=rows, share=rows / max(sample.applications, 1),
                                     applications=sample.applications)
        lineage = {"source": "book", "window": {"from": start.isoformat(timespec="seconds"),
                                                "to": at.isoformat(timespec="seconds"), "months": months},
                   "rows": rows, "defaults": defaults, "applications_in_window": sample.applications,
                   "funded_only": True, "selection_bias": bias, "created_by": actor.username, "trigger": trigger}
        registry = self.models.registry()
        version = registry.register(result, lineage=lineage, at=self.clock.now())  # one clock for lifecycle times
        report = registry.report(version)
        self.admin.registered(report, actor)
        if search_alternatives:
            from backend.training.alternatives import register_chosen, search

            record = search(dataset, result)
            alt = register_chosen(registry, dataset, result, record, at=self.clock.now(),
                                  lineage={**lineage, "base_version": version, "source": "book (alternatives search)"})
            report["alternatives"] = {**record, "version": alt, "report": registry.report(alt) if alt else None}
            if alt:
                self.admin.registered(report["alternatives"]["report"], actor)
        t_end = time.perf_counter()
        report.update(selection_bias=bias, timings={"fetch_s": t_fetch - t0, "train_s": t_train - t_fetch,
                                                    "register_s": t_end - t_train, "total_s": t_end - t0})
        return report


    def due(self, at: datetime | None = None) -> tuple[bool, str]:
        """Whether a scheduled retrain should run now, and why (or why not)."""
        at = at or self.clock.now()
        every = self.every_days
        events = [e for e in self.models.registry().aliases()["events"] if e.get("action") == "register"]
        last = max((datetime.fromisoformat(e["at"]) for e in events), default=None)
        reasons = []
        if rules := open_retrain_alerts(self.db):
            reasons.append(f"unresolved retrain alert(s): {', '.join(rules)}")
        if last is None:
            reasons.append("no model has been registered yet")
        elif at - last >= timedelta(days=every):
            reasons.append(f"the last registration ({last:%Y-%m-%d}) is {(at - last).days} days old "
                           f"(retrain every {every} days)")
        if reasons:
            return True, "due: " + "; ".join(reasons)
        assert last is not None
        return False, (f"not due: the last registration ({last:%Y-%m-%d %H:%M} UTC) is {max((at - last).days, 0)} "
                       f"day(s) old (retrain every {every} days) and no retrain alert is open")
