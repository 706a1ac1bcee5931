"""Realized performance of the credit model by origination vintage (month of application).

``refresh(until=...)`` reads the book one vintage at a time (a few columns per application, never
the features JSON), computes the figures of :mod:`backend.monitoring.performance_metrics` per arm
(all / ai / control / excluded) and per model version, and stores one ``performance`` snapshot per
vintage; the page and the alert rules read those snapshots only.

What counts as known at ``until`` (so a historical replay sees only what was known then): only
applications made before ``until``; a loan is *defaulted* only when its default was observed at or
before ``until`` (``outcomes.observed_at``); a funded loan whose default status is recorded and who
had no default observed by then counts as *performing to date*. The outcome store keeps one row per
application (the latest observation), so the funding flag (an origination fact) is read from that
row whatever its observation date, provided the final decision came before ``until``.

Selection bias: outcomes exist only for funded loans, and denied applications are never imputed.
In the control arm the officers decided without the model (which still scored every application),
so its funded loans are the less biased sample of the model's ranking; in the AI arm the model's
own recommendation shaped who was funded.

A vintage is *mature* when its end plus ``settings.maturity_months`` is at or before ``until``:
only then is its realized accuracy the snapshot's ``value`` (what the accuracy alert reads). Before
that, the expected bad rate from the calibrated PDs (with its Poisson-binomial interval) is shown
next to the observed-to-date bad rate, as an estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from backend.monitoring import performance_queries as q
from backend.monitoring.book_state import BookState, RowMemo, book_state
from backend.monitoring.config import MonitoringSettings
from backend.monitoring.performance_metrics import evaluate, expected_bad_rate
from backend.monitoring.snapshot_queries import Snapshot, SnapshotRepository
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

__all__ = ["ARM_LABELS", "GRANULARITY", "HIGH_RISK", "KIND", "NAIVE_UNTIL", "PerformanceService",
           "add_months", "months_on_book"]

KIND, GRANULARITY = "performance", "month"
HIGH_RISK = "high_risk"  # the model's class that predicts a default
ARM_LABELS = {"all": "All funded loans", "ai": "AI arm", "control": "Control arm (decided without the model)",
              "excluded": "Outside the rollout", "unassigned": "No arm recorded"}
NAIVE_UNTIL = "until must be a timezone-aware datetime (UTC)."


def add_months(when: datetime, k: int) -> datetime:
    """``when`` moved by ``k`` calendar months (day clipped to the month's length)."""
    return (pd.Timestamp(when) + pd.DateOffset(months=k)).to_pydatetime()


def months_on_book(end: datetime, until: datetime) -> int:
    """Whole calendar months from a vintage's end (its youngest loan) to ``until`` (0 if not over)."""
    if until <= end:
        return 0
    k = (until.year - end.year) * 12 + until.month - end.month
    while k > 0 and add_months(end, k) > until:
        k -= 1
    return k


def _month_start(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _iso(when: Any) -> str:
    return pd.Timestamp(when).isoformat()


class PerformanceService:
    def __init__(self, db: Database, clock: Clock, settings: MonitoringSettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self._rows = RowMemo()  # each vintage's rows while its month's token is unchanged (backend.monitoring.book_state)

    # ------------------------------------------------------------------ writing
    def refresh(self, *, until: datetime | None = None) -> int:
        """Recompute every vintage as of ``until`` (default: now) and store one snapshot per vintage.

        The stored performance snapshots are replaced as a whole in one transaction, so they always
        describe one point in time (``payload["as_of"]``). Returns the number of vintages stored.
        """
        if until is not None and until.tzinfo is None:
            raise ValueError(NAIVE_UNTIL)
        until = (until or self.clock.now()).astimezone(UTC)
        with self.db.read() as s:
            span = q.book_span(s, until)
            state = book_state(s) if span is not None else None
            stored = {x.period: x.payload for x in SnapshotRepository(s).list(KIND, granularity=GRANULARITY)}
        vintages: list[tuple[datetime, datetime, dict[str, Any]]] = []
        if span is not None and state is not None:
            start = _month_start(span[0])
            while start <= span[1]:
                end = add_months(start, 1)
                payload = self._stored(stored.get(f"{start:%Y-%m}"), state, start, end, until)
                if payload is None:
                    with self.db.read() as s:  # the vintage's rows, read again unless its month changed (RowMemo)
                        frame = self._rows.rows((start, min(end, until)), state.month(start),
                                                partial(q.vintage_rows, s, start, min(end, until), until),
                                                until=until, latest=state.latest)
                    payload = self.summarize(frame, start, end, until) if len(frame) else None
                if payload is not None:  # what the rows were read under, for the next refresh (even in another process)
                    payload["read"] = {"token": state.month(start), "end": _iso(min(end, until)),
                                       "latest": None if state.latest is None else _iso(state.latest)}
                    vintages.append((start, end, payload))
                start = end
        now = self.clock.now()
        with self.db.transaction() as s:
            q.clear_snapshots(s, KIND, GRANULARITY)
            repo = SnapshotRepository(s)
            for start, end, payload in vintages:
                everything = payload["arms"]["all"]
                repo.put(kind=KIND, granularity=GRANULARITY, period=payload["vintage"], window_start=start,
                         window_end=end, computed_at=now, n=int(everything["n"]),
                         value=everything["accuracy"] if payload["mature"] else None, payload=payload)
        return len(vintages)

    def _stored(self, payload: dict[str, Any] | None, state: BookState, start: datetime, end: datetime,
                until: datetime) -> dict[str, Any] | None:
        """A stored vintage whose rows are exactly what a read now would return (its month's token and window
        unchanged, nothing in the book as recent as either cut-off when they were read), with the figures
        that depend on ``until`` alone made again; None when the rows must be read."""
        read = (payload or {}).get("read") or {}
        if (payload is None or read.get("token") != state.month(start) or read.get("end") != _iso(min(end, until))
                or read.get("latest") is None):
            return None
        if not pd.Timestamp(read["latest"]) < min(pd.Timestamp(payload["as_of"]), pd.Timestamp(until)):
            return None
        return {**payload, **self._header(start, end, until)}

    def _header(self, start: datetime, end: datetime, until: datetime) -> dict[str, Any]:
        matures_on = add_months(end, self.settings.maturity_months)
        return {"vintage": f"{start:%Y-%m}", "as_of": _iso(until), "mature": matures_on <= until,
                "matures_on": _iso(matures_on), "months_on_book": months_on_book(end, until),
                "maturity_months": self.settings.maturity_months, "partial": until < end}

    def summarize(self, frame: pd.DataFrame, start: datetime, end: datetime, until: datetime) -> dict[str, Any]:
        """The payload of one vintage from its rows (see :func:`performance_queries.vintage_rows`)."""
        arms = frame["arm"].fillna("unassigned").astype(str)
        payload: dict[str, Any] = {**self._header(start, end, until), "arms": {"all": self._group(frame)},
                                   "versions": {}}
        for arm in sorted(arms.unique()):
            payload["arms"][arm] = self._group(frame[arms.to_numpy() == arm])
        versions = frame["model_version"]
        for version in sorted(versions.dropna().unique()):
            part = frame[versions.to_numpy() == version]
            group = self._group(part)
            group.update(first_applied=_iso(part["applied_at"].min()), last_applied=_iso(part["applied_at"].max()),
                         by_arm={str(k): int(v) for k, v in arms[part.index].value_counts().items()})
            payload["versions"][str(version)] = group
        return payload

    def _group(self, frame: pd.DataFrame) -> dict[str, Any]:
        scored = frame["pd"].notna().to_numpy()
        funded = frame["funded"].to_numpy()
        known = funded & frame["known"].to_numpy() & scored
        p = frame["pd"].to_numpy()
        out = {"applications": len(frame), "scored": int(scored.sum()), "approved": int(frame["approved"].sum()),
               "funded": int(funded.sum()), "funded_status_unknown": int((funded & ~frame["known"].to_numpy()).sum()),
               "outcomes_observed": int(frame["observed"].sum()),
               "expected": expected_bad_rate(p[funded & scored])}
        out.update(evaluate(frame["defaulted"].to_numpy()[known], p[known],
                            (frame["risk_class"].to_numpy()[known] == HIGH_RISK)))
        return out

    # ------------------------------------------------------------------ reading
    def snapshots(self) -> list[Snapshot]:
        """Every stored vintage, oldest first."""
        with self.db.read() as s:
            return list(SnapshotRepository(s).list(KIND, granularity=GRANULARITY))

    def latest_accuracy(self, before: datetime | None = None) -> tuple[float, str, int] | None:
        """``(accuracy, vintage, n)`` of the newest mature vintage that has a value.

        With ``before``, only vintages mature at ``before`` count. This reads the stored snapshots:
        to replay a past date, call ``refresh(until=before)`` first so they hold what was known then.
        """
        if before is not None and before.tzinfo is None:
            raise ValueError(NAIVE_UNTIL)
        with self.db.read() as s:
            snaps = SnapshotRepository(s).list(KIND, granularity=GRANULARITY, until=before)
        for snap in reversed(snaps):
            if snap.value is None or not snap.payload.get("mature"):
                continue
            if before is not None and add_months(snap.window_end, self.settings.maturity_months) > before:
                continue
            return float(snap.value), snap.period, int(snap.n)
        return None


# ---------------------------------------------------------------------- views of the snapshots
def vintage_table(snaps: Sequence[Snapshot], arm: str = "all") -> list[dict[str, Any]]:
    """One row per vintage for one arm: realized figures (to date when immature) and the estimate."""
    rows = []
    for snap in snaps:
        pl = snap.payload
        g = pl.get("arms", {}).get(arm)
        if g is None:
            continue
        exp = g.get("expected") or {}
        rows.append({
            "vintage": snap.period, "status": "mature" if pl["mature"] else
            f"estimate ({pl['months_on_book']} of {pl['maturity_months']} months)",
            "mature": bool(pl["mature"]), "applications": g["applications"], "funded": g["funded"],
            "with_outcome": g["n"], "defaults": g["defaults"], "bad_rate": g["bad_rate"],
            "expected_bad_rate": exp.get("mean"), "expected_lo": exp.get("lo"), "expected_hi": exp.get("hi"),
            "auc": g["auc"], "auc_lo": g.get("auc_lo"), "auc_hi": g.get("auc_hi"), "ks": g["ks"],
            "balanced_accuracy": g["balanced_accuracy"], "accuracy": g["accuracy"], "brier": g["brier"],
            "observed_over_expected": (g.get("calibration_check") or {}).get("ratio"),
            "matures_on": pl["matures_on"][:10], "as_of": pl["as_of"][:10]})
    return rows


def version_table(snaps: Sequence[Snapshot]) -> list[dict[str, Any]]:
    """Realized figures per model version within each vintage that more than one version served."""
    rows = []
    for snap in snaps:
        versions = snap.payload.get("versions", {})
        if len(versions) < 2:
            continue
        for version, g in versions.items():
            rows.append({"vintage": snap.period, "mature": bool(snap.payload["mature"]), "model_version": version,
                         "served": f"{g['first_applied'][:10]} to {g['last_applied'][:10]}",
                         "applications": g["applications"], "funded": g["funded"], "with_outcome": g["n"],
                         "defaults": g["defaults"], "bad_rate": g["bad_rate"],
                         "expected_bad_rate": (g.get("expected") or {}).get("mean"), "auc": g["auc"], "ks": g["ks"],
                         "balanced_accuracy": g["balanced_accuracy"], "accuracy": g["accuracy"]})
    return rows


def calibration_summary(snaps: Sequence[Snapshot], arm: str = "all") -> dict[str, Any] | None:
    """Observed against PD-expected defaults pooled over the mature vintages (``None`` if none)."""
    defaults, expected, var, n, periods = 0, 0.0, 0.0, 0, []
    for snap in snaps:
        g = snap.payload.get("arms", {}).get(arm)
        check = (g or {}).get("calibration_check")
        if not snap.payload.get("mature") or not check:
            continue
        defaults += int(check["defaults"])
        expected += float(check["expected_defaults"])
        var += float(check["sd_defaults"]) ** 2
        n += int(check["n"])
        periods.append(snap.period)
    if not n:
        return None
    z = (defaults - expected) / float(np.sqrt(var)) if var > 0 else None
    return {"vintages": periods, "n": n, "defaults": defaults, "expected_defaults": expected,
            "observed": defaults / n, "expected": expected / n, "ratio": defaults / expected if expected else None,
            "z": z}
