"""Should we advance? The verdict for moving a rollout phase to the next one, from an :class:`Overview`:
its criteria and guardrails (judged on their intervals) and the always-valid sequential test of the
approval and default rates (pure: the overview in, the advice out).

It cannot mislead in three ways it once did:

* **Adverse differences block.** An AI arm significantly worse than the control arm (approval rate lower,
  default rate higher: the always-valid interval of AI - control entirely on the bad side; fairness: the AI
  arm's lowest disparate-impact interval entirely below the control arm's) is a ``block`` unless a named
  person accepted it with a reason (:class:`backend.rollout.AcceptanceService`); then it is shown as accepted,
  by whom, when and why.
* **Artefacts are not counted.** A criterion whose figure has no variation (every case the same, so its
  interval has no width, e.g. "Adoption 100.0% (CI 100-100)" from a process that opens every card) is
  flagged and waits; it never counts as met.
* **Missing inputs are computed**, not reported as a dead end (the service refreshes a missing fairness
  snapshot before judging; see :meth:`ExperimentService.overview`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.analytics import stats
from backend.analytics.config import AnalyticsSettings
from backend.analytics.experiments_model import (
    METRICS,
    NOT_APPLICABLE,
    NOT_COMPUTED_VERDICT,
    Advice,
    Overview,
    Reason,
    fmt,
    sequence,
)
from backend.rollout import PHASE_LABELS, PHASES

STATUS = {stats.MET: "ok", stats.LIKELY: "wait", stats.NOT_MET: "block", stats.NO_DATA: "wait",
          NOT_COMPUTED_VERDICT: "wait", NOT_APPLICABLE: "info"}


#: an accepted difference: (phase, metric) -> anything with accepted_by, accepted_at and reason
Accepted = Mapping[tuple[str, str], Any]
#: the lowest final-decision disparate-impact ratio per arm of a phase: {"ai": (value, low, high), "control": ...}
ArmFairness = Mapping[str, Mapping[str, tuple[float, float | None, float | None]]]
ARTEFACT = ("every one of the {n:,} cases came out the same, so its interval has no width: more likely an "
            "artefact of how the records were made than a measurement; not counted until it varies or is checked")


def advise(ov: Overview, settings: AnalyticsSettings, accepted: Accepted | None = None,
           arm_fairness: ArmFairness | None = None) -> list[Advice]:
    """The verdict for moving each phase with data to the next one, the current phase first."""
    phases = [p for p in ov.phases() if p != "full"]
    phases.sort(key=lambda p: (p != ov.current_phase, -PHASES.index(p)))
    return [_advice(ov, p, settings, accepted or {}, arm_fairness or {}) for p in phases]


def degenerate(fig: Any, kind: str) -> bool:
    """A figure whose interval has no width: a rate where every case is the same (0% or 100%), or any
    figure whose limits are equal."""
    if fig is None or fig.value is None or not fig.n:
        return False
    if kind == "rate" and fig.value in (0.0, 1.0):
        return True
    return fig.low is not None and fig.high is not None and fig.high - fig.low <= 1e-12


def _criterion(c: Any) -> Reason:
    kind = METRICS.get(c.metric, ("", "rate"))[1]
    if degenerate(c.figure, kind):
        return Reason("wait", f"{c.text}: {ARTEFACT.format(n=c.figure.n)}.")
    return Reason(STATUS.get(c.verdict, "wait"), f"{c.text} ({c.verdict}).")


def _accepted(status: str, text: str, key: tuple[str, str], accepted: Accepted) -> Reason:
    """A blocking finding, or the same finding marked accepted (who, when, why) when someone accepted it."""
    a = accepted.get(key)
    if status != "block":
        return Reason(status, text)
    if a is None:
        return Reason(status, text, accept=key[1])
    return Reason("info", f"{text} Accepted by {a.accepted_by} on {a.accepted_at:%Y-%m-%d}: \u201c{a.reason}\u201d")


def _advice(ov: Overview, phase: str, settings: AnalyticsSettings, accepted: Accepted,
            arm_fairness: ArmFairness) -> Advice:
    nxt = PHASES[PHASES.index(phase) + 1] if PHASES.index(phase) + 1 < len(PHASES) else None
    reasons = [_criterion(c) for c in ov.checks_for(phase, "criterion")]
    if not reasons:
        reasons.append(Reason("info", f"No success criteria are configured for {PHASE_LABELS[phase]}."))
    reasons += [Reason(STATUS.get(c.verdict, "wait"), f"Guardrail: {c.text} ({c.verdict}).")
                for c in ov.checks_for(phase, "guardrail")]
    reasons += _sequential_reasons(ov, phase, accepted)
    reasons += _fairness_between_arms(ov, phase, arm_fairness.get(phase), accepted)
    worst = {r.status for r in reasons}
    verdict = "no-go" if "block" in worst else "not yet" if "wait" in worst else "ready"
    frm, to = PHASE_LABELS[phase], PHASE_LABELS.get(nxt or "", "the end of the rollout")
    todo = sum(r.status in ("wait", "block") for r in reasons)
    head = {"ready": f"Ready to move from {frm} to {to}: every criterion and guardrail holds on its interval",
            "not yet": f"Not yet: stay in {frm} ({todo} item(s) below are missing or only likely)",
            "no-go": f"Do not move from {frm} to {to}: a criterion or guardrail fails, or the AI arm is significantly "
                     "worse than the control arm (below: what, and who may accept it)"}[verdict]
    if phase != ov.current_phase:
        head = f"Looking back ({frm} is not the phase in force), on today's records: {head[0].lower()}{head[1:]}"
    nxt_criteria = [f"{c.label or c.metric} {'<' if c.direction == 'max' else '>'} {fmt(c.target, METRICS.get(c.metric, ('', 'rate'))[1])}"
                    for c in settings.criteria.get(nxt or "", [])]
    if nxt and not nxt_criteria:
        nxt_criteria = [f"No success criteria are configured for {to}; the guardrails keep applying."]
    return Advice(phase, nxt, verdict, head, reasons, nxt_criteria)


def _fairness_between_arms(ov: Overview, phase: str, arms: Mapping[str, Any] | None,
                           accepted: Accepted) -> list[Reason]:
    """Fairness between the arms: the AI arm's lowest disparate-impact interval entirely below the control
    arm's is a significant adverse difference (non-overlapping intervals: a conservative test)."""
    if ov.arm(phase, "ai") is None or ov.arm(phase, "control") is None:
        return []
    ai, ctl = (arms or {}).get("ai"), (arms or {}).get("control")
    if ai is None or ctl is None or None in (ai[2], ctl[1]):
        return [Reason("info", "Fairness between the arms: not enough judged groups in both arms to compare yet.")]
    band = (f"lowest disparate-impact ratio AI {ai[0]:.2f} ({ai[1]:.2f} to {ai[2]:.2f}) vs control {ctl[0]:.2f} "
            f"({ctl[1]:.2f} to {ctl[2]:.2f})")
    if ai[2] < ctl[1]:
        return [_accepted("block", f"Fairness between the arms: the AI arm's is significantly lower ({band}).",
                          (phase, "fairness"), accepted)]
    return [Reason("info", f"Fairness between the arms: no significant difference ({band}).")]


def _sequential_reasons(ov: Overview, phase: str, accepted: Accepted | None = None) -> list[Reason]:
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
            # adverse: more defaults, or fewer approvals (applicants the control arm would have served)
            worse = (metric == "default" and last.low > 0) or (metric == "approval" and last.high < 0)
            word = "higher" if last.low > 0 else "lower"
            status = "block" if worse else "ok"
            text = f"Sequential test on the {what}: the AI arm's is significantly {word} ({band})."
            if worse:
                text += " A risk manager may accept it with a written reason."
            out.append(_accepted(status, text, (phase, metric), accepted or {}))
        else:
            out.append(Reason("info", f"Sequential test on the {what}: no difference detected so far ({band})."))
    return out
