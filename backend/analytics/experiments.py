"""Phase comparison: AI vs control per rollout phase, criteria, guardrails and the advance verdict.

Every figure comes from the records (SQL in :mod:`backend.analytics.experiments_queries`, whose
docstring defines agreement, override, AI card shown, time to decision and latency; the result
types and the definitions shown on the page are in :mod:`backend.analytics.experiments_model`).
Rates carry Wilson intervals, differences Newcombe intervals, times a bootstrap interval and a
Mann-Whitney test, and the weekly AI-vs-control difference an always-valid confidence sequence
(:mod:`backend.analytics`), so a lead may look every week.

Which rows: criteria of the shadow phase read its only arm (the model scores silently); other
phases read the AI arm. Guardrails read the whole phase. Default rates: a funded loan is *matured*
when it was decided at least ``maturity_months`` before the outcome feed's latest observation, and
its default counts when observed within that many months; younger loans give a rate *observed to
date*, labelled so (within a phase both arms are equally young, so comparing them is fair). NPS:
survey months map to the phase in force mid-month.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from backend.analytics import experiments_queries as q
from backend.analytics import stats
from backend.analytics.config import AnalyticsSettings
from backend.analytics.error_rate import error_rates_by_phase_arm
from backend.analytics.experiments_model import (
    COMPARED,
    COUNT_KEYS,
    METRICS,
    MIN_DECISIONS,
    NO_AI_ARM,
    NO_BASELINE,
    NOT_APPLICABLE,
    NOT_COMPUTED,
    NOT_COMPUTED_VERDICT,
    POWER_METRICS,
    SERIES,
    UNKNOWN_METRIC,
    UNKNOWN_PHASE,
    Advice,
    ArmSummary,
    Check,
    Comparison,
    ComparisonRow,
    Figure,
    Overview,
    PhaseReport,
    PowerPlan,
    SurveySummary,
    TimeComparison,
    arm_figures,
    by_week,
    check_text,
    criterion_arm,
    finite,
    jsonable,
    rate,
    sequence,
    survey_summaries,
)
from backend.analytics.experiments_months import MonthReads
from backend.analytics.latency import end_to_end_p95_by_phase
from backend.analytics.phase_verdict import advise
from backend.compliance import AuditRepository
from backend.monitoring import (
    DisparateImpact,
    MonitoringSettings,
    SnapshotRepository,
    disparate_impact_of,
    lowest_di_by_arm,
)
from backend.platform.db.engine import Database
from backend.platform.ports import Clock
from backend.rollout import PHASE_LABELS, PHASES, AcceptanceService

SNAPSHOT_KIND, SNAPSHOT_GRANULARITY = "phase_comparison", "all"
#: After the records change, the last count keeps being served (dated, marked stale) for this long.
RECOUNT_AFTER = timedelta(minutes=15)
#: Part of the fingerprint: a stored count made under older figure definitions is counted again.
DEFINITIONS_VERSION = 2
BAD_SHARE = "The planned AI share must be between 0.01 and 0.99 (got {share})."
#: a phase's fairness snapshot missing is computed on demand, at most this often (it reads the book)
FAIRNESS_RETRY = timedelta(minutes=5)
NO_FAIRNESS = ("Fairness ratio: no group of this phase's decided applications is large enough to judge yet "
               "(computed just now from the records)")


class ExperimentService:
    def __init__(self, db: Database, clock: Clock, analytics: AnalyticsSettings, monitoring: MonitoringSettings,
                 *, acceptances: AcceptanceService | None = None,
                 fairness: Callable[[], Any] | None = None) -> None:
        """``fairness``: returns the FairnessService, whose ``refresh`` computes a missing phase snapshot
        on demand; ``acceptances``: the accepted adverse differences the verdict reads."""
        self.db = db
        self.clock = clock
        self.settings = analytics
        self.monitoring = monitoring
        self.acceptances = acceptances or AcceptanceService(db, clock)
        self._fairness = fairness
        self._fairness_tried: datetime | None = None
        self._lock = threading.Lock()
        self._memo: tuple[list[str], dict[str, Any]] | None = None
        self._months = MonthReads()  # each month's counts and decision times while its token is unchanged
        self._arm_fairness: dict[str, dict[str, tuple[float, float | None, float | None]]] = {}

    # -- counting (once per change of the records) --------------------------------------------------
    def _fingerprint(self, s: Any) -> list[str]:
        return [*q.fingerprint(s), f"alpha={self.settings.alpha}", f"maturity={self.monitoring.maturity_months}",
                f"definitions={DEFINITIONS_VERSION}"]

    def _compute(self, s: Any) -> dict[str, Any]:
        """Every count and test the page needs, as JSON (the SQL of one pass over the book)."""
        months, alpha = self.monitoring.maturity_months, self.settings.alpha
        as_of = q.outcomes_as_of(s)
        cutoff = (pd.Timestamp(as_of) - pd.DateOffset(months=months)).to_pydatetime() if as_of else None
        raw, times = self._months.read(s, cutoff, months)  # only the months that changed
        ai_users = sorted({f"{r['officer_id']}|{r['month']}" for r in raw if r["arm"] == "ai" and r["applications"]})
        weekly = by_week(raw)
        time_q = [[p, a, *(float(x) for x in np.quantile(v, [0.5, 0.95]))] for (p, a), v in times.items()]
        tests, latency = {}, {}
        ai_phases = sorted({r["phase"] for r in weekly if r["arm"] == "ai"})
        by_phase = end_to_end_p95_by_phase(s, ai_phases, arm="ai", alpha=alpha)  # the Latency page's figure
        for phase, lat in by_phase.items():
            latency[phase] = jsonable(Figure(lat.p95_s, lat.low_s, lat.high_s, lat.n))
            t_ai, t_ctl = np.array(times.get((phase, "ai"), [])), np.array(times.get((phase, "control"), []))
            if t_ai.size and t_ctl.size:
                mw, prob = stats.mann_whitney(t_ai, t_ctl)
                boot = stats.bootstrap_median_diff(t_ai, t_ctl, alpha=alpha, seed=0)
                tests[phase] = jsonable(TimeComparison(
                    float(np.median(t_ai)), float(np.median(t_ctl)), float(np.quantile(t_ai, 0.95)),
                    float(np.quantile(t_ctl, 0.95)), Figure.of(boot, int(t_ai.size + t_ctl.size)), mw.p_value, prob))
        return {"counted_at": self.clock.now().isoformat(), "as_of": as_of.isoformat() if as_of else None, "cutoff": cutoff.isoformat() if cutoff else None,
                "weekly": [{**r, "week": r["week"].isoformat()} for r in weekly], "ai_users": ai_users,
                "llm": q.llm_counts(s), "feedback": q.feedback_counts(s), "surveys": q.surveys(s),
                "errors": [{"phase": p, "arm": a, "requests": e.requests, "request_errors": e.errors}
                           for (p, a), e in error_rates_by_phase_arm(s).items()],
                "time_q": time_q, "latency": latency, "time_tests": tests}

    def _data(self, *, force: bool = False) -> tuple[dict[str, Any], str, bool, list[q.PhaseWindow],
                                                     dict[str, DisparateImpact | None]]:
        """The counts, from memory or the stored snapshot while the records are unchanged; after a
        change, the last count is still served (marked stale) until it is :data:`RECOUNT_AFTER` old,
        so live traffic cannot make every page view recount the book. Rollout windows and fairness
        snapshots are read every time (cheap)."""
        now = self.clock.now()
        with self.db.read() as s:
            fp = self._fingerprint(s)
            found: list[tuple[tuple[list[str], dict[str, Any]], str]] = [(self._memo, "memo")] if self._memo else []
            if not found or found[0][0][0] != fp:
                snap = SnapshotRepository(s).latest(SNAPSHOT_KIND, granularity=SNAPSHOT_GRANULARITY)
                if snap is not None and "data" in snap.payload:
                    found.append(((list(snap.payload.get("fingerprint") or []), snap.payload["data"]), "snapshot"))
            exact = next((f for f in found if f[0][0] == fp), None)
            recent = max(found, key=lambda f: str(f[0][1].get("counted_at")), default=None)
            chosen = exact or (recent if recent and now - _counted(recent[0][1]) < RECOUNT_AFTER else None)
            if force or chosen is None:
                memo, source, stale = (fp, self._compute(s)), "computed", False
            else:
                memo, source, stale = chosen[0], chosen[1], exact is None
            with self._lock:
                self._memo = memo
            windows = q.phase_windows(s)
        fairness = self._phase_fairness(windows, {r["phase"] for r in memo[1]["weekly"] if r.get("decided")})
        return memo[1], source, stale, windows, fairness

    def _phase_fairness(self, windows: list[q.PhaseWindow], decided: set[str]) -> dict[str, DisparateImpact | None]:
        """Each phase's fairness figure from its snapshot (the Fairness page's); a phase with decided
        applications but no snapshot has it computed now (at most every :data:`FAIRNESS_RETRY`)."""
        phases = {w.phase for w in windows}
        for attempt in (0, 1):
            with self.db.read() as s:
                repo = SnapshotRepository(s)
                snaps = {p: repo.get("fairness", "phase", p) for p in phases}
            missing = [p for p, sn in snaps.items() if sn is None and p in decided]
            now = self.clock.now()
            if attempt or not missing or self._fairness is None or (
                    self._fairness_tried is not None and now - self._fairness_tried < FAIRNESS_RETRY):
                break
            self._fairness_tried = now
            self._fairness().refresh()
        self._arm_fairness = {p: lowest_di_by_arm(sn) for p, sn in snaps.items() if sn is not None}
        return {p: disparate_impact_of(sn) if sn is not None else None for p, sn in snaps.items()}

    def refresh(self, *, actor: Any = None, until: datetime | None = None, force: bool = False) -> int:
        """Count now and store the result (for ``creditrisk monitor run`` or the page's button; ``actor``
        has ``username`` and ``role``, default the monitor): pages then read it until the records
        change. The counting reads in its own session; the write is one short transaction with its
        audit row. ``until`` is accepted for the monitor's uniform call and does not filter: the
        comparison always counts every record. Returns the applications counted.

        When the records' fingerprint is the one of the last count (in memory or in the stored snapshot),
        that count is the count of these records and is stored again as counted now, without reading the
        book (the "Run checks now" of an unchanged book); ``force`` counts anyway."""
        with self.db.read() as s:  # the fingerprint and the counts from the same read
            fp = self._fingerprint(s)
            same = None if force else self._count_of(s, fp)
            data = self._compute(s) if same is None else {**same, "counted_at": self.clock.now().isoformat()}
        now = self.clock.now()
        n = sum(int(r["applications"]) for r in data["weekly"])
        weeks = sorted(r["week"] for r in data["weekly"])
        start = datetime.fromisoformat(weeks[0]).replace(tzinfo=UTC) if weeks else now
        who, role = (actor.username, actor.role) if actor is not None else ("monitor", "system")
        with self.db.transaction() as s:
            SnapshotRepository(s).put(kind=SNAPSHOT_KIND, granularity=SNAPSHOT_GRANULARITY, period="all",
                                      window_start=start, window_end=now, computed_at=now, n=n, value=None,
                                      payload={"fingerprint": fp, "data": data})
            self._months.keep(s, now)
            AuditRepository(s).append(actor=who, role=role, action="phase_comparison_refreshed",
                                      entity_type="monitor_snapshot", entity_id=SNAPSHOT_KIND,
                                      payload={"applications": n, "weeks": len(set(weeks))}, at=now)
        with self._lock:
            self._memo = (fp, data)
        return n

    def _count_of(self, s: Any, fp: list[str]) -> dict[str, Any] | None:
        """The last count when it was made on records with fingerprint ``fp`` (memory first, then the
        stored snapshot), else None."""
        memo = self._memo
        if memo is not None and memo[0] == fp:
            return memo[1]
        snap = SnapshotRepository(s).latest(SNAPSHOT_KIND, granularity=SNAPSHOT_GRANULARITY)
        if snap is not None and "data" in snap.payload and list(snap.payload.get("fingerprint") or []) == fp:
            return dict(snap.payload["data"])
        return None

    # -- the overview -------------------------------------------------------------------------------
    def overview(self, *, recount: bool = False) -> Overview:
        """Every phase and arm with its figures, the NPS per phase, criteria and guardrails
        (``recount``: count the records now even if a recent count exists)."""
        data, source, stale, windows, fairness = self._data(force=recount)
        alpha = self.settings.alpha
        weekly = [{**r, "week": date.fromisoformat(r["week"])} for r in data["weekly"]]
        totals: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNT_KEYS, 0))
        for r in weekly:
            for k in COUNT_KEYS:
                totals[(r["phase"], r["arm"])][k] += r[k]
        extra: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for r in [*data["llm"], *data["feedback"], *data["errors"]]:
            extra[(r["phase"], r["arm"])].update({k: int(v) for k, v in r.items() if k not in ("phase", "arm")})
        time_q = {(p, a): (m, p95) for p, a, m, p95 in data["time_q"]}
        order = {p: i for i, p in enumerate(PHASES)}
        arms = []
        for (phase, arm), counts in sorted(totals.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
            counts = {**counts, **extra.get((phase, arm), {})}
            lat = Figure(**data["latency"][phase]) if arm == "ai" and phase in data["latency"] else None
            arms.append(ArmSummary(phase, arm, counts, arm_figures(arm, counts, time_q.get((phase, arm)), lat, alpha)))
        surveys = survey_summaries(windows, set(data["ai_users"]), data["surveys"], alpha)
        now = self.clock.now()
        current = next((w.phase for w in reversed(windows) if w.starts_at <= now), "full")
        checks = self._criteria(arms, surveys) + self._guardrails(arms, fairness, alpha)
        tests = {p: TimeComparison(**{**t, "diff": Figure(**t["diff"])}) for p, t in data["time_tests"].items()}
        as_of, cutoff = (datetime.fromisoformat(v) if v else None for v in (data["as_of"], data["cutoff"]))
        counted = datetime.fromisoformat(data["counted_at"])
        return Overview(counted, as_of, cutoff, self.monitoring.maturity_months, alpha, current, windows, arms, surveys,
                        checks, weekly, tests, source, stale)

    def _criteria(self, arms: list[ArmSummary], surveys: list[SurveySummary]) -> list[Check]:
        out = []
        for phase in PHASES:
            for cr in self.settings.criteria.get(phase, []):
                if cr.metric == "nps":
                    fig = next((sv.nps for sv in surveys if sv.phase == phase), None)
                else:
                    a = next((x for x in arms if x.phase == phase and x.arm == criterion_arm(phase)), None)
                    fig = a.figures.get(cr.metric) if a else None
                kind = METRICS.get(cr.metric, ("", "rate"))[1]
                small = fig is not None and kind == "rate" and fig.n < MIN_DECISIONS
                verdict = stats.NO_DATA if fig is None or small else stats.judge(fig.interval(), cr.target, cr.direction)
                label = cr.label or METRICS.get(cr.metric, (cr.metric, ""))[0]
                out.append(Check(phase, "criterion", cr.metric, label, cr.target, cr.direction, fig, verdict,
                                 check_text(label, fig, cr.target, cr.direction, kind, self.settings.alpha)))
        return out

    def _guardrails(self, arms: list[ArmSummary], fairness: dict[str, DisparateImpact | None],
                    alpha: float) -> list[Check]:
        out = []
        g = self.settings
        for phase in [p for p in PHASES if any(a.phase == p for a in arms)]:
            di = fairness.get(phase)  # the Fairness page's figure for this phase (its phase snapshot)
            if di is None:
                text = NO_FAIRNESS if self._fairness else f"Fairness ratio: {NOT_COMPUTED}"
                out.append(Check(phase, "guardrail", "fairness_ratio", "Fairness ratio", g.guardrail_fairness_min, "min",
                                 None, NOT_COMPUTED_VERDICT, text))
            else:
                fig = Figure(di.value, di.low, di.high, di.n, note=f"{di.attribute}: {di.group} vs {di.reference}")
                ok = stats.MET if di.value >= g.guardrail_fairness_min else stats.NOT_MET
                ci = (f", {di.level:.0%} CI {di.low:.2f} to {di.high:.2f}" if di.low is not None and di.high is not None
                      else "")
                out.append(Check(phase, "guardrail", "fairness_ratio", "Fairness ratio", g.guardrail_fairness_min, "min",
                                 fig, ok, f"Fairness ratio (lowest disparate-impact ratio at the final decision, "
                                          f"{di.attribute}: {di.group} vs {di.reference}, phase snapshot computed "
                                          f"{di.computed_at:%Y-%m-%d}): {di.value:.2f}{ci} vs minimum "
                                          f"{g.guardrail_fairness_min:.2f}"))
            total: dict[str, int] = defaultdict(int)
            for a in (a for a in arms if a.phase == phase):
                for k, v in a.counts.items():
                    total[k] += v
            for metric, x, n, limit in (
                    ("fact_check_fail_rate", total["fact_check_failed"], total["fact_checked"], g.guardrail_factcheck_fail_max),
                    ("error_rate", total["request_errors"], total["requests"], g.guardrail_error_rate_max)):
                label = METRICS[metric][0]
                if n == 0:
                    out.append(Check(phase, "guardrail", metric, label, limit, "max", None, NOT_APPLICABLE,
                                     f"{label}: no calls in this phase"))
                    continue
                fig = rate(x, n, alpha)
                out.append(Check(phase, "guardrail", metric, label, limit, "max", fig,
                                 stats.judge(fig.interval(), limit, "max"),
                                 check_text(label, fig, limit, "max", "rate", alpha)))
        return out

    # -- AI vs control ------------------------------------------------------------------------------
    def compare(self, phase: str, overview: Overview | None = None) -> Comparison:
        """Two-proportion tests, the time comparison and the confidence sequences of one phase."""
        if phase not in PHASES:
            raise ValueError(UNKNOWN_PHASE.format(phase=phase))
        ov = overview or self.overview()
        ai, ctl = ov.arm(phase, "ai"), ov.arm(phase, "control")
        if ai is None or ctl is None:
            raise ValueError(NO_AI_ARM.format(phase=PHASE_LABELS.get(phase, phase)))
        rows = []
        for metric in COMPARED:
            x, n = SERIES[metric]
            a, c = ai.figures[metric], ctl.figures[metric]
            xa, na, xc, nc = ai.counts[x], ai.counts[n], ctl.counts[x], ctl.counts[n]
            if na == 0 or nc == 0:
                rows.append(ComparisonRow(metric, METRICS[metric][0], a, c, Figure(None), Figure(None), None))
                continue
            diff = stats.diff_interval(xa, na, xc, nc, alpha=ov.alpha)
            rr = stats.relative_risk(xa, na, xc, nc, alpha=ov.alpha)
            p = stats.two_proportion_ztest(xa, na, xc, nc).p_value
            rows.append(ComparisonRow(metric, METRICS[metric][0], a, c, Figure.of(diff, na + nc),
                                      Figure(rr.estimate, finite(rr.low), finite(rr.high), na + nc), p))
        sequences = {m: sequence(ov, phase, m) for m in ("approval_rate", "default_rate", "default_rate_to_date")}
        return Comparison(phase, rows, ov.time_tests.get(phase), sequences)

    # -- should we advance? -------------------------------------------------------------------------
    def advise(self, overview: Overview | None = None) -> list[Advice]:
        """The verdict for moving each phase with data to the next one, the current phase first
        (:func:`backend.analytics.phase_verdict.advise`)."""
        ov = overview or self.overview()
        return advise(ov, self.settings, self.acceptances.current(), self._arm_fairness)

    # -- planning the next phase -------------------------------------------------------------------
    def power(self, metric: str, mde: float, *, ai_share: float, alpha: float | None = None,
              power: float | None = None, overview: Overview | None = None) -> PowerPlan:
        """Sample size per arm and weeks at the current volume to detect ``mde`` (absolute) in ``metric``."""
        if metric not in POWER_METRICS:
            raise ValueError(UNKNOWN_METRIC.format(metric=metric))
        if not 0.01 <= ai_share <= 0.99:
            raise ValueError(BAD_SHARE.format(share=ai_share))
        ov = overview or self.overview()
        alpha = self.settings.alpha if alpha is None else alpha
        power = self.settings.power if power is None else power
        source = [p for p in ov.phases() if ov.arm(p, "control") and ov.arm(p, "control").figures[metric].n > 0]  # type: ignore[union-attr]
        if not source:
            raise ValueError(NO_BASELINE.format(metric=METRICS[metric][0].lower()))
        phase = ov.current_phase if ov.current_phase in source else source[-1]
        base = ov.arm(phase, "control").figures[metric].value  # type: ignore[union-attr]
        n_ai, n_ctl = stats.sample_size_per_arm(float(base or 0), mde, alpha=alpha, power=power,
                                                ratio=(1 - ai_share) / ai_share)
        denom = "known" if metric.startswith("default") else SERIES[metric][1]  # loans funded per week
        weekly: dict[Any, int] = defaultdict(int)
        for r in ov.weekly:
            if r["phase"] == phase and r["arm"] in ("ai", "control"):
                weekly[r["week"]] += r[denom]
        volume = float(np.median(list(weekly.values()))) if weekly else 0.0
        weeks = stats.weeks_needed(n_ai, n_ctl, volume * ai_share, volume * (1 - ai_share))
        note = (f"Baseline: the control arm of {PHASE_LABELS[phase]}; volume: the median week of that phase "
                f"({volume:,.0f} eligible cases).")
        if metric.startswith("default"):
            note += f" Default outcomes need {self.monitoring.maturity_months} months to mature after the last loan."
        return PowerPlan(metric, float(base or 0), mde, alpha, power, ai_share, n_ai, n_ctl, volume, weeks, note)

    # -- the report --------------------------------------------------------------------------------
    def report(self, *, simulated: int, overview: Overview | None = None) -> PhaseReport:
        ov = overview or self.overview()
        comparisons = [self.compare(p, ov) for p in ov.phases() if ov.arm(p, "ai") and ov.arm(p, "control")]
        return PhaseReport(ov, comparisons, self.advise(ov), self.clock.now(), simulated)


def _counted(data: dict[str, Any]) -> datetime:
    at = data.get("counted_at")
    return datetime.fromisoformat(at) if at else datetime.min.replace(tzinfo=UTC)
