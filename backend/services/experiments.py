"""Phase comparison: AI vs control per rollout phase, criteria, guardrails and the advance verdict.

Every figure comes from the records (SQL in :mod:`backend.services.experiments_queries`, whose
docstring defines agreement, override, AI card shown, time to decision and latency; the result
types and the definitions shown on the page are in :mod:`backend.services.experiments_model`).
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
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from backend.analytics import stats
from backend.config_analytics import AnalyticsSettings
from backend.config_monitoring import MonitoringSettings
from backend.db.engine import Database
from backend.db.repo_audit import AuditRepository
from backend.db.repo_snapshots import Snapshot, SnapshotRepository
from backend.ports import Clock
from backend.services import experiments_queries as q
from backend.services.experiments_model import (
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
    Reason,
    SurveySummary,
    TimeComparison,
    arm_figures,
    by_week,
    check_text,
    criterion_arm,
    finite,
    fmt,
    jsonable,
    rate,
    sequence,
    survey_summaries,
)
from backend.services.rollout import PHASE_LABELS, PHASES

SNAPSHOT_KIND, SNAPSHOT_GRANULARITY = "phase_comparison", "all"
#: After the records change, the last count keeps being served (dated, marked stale) for this long.
RECOUNT_AFTER = timedelta(minutes=15)
BAD_SHARE = "The planned AI share must be between 0.01 and 0.99 (got {share})."
STATUS = {stats.MET: "ok", stats.LIKELY: "wait", stats.NOT_MET: "block", stats.NO_DATA: "wait",
          NOT_COMPUTED_VERDICT: "wait", NOT_APPLICABLE: "info"}


class ExperimentService:
    def __init__(self, db: Database, clock: Clock, analytics: AnalyticsSettings, monitoring: MonitoringSettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = analytics
        self.monitoring = monitoring
        self._lock = threading.Lock()
        self._memo: tuple[list[str], dict[str, Any]] | None = None

    # -- counting (once per change of the records) --------------------------------------------------
    def _fingerprint(self, s: Any) -> list[str]:
        return [*q.fingerprint(s), f"alpha={self.settings.alpha}", f"maturity={self.monitoring.maturity_months}"]

    def _compute(self, s: Any) -> dict[str, Any]:
        """Every count and test the page needs, as JSON (the SQL of one pass over the book)."""
        months, alpha = self.monitoring.maturity_months, self.settings.alpha
        as_of = q.outcomes_as_of(s)
        cutoff = (pd.Timestamp(as_of) - pd.DateOffset(months=months)).to_pydatetime() if as_of else None
        raw = q.weekly_counts(s, matured_before=cutoff, maturity_months=months)
        ai_users = sorted({f"{r['officer_id']}|{r['month']}" for r in raw if r["arm"] == "ai" and r["applications"]})
        weekly = by_week(raw)
        pg = self.db.dialect == "postgresql"
        times: dict[tuple[str, str], list[float]] = defaultdict(list)
        if pg:
            time_q = [[r["phase"], r["arm"], float(r["median"]), float(r["p95"])] for r in q.time_quantiles_pg(s)]
        else:  # SQLite: one column, then numpy (the same linear interpolation as percentile_cont)
            for phase, arm, t in q.decision_times(s):
                times[(phase, arm)].append(t)
            time_q = [[p, a, *(float(x) for x in np.quantile(v, [0.5, 0.95]))] for (p, a), v in times.items()]
        tests, latency = {}, {}
        lats: dict[str, list[float]] = defaultdict(list)
        for phase, v in q.latencies(s, "ai"):
            lats[phase].append(v)
        for phase in sorted({r["phase"] for r in weekly if r["arm"] == "ai"}):
            lat = lats.get(phase, [])
            latency[phase] = jsonable(Figure.of(stats.quantile_interval(lat, 0.95, alpha=alpha) if lat else None,
                                                 len(lat)))
            if pg:
                for p, a, t in q.decision_times(s, phase):
                    times[(p, a)].append(t)
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
                "time_q": time_q, "latency": latency, "time_tests": tests}

    def _data(self, *, force: bool = False) -> tuple[dict[str, Any], str, bool, list[q.PhaseWindow],
                                                     dict[str, Snapshot | None]]:
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
            repo = SnapshotRepository(s)
            fairness = {w.phase: repo.latest("fairness", granularity="month", before=w.ends_at) for w in windows}
        return memo[1], source, stale, windows, fairness

    def refresh(self, *, actor: Any = None, until: datetime | None = None) -> int:
        """Count now and store the result (for ``creditrisk monitor run`` or the page's button; ``actor``
        has ``username`` and ``role``, default the monitor): pages then read it until the records
        change. The counting reads in its own session; the write is one short transaction with its
        audit row. ``until`` is accepted for the monitor's uniform call and does not filter: the
        comparison always counts every record. Returns the applications counted."""
        with self.db.read() as s:  # the fingerprint and the counts from the same read
            fp = self._fingerprint(s)
            data = self._compute(s)
        now = self.clock.now()
        n = sum(int(r["applications"]) for r in data["weekly"])
        weeks = sorted(r["week"] for r in data["weekly"])
        start = datetime.fromisoformat(weeks[0]).replace(tzinfo=UTC) if weeks else now
        who, role = (actor.username, actor.role) if actor is not None else ("monitor", "system")
        with self.db.transaction() as s:
            SnapshotRepository(s).put(kind=SNAPSHOT_KIND, granularity=SNAPSHOT_GRANULARITY, period="all",
                                      window_start=start, window_end=now, computed_at=now, n=n, value=None,
                                      payload={"fingerprint": fp, "data": data})
            AuditRepository(s).append(actor=who, role=role, action="phase_comparison_refreshed",
                                      entity_type="monitor_snapshot", entity_id=SNAPSHOT_KIND,
                                      payload={"applications": n, "weeks": len(set(weeks))}, at=now)
        with self._lock:
            self._memo = (fp, data)
        return n

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
        for r in [*data["llm"], *data["feedback"]]:
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

    def _guardrails(self, arms: list[ArmSummary], fairness: dict[str, Snapshot | None], alpha: float) -> list[Check]:
        out = []
        g = self.settings
        for phase in [p for p in PHASES if any(a.phase == p for a in arms)]:
            snap = fairness.get(phase)
            if snap is None or snap.value is None:
                out.append(Check(phase, "guardrail", "fairness_ratio", "Fairness ratio", g.guardrail_fairness_min, "min",
                                 None, NOT_COMPUTED_VERDICT, f"Fairness ratio: {NOT_COMPUTED}"))
            else:
                fig = Figure(float(snap.value), n=snap.n, note=f"snapshot {snap.period}")
                ok = stats.MET if snap.value >= g.guardrail_fairness_min else stats.NOT_MET
                out.append(Check(phase, "guardrail", "fairness_ratio", "Fairness ratio", g.guardrail_fairness_min, "min",
                                 fig, ok, f"Fairness ratio (lowest disparate-impact ratio, {snap.period}, computed "
                                          f"{snap.computed_at:%Y-%m-%d}): {snap.value:.2f} vs minimum "
                                          f"{g.guardrail_fairness_min:.2f}"))
            total: dict[str, int] = defaultdict(int)
            for a in (a for a in arms if a.phase == phase):
                for k, v in a.counts.items():
                    total[k] += v
            for metric, x, n, limit in (
                    ("fact_check_fail_rate", total["fact_check_failed"], total["fact_checked"], g.guardrail_factcheck_fail_max),
                    ("error_rate", total["llm_errors"] + total["scoring_errors"], total["llm_calls"] + total["scored"],
                     g.guardrail_error_rate_max)):
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
        """The verdict for moving each phase with data to the next one, the current phase first."""
        ov = overview or self.overview()
        phases = [p for p in ov.phases() if p != "full"]
        phases.sort(key=lambda p: (p != ov.current_phase, -PHASES.index(p)))
        return [self._advice(ov, p) for p in phases]

    def _advice(self, ov: Overview, phase: str) -> Advice:
        nxt = PHASES[PHASES.index(phase) + 1] if PHASES.index(phase) + 1 < len(PHASES) else None
        reasons = [Reason(STATUS.get(c.verdict, "wait"), f"{c.text} ({c.verdict}).") for c in ov.checks_for(phase, "criterion")]
        if not reasons:
            reasons.append(Reason("info", f"No success criteria are configured for {PHASE_LABELS[phase]}."))
        reasons += [Reason(STATUS.get(c.verdict, "wait"), f"Guardrail: {c.text} ({c.verdict}).")
                    for c in ov.checks_for(phase, "guardrail")]
        reasons += self._sequential_reasons(ov, phase)
        worst = {r.status for r in reasons}
        verdict = "no-go" if "block" in worst else "not yet" if "wait" in worst else "ready"
        frm, to = PHASE_LABELS[phase], PHASE_LABELS.get(nxt or "", "the end of the rollout")
        todo = sum(r.status in ("wait", "block") for r in reasons)
        head = {"ready": f"Ready to move from {frm} to {to}: every criterion and guardrail holds on its interval",
                "not yet": f"Not yet: stay in {frm} ({todo} item(s) below are missing or only likely)",
                "no-go": f"Do not move from {frm} to {to}: a criterion, guardrail or the sequential test fails"}[verdict]
        if phase != ov.current_phase:
            head = f"Looking back ({frm} is not the phase in force), on today's records: {head[0].lower()}{head[1:]}"
        nxt_criteria = [f"{c.label or c.metric} {'<' if c.direction == 'max' else '>'} {fmt(c.target, METRICS.get(c.metric, ('', 'rate'))[1])}"
                        for c in self.settings.criteria.get(nxt or "", [])]
        if nxt and not nxt_criteria:
            nxt_criteria = [f"No success criteria are configured for {to}; the guardrails keep applying."]
        return Advice(phase, nxt, verdict, head, reasons, nxt_criteria)

    def _sequential_reasons(self, ov: Overview, phase: str) -> list[Reason]:
        if ov.arm(phase, "ai") is None or ov.arm(phase, "control") is None:
            return [Reason("info", f"{PHASE_LABELS[phase]} has no AI and control arms: no sequential test.")]
        out = []
        default = sequence(ov, phase, "default_rate")
        early = not default or default[-1].low is None
        if early:
            default = sequence(ov, phase, "default_rate_to_date")
        for metric, pts in (("default", default), ("approval", sequence(ov, phase, "approval_rate"))):
            what = f"{metric} rate{' (observed to date: loans not yet matured)' if metric == 'default' and early else ''}"
            last = pts[-1] if pts else None
            if last is None or last.low is None or last.high is None or last.estimate is None:
                out.append(Reason("wait", f"Sequential test on the {what}: not enough events in both arms yet."))
                continue
            band = (f"AI - control {last.estimate * 100:+.2f} pp, always-valid {1 - ov.alpha:.0%} interval "
                    f"{last.low * 100:+.2f} to {last.high * 100:+.2f} pp after {last.n_ai:,} AI and {last.n_control:,} "
                    f"control cases")
            if last.low > 0 or last.high < 0:
                worse = metric == "default" and last.low > 0
                word = "higher" if last.low > 0 else "lower"
                status = "block" if worse else ("ok" if metric == "default" else "info")
                out.append(Reason(status, f"Sequential test on the {what}: the AI arm's is {word} ({band})."))
            else:
                out.append(Reason("info", f"Sequential test on the {what}: no difference detected so far ({band})."))
        return out

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
