"""Fairness monitoring: stored snapshots of group fairness per month and per rollout phase.

``refresh`` reads the book a month at a time (the columns of :mod:`backend.monitoring.fairness_queries`; a
month whose token is unchanged is not read again, :mod:`backend.monitoring.book_state`), collapses each into
weighted cells and stores a ``fairness`` snapshot per month and per rollout phase, which page, report and rule read.

A snapshot's ``value`` is the lowest disparate-impact ratio at the final-decision stage across sex,
age band and race/ethnicity among judged groups (``fairness_min_group`` applications or more), or
``None`` when no group can be judged. The threshold (0.80 by default) is an internal screening
threshold (the four-fifths rule of thumb), not a legal finding.

**Disparate impact and its interval have one definition**, :func:`disparate_impact_of` (a period's
figure from its snapshot): the Fairness page's headline, the fairness report (HTML and PDF), the
fairness alert rule and the readiness check (through :meth:`FairnessService.latest_min_di`) and the
phase comparison's fairness guardrail (:meth:`FairnessService.for_period`) all read it.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from backend.compliance import AuditRepository
from backend.domain import Actor
from backend.monitoring import fairness_queries as fq
from backend.monitoring.book_state import NEVER_WRITTEN, BookState, RowMemo, book_state
from backend.monitoring.config import MonitoringSettings
from backend.monitoring.fairness_metrics import (
    ATTRIBUTES,
    CI_LEVEL,
    INTERSECTIONS,
    STAGES,
    Part,
    attribute_key,
    di_intervals,
    disparate_impact,
    finite,
    gap,
    judged,
    shares,
    tpr_fpr,
)
from backend.monitoring.snapshot_queries import Snapshot, SnapshotRepository
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

KIND = "fairness"
SCHEMA = 1
SEED = 20_250_801  # base seed of the bootstrap; each period/table adds its own offset (reproducible)
VIEWS = {
    "all": "All decided applications",
    "ai": "AI arm (the officer saw the model)",
    "blind": "Without the AI (control arm, excluded, shadow mode: the officer decided without seeing the model)",
}
THRESHOLD_LABEL = "internal screening threshold (four-fifths), not a legal finding"
SMALL_LABEL = "too small to judge"
NOT_PROVIDED_LABEL = "answer not provided: shown, not judged"
REFERENCE_NOTE = ("Disparate-impact ratio = a group's selection rate / the selection rate of the most favoured judged "
                  "group (the highest rate among groups with at least {min_group} applications; 'not provided' "
                  "answers are shown but never judged nor used as the reference).")
BLIND_NOTE = ("In the control arm, for excluded applications and in shadow mode the officer decided without seeing "
              "the model: stages 1-2 there are the model's silent recommendation, stage 3 the officer's own judgement.")
ERROR_NOTE = ("TPR/FPR on funded loans with a recorded outcome: the stage's favourable result is the prediction and "
              "'repaid' the positive label (TPR = P(favourable | repaid), FPR = P(favourable | defaulted)). Only "
              "approved loans are funded, so the officer and final stages are favourable for (nearly) all of them "
              "(TPR = FPR = 1, gaps 0): the informative rows are the model and policy stages, and they describe the "
              "approved book, not all applicants. Recent vintages are immature: defaults still to come count as "
              "repaid.")
NO_SNAPSHOTS = ("No fairness snapshots yet. They are computed by `creditrisk monitor run` (schedulable by cron) or by "
                "the 'Recompute now' button below.")
BAD_UNTIL = "until must be a timezone-aware datetime."


@dataclass(frozen=True)
class DisparateImpact:
    """A period's lowest disparate-impact ratio at the final decision, with its interval (see
    :func:`disparate_impact_of`)."""

    value: float
    low: float | None  # percentile bootstrap interval at ``level``; None when undefined
    high: float | None
    attribute: str
    group: str
    reference: str
    granularity: str  # month | phase
    period: str
    n: int  # decided applications of the period
    level: float
    threshold: float | None
    window_start: datetime
    window_end: datetime
    computed_at: datetime

    @property
    def detail(self) -> dict[str, Any]:
        """The figure as the alert and the readiness check record it (JSON-safe)."""
        return {"value": self.value, "attribute": self.attribute, "group": self.group, "stage": "final",
                "reference": self.reference, "ci_lo": self.low, "ci_hi": self.high, "view": "all",
                "window_start": self.window_start.isoformat(), "window_end": self.window_end.isoformat(), "n": self.n,
                "threshold": self.threshold, "computed_at": self.computed_at.isoformat()}


def disparate_impact_of(snap: Snapshot) -> DisparateImpact | None:
    """The disparate-impact figure of one fairness snapshot (a month or a rollout phase): the one
    definition of this figure.

    Value: the lowest disparate-impact ratio at the **final decision** among all decided applications
    of the period, across sex, age band and race/ethnicity (intersections are not part of it), over
    *judged* groups only (``fairness_min_group`` applications or more, answer provided); a group's
    ratio is its approval rate divided by that of the most favoured judged group of the same
    attribute. Interval: the percentile bootstrap interval (``ci_level``, resampling within each group,
    seeded) of that group's ratio against that reference. ``None`` when no group can be judged (or
    the snapshot is not a fairness snapshot).
    """
    low = snap.payload.get("min_di") if snap.kind == KIND else None
    if not low or low.get("value") is None:
        return None
    return DisparateImpact(float(low["value"]), finite(low.get("ci_lo")), finite(low.get("ci_hi")),
                           str(low.get("attribute")), str(low.get("group")), str(low.get("reference")),
                           snap.granularity, snap.period, int(snap.n), float(snap.payload.get("ci_level", CI_LEVEL)),
                           snap.payload.get("threshold"), snap.window_start, snap.window_end, snap.computed_at)


def lowest_di_by_arm(snap: Snapshot) -> dict[str, tuple[float, float | None, float | None]]:
    """The lowest final-decision disparate-impact ratio (and its interval) of the AI arm (``"ai"``: the AI
    card was shown) and of the applications decided without it (``"control"``), same definition as
    :func:`disparate_impact_of` within each (sex, age band, race/ethnicity; judged groups)."""
    st = pd.DataFrame(snap.payload.get("stages") or {}) if snap.kind == KIND else pd.DataFrame()
    out: dict[str, tuple[float, float | None, float | None]] = {}
    if st.empty:
        return out
    st = st[(st["stage"] == "final") & st["attribute"].isin(ATTRIBUTES) & st["min_di"].notna()]
    for view, arm in (("ai", "ai"), ("blind", "control")):
        part = st[st["view"] == view]
        if len(part):
            r = part.loc[part["min_di"].astype(float).idxmin()]
            out[arm] = (float(r["min_di"]), finite(r["ci_lo"]), finite(r["ci_hi"]))
    return out


class FairnessService:
    def __init__(self, db: Database, clock: Clock, settings: MonitoringSettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self._rows = RowMemo()  # each month's cells while its token is unchanged (Run checks now, the weekly runs)

    # -- writes ------------------------------------------------------------------------------------
    def refresh(self, *, until: datetime | None = None, force: bool = False, actor: Actor | None = None) -> int:
        """Recompute and store the fairness snapshots of every month and phase with applications
        made before ``until`` (default: now). Returns the number of snapshots written.

        Every month is read again (decisions and outcomes arrive late); a period whose cells,
        counts and settings are unchanged keeps its figures (``force`` recomputes them anyway).
        With an earlier ``until`` (an as-of evaluation) the periods up to it are rewritten, the month
        holding ``until`` cut there; later periods keep their figures until the next refresh.
        ``actor``: who asked (the console's "Recompute now"); recorded in an audit row in the same
        transaction as the snapshots.
        """
        if until is not None and until.tzinfo is None:
            raise ValueError(BAD_UNTIL)
        until = until or self.clock.now()
        started = time.perf_counter()
        months: list[fq.MonthCells] = []
        phases: dict[str, tuple[datetime, datetime, int]] = {}
        with self.db.read() as s:
            stored = {(x.granularity, x.period): x.payload for x in SnapshotRepository(s).list(KIND)}
            first = fq.first_applied(s, until)
            if first is not None:
                state = book_state(s)
                months = [self._month(s, state, lo, hi, stored.get(("month", f"{lo:%Y-%m}")))
                          for lo, hi in fq.month_windows(first, until)]
                phases = fq.phase_windows(s, until)
        jobs = [("month", f"{m.start:%Y-%m}", m.start, m.end, m.cells,
                 {"applications": m.applications, "undecided": m.in_flight + m.unscored, "in_flight": m.in_flight,
                  "unscored": m.unscored}) for m in months if m.applications]
        jobs += fq.phase_jobs(months, phases)
        now = self.clock.now()
        kept = {f"{m.start:%Y-%m}": fq.stored_read(m) for m in months if m.token is not None}
        snaps: list[dict[str, Any]] = []
        reused = 0
        for gran, period, lo, hi, cells, extra in jobs:
            digest = self._digest(cells, extra)
            payload = stored.get((gran, period))
            if force or payload is None or payload.get("cells_hash") != digest:
                payload = self.summarize(cells, seed=_seed(gran, period))
                payload["population"].update(extra)
                payload["cells_hash"] = digest
            else:
                reused += 1
            payload["window"] = {"start": lo.isoformat(), "end": hi.isoformat()}
            payload.pop("read", None)
            if gran == "month" and period in kept:
                payload["read"] = kept[period]
            snaps.append(dict(granularity=gran, period=period, window_start=lo, window_end=hi, payload=payload))
        with self.db.transaction() as s:
            repo = SnapshotRepository(s)
            for sn in snaps:
                p = sn["payload"]
                repo.put(kind=KIND, computed_at=now, n=int(p["population"]["decided"]),
                         value=(p["min_di"] or {}).get("value"), **sn)
            if actor is not None:
                AuditRepository(s).append(
                    actor=actor.username, role=actor.role, action="fairness_refreshed", entity_type="monitor_snapshot",
                    entity_id=KIND, at=now,
                    payload={"until": until.isoformat(), "snapshots": len(snaps), "unchanged": reused,
                             "periods": [f"{sn['granularity']}:{sn['period']}" for sn in snaps],
                             "seconds": round(time.perf_counter() - started, 3)})
        return len(snaps)

    def _month(self, s: Any, state: BookState, lo: datetime, hi: datetime, kept: dict[str, Any] | None) -> fq.MonthCells:
        """One month's cells, read again only if its token changed (:class:`RowMemo`, else the cells its stored
        snapshot kept, ``kept``); the last month is cut at ``until``."""
        cut, token = (hi if hi < fq.month_end(lo) else None), state.month(lo)
        if token == NEVER_WRITTEN:  # no row of the month was ever written: nothing to read
            return fq.MonthCells(lo, hi, *fq.to_cells(pd.DataFrame()))
        m = self._rows.rows(lo, token, lambda: (None if cut else fq.stored_cells(kept, token, lo, hi))
                            or fq.month_cells(s, lo, hi), until=cut, latest=state.latest)
        return replace(m, end=hi, token=None if cut else token)

    def _digest(self, cells: pd.DataFrame, extra: dict[str, Any]) -> str:
        """A fingerprint of a period's cells, counts and settings: unchanged periods are not recomputed
        (decisions and outcomes arrive late, so every period is read again; only changed ones are redone)."""
        h = hashlib.sha256(f"{SCHEMA}|{self.settings.fairness_threshold}|{self.settings.fairness_min_group}|"
                           f"{self.settings.bootstrap_samples}|{sorted(extra.items())}".encode())
        if len(cells):
            c = cells.sort_values(list(fq.CELL_KEYS), ignore_index=True)[[*fq.CELL_KEYS, "w"]]
            h.update(pd.util.hash_pandas_object(c, index=False).to_numpy().tobytes())
        return h.hexdigest()

    # -- the numbers of one period -------------------------------------------------------------------
    def summarize(self, cells: pd.DataFrame, *, seed: int = SEED) -> dict[str, Any]:
        """The payload of one snapshot from weighted cells (see :mod:`fairness_queries`): two
        stacked :func:`shares` calls (stage rates; outcome and override shares: fairlearn's weighted
        selection rates), the DI ratios and their bootstrap intervals. Tables are stored column-wise
        (``{"column": [values...]}``; ``pandas.DataFrame(table)`` reads one)."""
        st = self.settings
        if len(cells):
            cells = cells[cells["w"] > 0].astype({c: bool for c in fq.FLAG_KEYS})
        views = {"all": cells, "ai": cells[cells["ai"]], "blind": cells[~cells["ai"]]} if len(cells) else {}
        keys = [*ATTRIBUTES, *(attribute_key(i) for i in INTERSECTIONS)]
        parts = [(key, f"{view}|{stage}", sub, stage) for key in keys for view, sub in views.items()
                 if len(sub) and (view == "all" or key in ATTRIBUTES) for stage in STAGES]
        sh = shares(parts)
        rates: list[dict[str, Any]] = []
        stages: list[dict[str, Any]] = []
        for i, ((key, name), g) in enumerate(sh.groupby(["attribute", "stage"], sort=False)):
            view, stage = name.split("|")
            r, sm = self._stage(view, str(key), stage, g, seed + i)
            rates += r
            stages.append(sm)
        known = cells[cells["known"]] if len(cells) else cells
        ai = views.get("ai", cells)
        headline = [x for x in stages if x["view"] == "all" and x["stage"] == "final"
                    and x["attribute"] in ATTRIBUTES and x["min_di"] is not None]
        low = min(headline, key=lambda x: x["min_di"], default=None)
        return {
            "schema": SCHEMA, "threshold": st.fairness_threshold, "min_group": st.fairness_min_group,
            "bootstrap_samples": st.bootstrap_samples, "ci_level": CI_LEVEL, "seed": seed,
            "population": {"decided": _w(cells), "ai": _w(ai), "blind": _w(views.get("blind", cells)),
                           "funded_known": _w(known), "by_arm": _sums(cells, "arm"), "by_phase": _sums(cells, "phase")},
            "min_di": None if low is None else {
                "value": low["min_di"], "attribute": low["attribute"], "group": low["group"], "stage": "final",
                "reference": low["reference"], "ci_lo": low["ci_lo"], "ci_hi": low["ci_hi"], "view": "all"},
            "rates": _columns(rates), "stages": _columns(stages), **self._outcomes(known, ai),
        }

    def _stage(self, view: str, key: str, stage: str, g: pd.DataFrame,
               seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        st = self.settings
        groups = g["group"].tolist()
        n, k, rate = g["n"].to_numpy(), g["favourable"].to_numpy(), g["rate"].to_numpy(dtype=float)
        ok = judged(groups, n, st.fairness_min_group)
        di, ref = disparate_impact(rate, ok)
        ci = di_intervals(n, k, ref, samples=st.bootstrap_samples, seed=seed)
        rows = [{"view": view, "attribute": key, "group": groups[i], "stage": stage, "n": int(n[i]),
                 "favourable": int(k[i]), "rate": finite(rate[i]), "rate_lo": finite(ci["rate_lo"][i]),
                 "rate_hi": finite(ci["rate_hi"][i]), "di": finite(di[i]), "di_lo": finite(ci["di_lo"][i]),
                 "di_hi": finite(ci["di_hi"][i]), "judged": bool(ok[i]), "reference": ref == i}
                for i in range(len(groups))]
        cand = np.where(ok & np.isfinite(di), di, np.inf)
        low = int(np.argmin(cand)) if np.isfinite(cand).any() else None
        summary = {"view": view, "attribute": key, "stage": stage,
                   "min_di": finite(di[low]) if low is not None else None,
                   "group": groups[low] if low is not None else None,
                   "reference": groups[ref] if ref is not None else None,
                   "reference_rate": finite(rate[ref]) if ref is not None else None,
                   "ci_lo": finite(ci["di_lo"][low]) if low is not None else None,
                   "ci_hi": finite(ci["di_hi"][low]) if low is not None else None,
                   "groups_judged": int(ok.sum()), "groups_small": int((~ok).sum())}
        return rows, summary

    def _outcomes(self, known: pd.DataFrame, ai: pd.DataFrame) -> dict[str, Any]:
        """TPR/FPR per stage and default rates among funded loans with a known outcome; override
        rates by group in the AI arm (the officer's first decision; towards approval or caution)."""
        mg = self.settings.fairness_min_group
        parts: list[Part] = []
        if len(known):
            known = known.assign(defaulted=~known["repaid"])
            good, bad = known[known["repaid"]], known[~known["repaid"]]
            parts += [(key, f"{kind}|{stage}", sub, stage) for key in ATTRIBUTES for stage in STAGES
                      for kind, sub in (("tpr", good), ("fpr", bad))]
            parts += [(key, "defaulted", known, "defaulted") for key in ATTRIBUTES]
        if len(ai):
            ai = ai.assign(to_approve=ai["override"] & ai["officer"])
            parts += [(key, name, ai, name) for key in ATTRIBUTES for name in ("override", "to_approve")]
        sh = shares(parts)
        out: dict[str, list[dict[str, Any]]] = {k: [] for k in ("errors", "error_gaps", "defaults", "default_gaps",
                                                                 "overrides")}
        for key in ATTRIBUTES:
            mine = sh[sh["attribute"] == key]
            er = tpr_fpr(mine)
            for stage in STAGES if len(er) else ():
                e = er[er["stage"] == stage]
                jt = judged(e["group"].tolist(), e["positives"].to_numpy(), mg)
                jf = judged(e["group"].tolist(), e["negatives"].to_numpy(), mg)
                out["errors"] += [{"attribute": key, "group": r.group, "stage": stage, "n": int(r.n),
                                   "repaid": int(r.positives), "defaulted": int(r.negatives), "tpr": finite(r.tpr),
                                   "fpr": finite(r.fpr), "judged_tpr": bool(jt[i]), "judged_fpr": bool(jf[i])}
                                  for i, r in enumerate(e.itertuples(index=False))]
                tg, fg = gap(e["tpr"].to_numpy(), jt), gap(e["fpr"].to_numpy(), jf)
                both = [x for x in (tg, fg) if x is not None]
                out["error_gaps"].append({"attribute": key, "stage": stage, "tpr_gap": tg, "fpr_gap": fg,
                                          "equalized_odds_difference": max(both) if both else None})
            d = mine[mine["stage"] == "defaulted"]
            jd = judged(d["group"].tolist(), d["n"].to_numpy(), mg)
            out["defaults"] += [{"attribute": key, "group": r.group, "funded_known": int(r.n),
                                 "defaults": int(r.favourable), "default_rate": finite(r.rate), "judged": bool(jd[i])}
                                for i, r in enumerate(d.itertuples(index=False))]
            if len(d):
                out["default_gaps"].append({"attribute": key, "gap": gap(d["rate"].to_numpy(), jd)})
            o = mine[mine["stage"] == "override"]
            up = mine[mine["stage"] == "to_approve"].set_index("group")["favourable"]
            jo = judged(o["group"].tolist(), o["n"].to_numpy(), mg)
            out["overrides"] += [{"attribute": key, "group": r.group, "decisions": int(r.n),
                                  "overrides": int(r.favourable), "override_rate": finite(r.rate),
                                  "to_approve": int(up.get(r.group, 0)),
                                  "to_caution": int(r.favourable) - int(up.get(r.group, 0)), "judged": bool(jo[i])}
                                 for i, r in enumerate(o.itertuples(index=False))]
        return {k: _columns(v) for k, v in out.items()}

    # -- reads ---------------------------------------------------------------------------------------
    def snapshots(self, granularity: str | None = None) -> list[Snapshot]:
        """Stored fairness snapshots in window order (the page and the report read these only)."""
        with self.db.read() as s:
            return list(SnapshotRepository(s).list(KIND, granularity=granularity))

    def for_period(self, granularity: str, period: str) -> DisparateImpact | None:
        """:func:`disparate_impact_of` of one stored period (``None`` when not computed or nothing judged)."""
        with self.db.read() as s:
            snap = SnapshotRepository(s).get(KIND, granularity, period)
        return disparate_impact_of(snap) if snap is not None else None

    def latest(self, before: datetime | None = None, granularity: str = "month") -> DisparateImpact | None:
        """:func:`disparate_impact_of` of the newest period (window starting before ``before``) with a judged group."""
        with self.db.read() as s:
            rows = SnapshotRepository(s).list(KIND, granularity=granularity, until=before)
        return next((d for d in (disparate_impact_of(x) for x in reversed(rows)) if d is not None), None)

    def latest_min_di(self, before: datetime | None = None) -> tuple[float, str, dict[str, Any]] | None:
        """The alert rule's and the readiness check's figure: :meth:`latest` month as ``(lowest DI, period,
        details)``; details name the attribute, group, stage, reference, interval, window and threshold."""
        d = self.latest(before)
        return None if d is None else (d.value, d.period, d.detail)


def _seed(granularity: str, period: str) -> int:
    return SEED + zlib.crc32(f"{granularity}:{period}".encode()) % 1_000_000 * 10_000


def _w(cells: pd.DataFrame) -> int:
    return int(cells["w"].sum()) if len(cells) else 0


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows to a column-wise table (smaller JSON; floats rounded to 6 decimals)."""
    if not rows:
        return {}
    return {k: [round(r[k], 6) if isinstance(r[k], float) else r[k] for r in rows] for k in rows[0]}


def _sums(cells: pd.DataFrame, col: str) -> dict[str, int]:
    if not len(cells):
        return {}
    return {str(k): int(v) for k, v in cells.groupby(col, sort=True)["w"].sum().items()}
