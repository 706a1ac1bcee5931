"""Phase comparison: the figures, verdicts and plans the experiment service returns (pure data).

Definitions shown on the page live here too (:data:`DEFINITIONS`), next to the figures they
define; the SQL that counts them is in :mod:`backend.analytics.experiments_queries`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from backend.analytics import sequential as seq
from backend.analytics import stats
from backend.analytics.experiments_queries import PhaseWindow
from backend.rollout import PHASES

ARM_LABELS = {"ai": "AI", "control": "Control", "excluded": "Excluded (outside the experiment)"}
SHADOW_ARM_LABEL = "Shadow (model silent)"
METRICS = {  # key -> (label, kind)
    "agreement_rate": ("Agreement with the model", "rate"), "override_rate": ("Override rate", "rate"),
    "approval_rate": ("Approval rate", "rate"), "default_rate": ("Default rate (matured)", "rate"),
    "default_rate_to_date": ("Default rate observed to date", "rate"), "adoption_rate": ("Adoption", "rate"),
    "helpful_rate": ("Explanations rated helpful", "rate"), "time_median_s": ("Time to decision, median", "seconds"),
    "time_p95_s": ("Time to decision, p95", "seconds"), "latency_p95_s": ("Latency p95", "seconds"),
    "fact_check_fail_rate": ("Fact-check failure rate", "rate"), "error_rate": ("Error rate", "rate"),
    "llm_error_rate": ("LLM call error rate", "rate"), "nps": ("NPS", "nps"),
}
COMPARED = ("approval_rate", "default_rate", "default_rate_to_date", "agreement_rate")
POWER_METRICS = ("approval_rate", "default_rate", "default_rate_to_date", "agreement_rate")
DEFINITIONS = {
    "agreement_rate": "Officer's final outcome equals the model's recommendation; a manual-review recommendation "
                      "agrees when the officer decided the way the model's risk class points (approve low risk, deny "
                      "high risk), as the decision rules read a resolved review.",
    "override_rate": "AI-arm decisions where the officer overrode the recommendation, counting overrides a manager "
                     "later rejected.",
    "adoption_rate": "AI-arm decisions where the AI card (its explanation) was shown to the officer before the "
                     "decision was recorded; decisions taken without opening the card count as not adopted.",
    "default_rate": "Funded loans decided at least {months} months before the outcome feed's latest observation, "
                    "defaulted within {months} months.",
    "default_rate_to_date": "Funded loans with a known outcome, defaults observed so far (immature: rises with time).",
    "time": "Time from application to the final decision (decided_at - applied_at): the applicant's wait, not the "
            "officer's handling time.",
    "latency_p95_s": "End to end per decision, as on the Latency page, for the AI arm's final decisions scored while "
                     "the phase was in force: the scoring request plus every explanation LLM call made for it (timeouts "
                     "and fallbacks included, stored-explanation views excluded).",
    "error_rate": "As the error-rate alert counts it: scoring requests that met an error over all scoring requests "
                  "(scoring fell back to the fallback model, or a purpose's LLM calls all failed without an answer); a "
                  "timeout another provider answered or a failed fact-check is not an error.",
    "fact_check_fail_rate": "LLM answers the fact-check rejected (the template was shown instead).",
    "nps": "Officers' monthly survey; months map to the phase in force mid-month. Adjusted Wald interval (Rocks 2016).",
}
NOT_COMPUTED = "not computed yet: run creditrisk monitor run"
NOT_COMPUTED_VERDICT, NOT_APPLICABLE = "not computed", "not applicable"
NO_AI_ARM = "The {phase} phase has no AI and control arms to compare."
UNKNOWN_PHASE = "Unknown phase {phase!r}; choose one of: " + ", ".join(PHASES) + "."
UNKNOWN_METRIC = "The power calculator works on: " + ", ".join(POWER_METRICS) + " (got {metric!r})."
NO_BASELINE = "No control-arm {metric} to use as a baseline yet."
MIN_DECISIONS = 30  # a rate from fewer decisions is "not enough data"
#: metric -> (count of events, count of trials) in the weekly rows
SERIES = {"approval_rate": ("approved", "decided"), "default_rate": ("matured_defaults", "matured"),
          "default_rate_to_date": ("defaults", "known"), "agreement_rate": ("agree", "decided")}
COUNT_KEYS = ("applications", "decided", "approved", "agree", "review_recs", "overrides", "ai_shown", "funded", "known",
              "defaults", "matured", "matured_defaults")


@dataclass(frozen=True)
class Figure:
    """A value with its interval (None where there is none) and the count it rests on."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    note: str = ""

    @classmethod
    def of(cls, ci: stats.Interval | None, n: int, note: str = "") -> Figure:
        if ci is None:
            return cls(None, n=n, note=note)
        return cls(ci.estimate, ci.low, ci.high, n, note)

    def interval(self) -> stats.Interval | None:
        if self.value is None:
            return None
        return stats.Interval(self.value, self.low if self.low is not None else -math.inf,
                              self.high if self.high is not None else math.inf)


def rate(x: int, n: int, alpha: float, note: str = "") -> Figure:
    return Figure.of(stats.wilson_interval(x, n, alpha=alpha) if n > 0 else None, n, note)


@dataclass(frozen=True)
class ArmSummary:
    phase: str
    arm: str
    counts: dict[str, int]
    figures: dict[str, Figure]

    @property
    def label(self) -> str:
        return SHADOW_ARM_LABEL if self.phase == "shadow" else ARM_LABELS.get(self.arm, self.arm)


@dataclass(frozen=True)
class SurveySummary:
    phase: str
    nps: Figure
    nps_ai_users: Figure
    nps_others: Figure


@dataclass(frozen=True)
class Check:
    """A success criterion or a guardrail and its verdict (see :func:`backend.analytics.stats.judge`)."""

    phase: str
    kind: str  # criterion | guardrail
    metric: str
    label: str
    target: float | None
    direction: str
    figure: Figure | None
    verdict: str
    text: str = ""


@dataclass(frozen=True)
class SeqPoint:
    week: date
    n_ai: int
    n_control: int
    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    label: str
    ai: Figure
    control: Figure
    diff: Figure
    ratio: Figure
    p_value: float | None


@dataclass(frozen=True)
class TimeComparison:
    median_ai: float
    median_control: float
    p95_ai: float
    p95_control: float
    diff: Figure  # median AI - median control, bootstrap interval
    p_value: float
    prob_ai_longer: float


@dataclass(frozen=True)
class Comparison:
    phase: str
    rows: list[ComparisonRow]
    time: TimeComparison | None
    sequences: dict[str, list[SeqPoint]]  # metric -> the confidence sequence week by week


@dataclass(frozen=True)
class Reason:
    status: str  # ok | info | wait | block
    text: str
    accept: str | None = None  # approval | default | fairness: an adverse difference a risk manager may accept


@dataclass(frozen=True)
class Advice:
    phase: str
    next_phase: str | None
    verdict: str  # ready | not yet | no-go
    headline: str
    reasons: list[Reason]
    next_criteria: list[str]


@dataclass(frozen=True)
class PowerPlan:
    metric: str
    baseline: float
    mde: float
    alpha: float
    power: float
    ai_share: float
    n_ai: int
    n_control: int
    weekly_volume: float
    weeks: float
    note: str


@dataclass(frozen=True)
class Overview:
    computed_at: datetime  # when the records were counted (the counts are reused until they change)
    outcomes_as_of: datetime | None
    matured_before: datetime | None
    maturity_months: int
    alpha: float
    current_phase: str
    windows: list[PhaseWindow]
    arms: list[ArmSummary]
    surveys: list[SurveySummary]
    checks: list[Check]
    weekly: list[dict[str, Any]] = field(repr=False)  # phase, arm, week, counts
    time_tests: dict[str, TimeComparison] = field(default_factory=dict)  # phase -> AI vs control times
    source: str = "computed"  # computed | memo | snapshot: where the counts came from
    stale: bool = False  # the records changed since the count (it is recounted when RECOUNT_AFTER old)

    def arm(self, phase: str, arm: str) -> ArmSummary | None:
        return next((a for a in self.arms if a.phase == phase and a.arm == arm), None)

    def phases(self) -> list[str]:
        have = {a.phase for a in self.arms}
        return [p for p in PHASES if p in have]

    def checks_for(self, phase: str, kind: str) -> list[Check]:
        return [c for c in self.checks if c.phase == phase and c.kind == kind]


def criterion_arm(phase: str) -> str:
    return "control" if phase == "shadow" else "ai"


@dataclass(frozen=True)
class PhaseReport:
    """Everything the phase review report shows (HTML and PDF render the same numbers)."""

    overview: Overview
    comparisons: list[Comparison]
    advice: list[Advice]
    generated_at: datetime
    simulated: int  # simulated applications in the book (0: real data)


def fmt(value: float | None, kind: str, *, signed: bool = False) -> str:
    """A figure for people: rates in percent, seconds as s/min/h/days, NPS on its -100..100 scale."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "unbounded"
    sign = "+" if signed and value > 0 else ""
    if kind == "rate":
        return f"{sign}{value * 100:.1f}%"
    if kind == "pp":
        return f"{sign}{value * 100:.2f} pp"
    if kind == "nps":
        return f"{sign}{value * 100:.0f}"
    if kind == "seconds":
        a = abs(value)
        if a < 120:
            return f"{sign}{value:.1f} s"
        if a < 7200:
            return f"{sign}{value / 60:.1f} min"
        if a < 172_800:
            return f"{sign}{value / 3600:.1f} h"
        return f"{sign}{value / 86400:.1f} days"
    if kind == "ratio":
        return f"{value:.2f}"
    return f"{sign}{value:,.3g}"


def fmt_ci(fig: Figure | None, kind: str, *, signed: bool = False) -> str:
    """``value (low to high)``, or just the value when there is no interval; a side the sample is too small
    to bound is "unbounded"."""
    if fig is None or fig.value is None:
        return "n/a"
    if fig.low is None and fig.high is None:
        return fmt(fig.value, kind, signed=signed)
    low = "unbounded" if fig.low is None else fmt(fig.low, kind, signed=signed)  # too few cases for that side
    high = "unbounded" if fig.high is None else fmt(fig.high, kind, signed=signed)
    return f"{fmt(fig.value, kind, signed=signed)} ({low} to {high})"


def by_week(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Weekly counts per phase and arm (officers and months summed)."""
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (r["phase"], r["arm"], r["week"])
        if key not in acc:
            acc[key] = {"phase": key[0], "arm": key[1], "week": key[2], **dict.fromkeys(COUNT_KEYS, 0)}
        for k in COUNT_KEYS:
            acc[key][k] += r[k]
    return sorted(acc.values(), key=lambda r: (r["phase"], r["arm"], r["week"]))


def survey_summaries(windows: list[PhaseWindow], ai_users: set[str], surveys: list[dict[str, Any]],
                     alpha: float) -> list[SurveySummary]:
    """NPS per phase (the phase in force mid-month), all officers and split by who worked AI-arm
    cases that month (``ai_users``: "officer_id|YYYY-MM")."""
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"all": [], "ai": [], "other": []})
    for sv in surveys:
        try:
            mid = datetime.strptime(sv["period"][:7] + "-15", "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            continue
        phase = next((w.phase for w in reversed(windows) if w.starts_at <= mid), None)
        if phase is None:
            continue
        g = groups[phase]
        g["all"].append(sv["nps"])
        g["ai" if f"{sv['user_id']}|{sv['period'][:7]}" in ai_users else "other"].append(sv["nps"])

    def nps(v: list[int], note: str = "") -> Figure:
        return Figure.of(stats.nps_interval(v, alpha=alpha) if v else None, len(v), note)

    return [SurveySummary(p, nps(groups[p]["all"]), nps(groups[p]["ai"], "officers with AI-arm cases that month"),
                          nps(groups[p]["other"], "officers without AI-arm cases that month"))
            for p in PHASES if p in groups]


def check_text(label: str, fig: Figure | None, target: float, direction: str, kind: str, alpha: float) -> str:
    sign = "<" if direction == "max" else ">"
    if fig is None or fig.value is None:
        return f"{label}: no data (target {sign} {fmt(target, kind)})"
    lo, hi = ("unbounded" if v is None else fmt(v, kind) for v in (fig.low, fig.high))
    ci = f" ({1 - alpha:.0%} CI {lo} to {hi})" if fig.low is not None or fig.high is not None else ""
    return f"{label} {fmt(fig.value, kind)}{ci} vs target {sign} {fmt(target, kind)}, n = {fig.n:,}"


def finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def jsonable(obj: Any) -> Any:
    """A dataclass as plain JSON (non-finite numbers become None: PostgreSQL's json refuses them)."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def arm_figures(arm: str, c: dict[str, int], tq: tuple[float, float] | None, lat: Figure | None,
                alpha: float) -> dict[str, Figure]:
    """The figures of one phase and arm from its counts (rates with Wilson intervals)."""
    d = c["decided"]
    f = {"agreement_rate": rate(c["agree"], d, alpha), "approval_rate": rate(c["approved"], d, alpha),
         "default_rate": rate(c["matured_defaults"], c["matured"], alpha),
         "default_rate_to_date": rate(c["defaults"], c["known"], alpha, "observed to date (immature)"),
         "helpful_rate": rate(c.get("helpful", 0), c.get("ratings", 0), alpha),
         "fact_check_fail_rate": rate(c.get("fact_check_failed", 0), c.get("fact_checked", 0), alpha),
         "llm_error_rate": rate(c.get("llm_errors", 0), c.get("llm_calls", 0), alpha),
         "error_rate": rate(c.get("request_errors", 0), c.get("requests", 0), alpha)}
    if arm == "ai":
        f["override_rate"] = rate(c["overrides"], d, alpha)
        f["adoption_rate"] = rate(c["ai_shown"], d, alpha)
        f["latency_p95_s"] = lat or Figure(None)
    if tq is not None:
        f["time_median_s"], f["time_p95_s"] = Figure(tq[0], n=d), Figure(tq[1], n=d)
    return f


def sequence(ov: Overview, phase: str, metric: str) -> list[SeqPoint]:
    """The always-valid confidence sequence of ``AI - control`` for ``metric``, one look per application week
    that brought new cases (weeks with nothing new in either arm are not looks)."""
    x, n = SERIES[metric]
    rows = [r for r in ov.weekly if r["phase"] == phase and r["arm"] in ("ai", "control")]
    grid = {(r["week"], r["arm"]): r for r in rows}
    weeks = [w for w in sorted({r["week"] for r in rows})
             if any(grid.get((w, arm), {}).get(n, 0) for arm in ("ai", "control"))]
    if not weeks:
        return []
    cols = {(arm, key): np.cumsum([grid.get((w, arm), {}).get(key, 0) for w in weeks])
            for arm in ("ai", "control") for key in (x, n)}
    cs = seq.confidence_sequence_diff(cols[("ai", x)], cols[("ai", n)], cols[("control", x)], cols[("control", n)],
                                      alpha=ov.alpha)
    return [SeqPoint(w, int(cols[("ai", n)][i]), int(cols[("control", n)][i]),
                     None if math.isnan(cs.estimate[i]) else float(cs.estimate[i]),
                     float(cs.low[i]) if cs.ready[i] else None, float(cs.high[i]) if cs.ready[i] else None)
            for i, w in enumerate(weeks)]
