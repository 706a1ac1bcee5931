"""Drift: PSI per feature and for the model score, per ISO week and calendar month, stored as snapshots.

Reference. The registry keeps no training rows, only their SHA-256 (``manifest.data``) and the
held-out split (``holdout.parquet``: a random 20% of the same training data that the model never
fitted on). The held-out rows are therefore an unbiased sample of the training distribution, and
the honest reference available for every version: this service uses the **champion's** held-out
rows. Its bins (deciles of each numeric feature, its categories, a missing bin; see
:mod:`backend.monitoring.psi`) and reference counts are fitted once per (version, bins) and stored
as a ``drift_reference`` snapshot, so every period is measured on the same bins.

Score. The score PSI compares the reference model's calibrated PD on the held-out rows with its
PD recomputed on each period's applications (not the stored ``predictions.pd``): when another
version served part of a period (the retrained model of 2025-09-15..24) or a fallback answered,
the comparison stays like for like. It is the classic "score stability" of the scorecard.

Periods. ``refresh`` reads applications in chunks (never the whole book), counts every feature's
bins per *day* in one pass, and sums days into the periods that need recomputing, so
``refresh_all`` reads each application once for both granularities. A stored period is skipped
when its fingerprint (row count, newest ``created_at``, window end, reference key, and the ``book_months``
tokens of the months it overlaps, which change with any write to their rows) is unchanged; the latest period
also when only its window end moved (nothing was written since). Snapshot ``value`` = the largest PSI over
all features and the score; the payload holds every PSI, the bin counts and the reason-code counts.

Reason codes. For each period: the deny recommendations and, per reason code, how many of them
cite it among their principal reasons (``predictions.reasons``); the page shows the shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from backend.compliance import AuditRepository
from backend.domain import REASONS, Actor
from backend.models import HOLDOUT, ModelProvider
from backend.monitoring import drift_queries as q
from backend.monitoring.book_state import overlapping_tokens, scored_month_tokens
from backend.monitoring.config import MonitoringSettings
from backend.monitoring.drift_report import SAMPLE_ROWS, deep_dive_html, load_holdout, score_frame
from backend.monitoring.psi import BinSpec, band, fit_spec, psi_from_counts, spec_counts, specs_from_dict
from backend.monitoring.snapshot_queries import Snapshot, SnapshotRepository
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

KIND, REF_KIND, REF_GRANULARITY = "drift", "drift_reference", "reference"
GRANULARITIES = ("week", "month")
SCORE = "__score__"
METHOD = "psi-v1"  # bump when the binning changes: stored periods are then recomputed
CHUNK_ROWS = 20_000
DAY = timedelta(days=1)

SCORE_LABEL = "Model score (PD)"
BAD_GRANULARITY = "granularity must be 'week' or 'month' (got {granularity!r})."
UNKNOWN_PERIOD = "no drift snapshot for {granularity} {period!r}: run `creditrisk monitor run` or Recompute now"
UNKNOWN_FEATURE = "no stored distribution for feature {feature!r}"
NAIVE_UNTIL = "until must be a timezone-aware (UTC) datetime."


def check_granularity(granularity: str) -> str:
    if granularity not in GRANULARITIES:
        raise ValueError(BAD_GRANULARITY.format(granularity=granularity))
    return granularity


def period_of(at: datetime, granularity: str) -> tuple[str, datetime, datetime]:
    """``(label, start, end)`` of the ISO week (``2025-W37``) or month (``2025-09``) holding ``at`` (UTC)."""
    d = at.astimezone(UTC)
    day = datetime(d.year, d.month, d.day, tzinfo=UTC)
    if check_granularity(granularity) == "week":
        start = day - timedelta(days=day.weekday())
        y, w, _ = start.isocalendar()
        return f"{y}-W{w:02d}", start, start + timedelta(days=7)
    start = day.replace(day=1)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return f"{start:%Y-%m}", start, end


def periods_between(first: datetime, last: datetime, granularity: str) -> list[tuple[str, datetime, datetime]]:
    out = [period_of(first, granularity)]
    while out[-1][2] <= last:
        out.append(period_of(out[-1][2], granularity))
    return out


@dataclass
class Reference:
    version: str
    key: str
    n: int
    kinds: dict[str, str]  # the model's encoder kinds (parsing schema)
    specs: dict[str, BinSpec]  # every feature and SCORE
    counts: dict[str, np.ndarray]
    created_at: datetime
    new: bool = False

    def payload(self, source: dict[str, Any]) -> dict[str, Any]:
        return {"key": self.key, "method": METHOD, "kinds": self.kinds, **source,
                "specs": {k: v.to_dict() for k, v in self.specs.items()},
                "counts": {k: v.tolist() for k, v in self.counts.items()}}


@dataclass
class _Plan:
    granularity: str
    period: str
    start: datetime
    end: datetime
    data_end: datetime  # min(end, until)
    fingerprint: dict[str, Any]


@dataclass
class _Days:
    """Counts per day since ``day0``: rows, every spec's bins, deny recommendations and reason codes."""

    day0: datetime
    n_days: int
    rows: np.ndarray
    bins: dict[str, np.ndarray]
    deny: np.ndarray
    codes: dict[str, np.ndarray] = field(default_factory=dict)

    def index(self, epoch_seconds: Sequence[int]) -> np.ndarray:
        secs = np.asarray(epoch_seconds, dtype=np.int64) - int(self.day0.timestamp())
        return np.clip(secs // 86_400, 0, self.n_days - 1).astype(np.intp)

    def span(self, start: datetime, end: datetime) -> slice:
        d0 = max(0, (start - self.day0) // DAY)
        d1 = -((self.day0 - end) // DAY)  # ceil
        return slice(d0, min(d1, self.n_days))


class DriftService:
    def __init__(self, db: Database, models: ModelProvider, clock: Clock, settings: MonitoringSettings) -> None:
        self.db = db
        self.models = models
        self.clock = clock
        self.settings = settings

    # ------------------------------------------------------------------ reference
    def reference(self) -> Reference:
        """The champion's stored reference, fitted from its held-out rows on first use."""
        version = self.models.resolve("champion")  # the stored reference needs no model loaded
        key = f"{version}:{self.settings.psi_bins}:{METHOD}"
        with self.db.read() as s:
            stored = SnapshotRepository(s).list(REF_KIND, granularity=REF_GRANULARITY, model_version=version)
        for snap in stored:
            p = snap.payload
            if p.get("key") == key:
                return Reference(version, key, snap.n, dict(p["kinds"]), specs_from_dict(p["specs"]),
                                 {k: np.asarray(v, dtype=np.int64) for k, v in p["counts"].items()}, snap.window_start)
        model = self.models.get(version)
        holdout = load_holdout(self.models, model.version)
        kinds = {c: model.kinds.get(c, "numeric") for c in model.columns}
        specs: dict[str, BinSpec] = {}
        counts: dict[str, np.ndarray] = {}
        for c, k in kinds.items():
            col = holdout[c] if c in holdout else pd.Series(np.nan, index=holdout.index)
            values = col.to_numpy() if k == "categorical" else pd.to_numeric(col, errors="coerce").to_numpy(float)
            specs[c] = fit_spec(values, "categorical" if k == "categorical" else "numeric", self.settings.psi_bins)
            counts[c] = spec_counts(values, specs[c])[0]
        pds = score_frame(model, holdout)
        specs[SCORE] = fit_spec(pds, "numeric", self.settings.psi_bins)
        counts[SCORE] = spec_counts(pds, specs[SCORE])[0]
        created = datetime.fromisoformat(str(model.manifest.get("created_at"))) if model.manifest.get(
            "created_at") else self.clock.now()
        return Reference(model.version, key, len(holdout), kinds, specs, counts, created.astimezone(UTC), new=True)

    # ------------------------------------------------------------------ refresh
    def refresh(self, *, granularity: str = "week", until: datetime | None = None, force: bool = False,
                actor: Actor | None = None) -> int:
        """Compute and store the drift snapshots of one granularity; returns how many were written."""
        return self._refresh((check_granularity(granularity),), until, force, actor)

    def refresh_all(self, until: datetime | None = None, *, force: bool = False, actor: Actor | None = None) -> int:
        """:meth:`refresh` for weeks and months, reading each application once."""
        return self._refresh(GRANULARITIES, until, force, actor)

    def _refresh(self, granularities: Sequence[str], until: datetime | None, force: bool,
                 actor: Actor | None) -> int:
        if until is not None and until.tzinfo is None:
            raise ValueError(NAIVE_UNTIL)
        until = (until or self.clock.now()).astimezone(UTC)
        ref = self.reference()
        plans = self._plans(granularities, until, ref, force)
        if not plans and not ref.new and actor is None:
            return 0
        if plans:
            days = self._count_days(ref, plans)
            now = self.clock.now()
        with self.db.transaction() as s:
            repo = SnapshotRepository(s)
            if ref.new:
                repo.put(kind=REF_KIND, granularity=REF_GRANULARITY, period=ref.version, window_start=ref.created_at,
                         window_end=ref.created_at, computed_at=self.clock.now(), n=ref.n, value=None,
                         payload=ref.payload({"source": HOLDOUT}), model_version=ref.version)
                ref.new = False
            for p in plans:
                n, value, payload = self._summary(ref, days, p)
                repo.put(kind=KIND, granularity=p.granularity, period=p.period, window_start=p.start,
                         window_end=p.end, computed_at=now, n=n, value=value, payload=payload,
                         model_version=ref.version)
            if actor is not None:
                AuditRepository(s).append(actor=actor.username, role=actor.role, action="drift_refreshed",
                                          entity_type="monitoring", entity_id=KIND,
                                          payload={"snapshots": len(plans), "reference": ref.version,
                                                   "granularities": list(granularities), "force": force,
                                                   "until": until.isoformat()})
        return len(plans)

    def _plans(self, granularities: Sequence[str], until: datetime, ref: Reference, force: bool) -> list[_Plan]:
        plans: list[_Plan] = []
        with self.db.read() as s:
            span = q.data_span(s, until)
            if span is None:
                return []
            # the tokens of the rows drift reads (applications, predictions): a decision or an outcome does not
            # make a period be read again (migration 0022)
            repo, tokens = SnapshotRepository(s), scored_month_tokens(s)
            for g in granularities:
                stored = {x.period: x for x in repo.list(KIND, granularity=g, model_version=ref.version)}
                periods = periods_between(span[0], span[1], g)
                for i, (label, start, end) in enumerate(periods):
                    data_end = min(end, until)
                    n, last = q.window_stats(s, start, data_end)
                    if n == 0:
                        continue
                    fp = {"n": n, "last_created": last.isoformat() if last else None, "data_end": data_end.isoformat(),
                          "reference": ref.key, "scored_months": overlapping_tokens(tokens, start, data_end)}
                    old = stored.get(label)
                    if not force and old is not None and _unchanged(old.payload, fp, i == len(periods) - 1, data_end >= end):
                        continue
                    plans.append(_Plan(g, label, start, end, data_end, fp))
        return plans

    def _count_days(self, ref: Reference, plans: Sequence[_Plan]) -> _Days:
        day0 = min(p.start for p in plans)
        n_days = max(1, -((day0 - max(p.data_end for p in plans)) // DAY))
        days = _Days(day0, n_days, np.zeros(n_days, np.int64),
                     {k: np.zeros((n_days, s.n_bins), np.int64) for k, s in ref.specs.items()}, np.zeros(n_days, np.int64))
        model = self.models.get(ref.version)
        with self.db.read() as s:
            for start, end in q.merge_ranges([(p.start, p.data_end) for p in plans]):
                for applied, blobs in q.feature_chunks(s, start, end, CHUNK_ROWS):
                    day = days.index(applied)
                    frame = q.parse_features(blobs, ref.kinds)
                    days.rows += np.bincount(day, minlength=n_days)
                    for c in ref.kinds:
                        days.bins[c] += spec_counts(frame[c].to_numpy(), ref.specs[c], day, n_days)
                    days.bins[SCORE] += spec_counts(score_frame(model, frame), ref.specs[SCORE], day, n_days)
                for secs, codes in q.deny_reasons(s, start, end, CHUNK_ROWS):
                    day = days.index(secs)
                    days.deny += np.bincount(day, minlength=n_days)
                    for d, cited in zip(day.tolist(), codes, strict=True):
                        for code in cited:
                            days.codes.setdefault(code, np.zeros(n_days, np.int64))[d] += 1
        return days

    def _summary(self, ref: Reference, days: _Days, p: _Plan) -> tuple[int, float, dict[str, Any]]:
        sl = days.span(p.start, p.data_end)
        counts = {k: v[sl].sum(axis=0) for k, v in days.bins.items()}
        psis = {k: float(psi_from_counts(ref.counts[k], c)) for k, c in counts.items()}
        features = {k: round(v, 6) for k, v in psis.items() if k != SCORE}
        top = max(psis, key=lambda k: psis[k])
        payload = {
            "psi": features, "score_psi": round(psis[SCORE], 6), "max_feature": top,
            "counts": {k: c.tolist() for k, c in counts.items()},
            "reasons": {"deny": int(days.deny[sl].sum()),
                        "codes": {code: int(v[sl].sum()) for code, v in days.codes.items() if v[sl].sum()}},
            "fingerprint": p.fingerprint, "complete": p.data_end >= p.end,
            "reference": {"version": ref.version, "key": ref.key, "n": ref.n},
        }
        return int(days.rows[sl].sum()), round(psis[top], 6), payload



    # ------------------------------------------------------------------ reads (stored snapshots only)
    def _stored(self, granularity: str) -> tuple[str | None, list[Snapshot]]:
        """The reference version of the newest drift snapshots, and its snapshots of ``granularity``."""
        check_granularity(granularity)
        with self.db.read() as s:
            return q.stored_snapshots(s, KIND, granularity)

    def status(self) -> dict[str, Any]:
        """Which reference the stored snapshots use, when they were computed, the champion now."""
        try:
            champion: str | None = self.models.resolve("champion")
        except Exception:  # noqa: BLE001 - no model registered: the page says so
            champion = None
        version, weeks = self._stored("week")
        months = self._stored("month")[1]
        computed = max((x.computed_at for x in [*weeks, *months]), default=None)
        return {"version": version, "champion": champion, "computed_at": computed, "weeks": len(weeks),
                "months": len(months), "stale": bool(version and champion and version != champion)}

    def periods(self, granularity: str) -> list[str]:
        return [x.period for x in self._stored(granularity)[1]]

    def psi_table(self, granularity: str) -> pd.DataFrame:
        """PSI per feature (rows; the score first, as ``SCORE_LABEL``) and period (columns)."""
        snaps = self._stored(granularity)[1]
        data = {x.period: {SCORE_LABEL: x.payload.get("score_psi"), **x.payload.get("psi", {})} for x in snaps}
        return pd.DataFrame(data, dtype=float)

    def series(self, granularity: str) -> pd.DataFrame:
        """One row per period: rows, highest PSI and its feature, score PSI, complete or not."""
        rows = [{"period": x.period, "start": x.window_start, "n": x.n, "max_psi": x.value,
                 "max_feature": SCORE_LABEL if x.payload.get("max_feature") == SCORE else x.payload.get("max_feature"),
                 "score_psi": x.payload.get("score_psi"), "complete": bool(x.payload.get("complete"))}
                for x in self._stored(granularity)[1]]
        return pd.DataFrame(rows, columns=["period", "start", "n", "max_psi", "max_feature", "score_psi", "complete"])

    def top_features(self, granularity: str, period: str, k: int = 10) -> pd.DataFrame:
        """The ``k`` features (and the score) with the highest PSI in ``period``, with their band."""
        col = self.psi_table(granularity).get(period)
        if col is None:
            raise KeyError(UNKNOWN_PERIOD.format(granularity=granularity, period=period))
        top = col.dropna().sort_values(ascending=False).head(k)
        return pd.DataFrame({"feature": top.index, "psi": top.to_numpy(),
                             "band": [band(v, watch=self.settings.psi_watch, act=self.settings.psi_act) for v in top]})

    def distribution(self, granularity: str, period: str, feature: str) -> pd.DataFrame:
        """Reference vs current share per bin of ``feature`` (or ``SCORE_LABEL``) in ``period``."""
        version, snaps = self._stored(granularity)
        snap = next((x for x in snaps if x.period == period), None)
        if snap is None:
            raise KeyError(UNKNOWN_PERIOD.format(granularity=granularity, period=period))
        key = SCORE if feature == SCORE_LABEL else feature
        with self.db.read() as s:
            refs = SnapshotRepository(s).list(REF_KIND, granularity=REF_GRANULARITY, model_version=version)
        ref = next((r.payload for r in refs if r.payload.get("key") == snap.payload["reference"]["key"]), None)
        if ref is None or key not in ref["specs"] or key not in snap.payload["counts"]:
            raise KeyError(UNKNOWN_FEATURE.format(feature=feature))
        r = np.asarray(ref["counts"][key], dtype=float)
        c = np.asarray(snap.payload["counts"][key], dtype=float)
        return pd.DataFrame({"bin": BinSpec.from_dict(ref["specs"][key]).labels(),
                             "reference": r / max(r.sum(), 1.0), "current": c / max(c.sum(), 1.0)})

    def reason_shares(self, granularity: str, top: int = 6) -> pd.DataFrame:
        """Per period, the share of deny recommendations citing each of the ``top`` most cited codes."""
        snaps = self._stored(granularity)[1]
        totals: dict[str, int] = {}
        for x in snaps:
            for code, n in x.payload.get("reasons", {}).get("codes", {}).items():
                totals[code] = totals.get(code, 0) + int(n)
        codes = sorted(totals, key=lambda c: -totals[c])[:top]
        rows = []
        for x in snaps:
            r = x.payload.get("reasons", {})
            deny = int(r.get("deny", 0))
            for code in codes:
                cited = int(r.get("codes", {}).get(code, 0))
                rows.append({"period": x.period, "code": code, "reason": REASONS.get(code, code), "deny": deny,
                             "cited": cited, "share": cited / deny if deny else None})
        return pd.DataFrame(rows, columns=["period", "code", "reason", "deny", "cited", "share"])

    def latest_max_psi(self, before: datetime | None = None) -> tuple[float, str] | None:
        """Highest PSI of the newest week starting before ``before`` that has at least
        ``thresholds.min_rows`` applications (a PSI over a few hours of a new week is noise); the
        newest such month when no week has enough rows; None when nothing qualifies."""
        least = self.settings.thresholds.min_rows
        for g in GRANULARITIES:
            snaps = [x for x in self._stored(g)[1] if (before is None or x.window_start < before)
                     and x.n >= least and x.value is not None]
            if snaps:
                return float(snaps[-1].value), snaps[-1].period  # type: ignore[arg-type]
        return None

    def deep_dive(self, granularity: str, period: str, *, rows: int = SAMPLE_ROWS, features: int = 20) -> str:
        """Evidently's data-drift report (HTML) of one stored period against the reference, on the
        period's ``features`` highest-PSI features and the model score (evidently's per-column
        rendering is what takes time)."""
        version, snaps = self._stored(granularity)
        snap = next((x for x in snaps if x.period == period), None)
        if snap is None or version is None:
            raise KeyError(UNKNOWN_PERIOD.format(granularity=granularity, period=period))
        with self.db.read() as s:
            refs = SnapshotRepository(s).list(REF_KIND, granularity=REF_GRANULARITY, model_version=version)
        kinds = refs[-1].payload["kinds"] if refs else dict(self.models.get(version).kinds)
        psis = snap.payload.get("psi", {})
        chosen = sorted((c for c in kinds if c in psis), key=lambda c: -psis[c])[:max(1, features)]
        kinds = {c: kinds[c] for c in chosen}
        end = datetime.fromisoformat(snap.payload.get("fingerprint", {}).get("data_end") or snap.window_end.isoformat())
        return deep_dive_html(self.db, self.models, version, kinds, snap.window_start, end, rows=rows,
                              threshold=self.settings.psi_act)


def _unchanged(payload: dict[str, Any], fp: dict[str, Any], latest: bool, complete: bool) -> bool:
    """A stored period that reading again would give again: the same fingerprint; for the latest period, the
    same but for its window end (its rows unchanged, so only the cut moved) while it stays as (in)complete."""
    old = payload.get("fingerprint") or {}
    if not latest:
        return bool(old == fp)
    return payload.get("complete") == complete and {**old, "data_end": None} == {**fp, "data_end": None}
