"""The phase verdict cannot mislead (issue 20, item 2), on the simulated history (SQLite and PostgreSQL):

* a significant adverse difference between the arms (approval lower, default higher, fairness lower) blocks
  until a named risk manager accepts it with a reason, audited in the same transaction;
* a criterion whose figure has no width (every case the same) is flagged and never counts as met;
* a missing fairness snapshot is computed on demand, and the guardrail shows the Fairness page's figure.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from backend.analytics import phase_verdict
from backend.analytics.experiments_model import NOT_COMPUTED, Figure
from backend.domain import Actor
from backend.monitoring import disparate_impact_of
from backend.monitoring.snapshot_queries import SnapshotRepository
from backend.platform.db.tables_governance import AuditLog, VerdictAcceptance
from backend.rollout import RolloutError

RISK = Actor("sim.rita", "risk_manager")
WHY = "Lower approvals reviewed with the credit committee: within the risk appetite for the pilot."


def _fewer_ai_approvals(ov, phase: str = "scaled"):
    """The same overview with half of the AI arm's approvals in ``phase`` gone (a clear adverse difference)."""
    weekly = [{**r, "approved": r["approved"] // 2} if r["phase"] == phase and r["arm"] == "ai" else r
              for r in ov.weekly]
    return dataclasses.replace(ov, weekly=weekly)


def _scaled(advice):
    return next(a for a in advice if a.phase == "scaled")


def test_a_significantly_lower_ai_approval_rate_blocks_until_a_risk_manager_accepts_it(sim_services) -> None:
    svc = sim_services
    ov = _fewer_ai_approvals(svc.experiments.overview())
    settings = svc.experiments.settings
    adv = _scaled(phase_verdict.advise(ov, settings, svc.acceptances.current()))
    finding = next(r for r in adv.reasons if r.accept == "approval")
    assert adv.verdict == "no-go" and finding.status == "block" and "significantly lower" in finding.text
    assert not adv.headline.startswith("Ready")

    for who, reason, expected in ((Actor("sim.priya", "product_lead"), WHY, "may not accept"),  # a product lead
                                  (Actor("nobody", "risk_manager"), WHY, "not an active user"),
                                  (RISK, "fine", "at least 20 characters"),
                                  (RISK, "   \t  " * 10, "at least 20 characters"),
                                  (RISK, "ok\x00" * 10, "NUL")):
        with pytest.raises(RolloutError, match=expected):
            svc.acceptances.accept(who, phase="scaled", metric="approval", finding=finding.text, reason=reason)
    with pytest.raises(RolloutError, match="unknown difference"):
        svc.acceptances.accept(RISK, phase="scaled", metric="latency", finding=finding.text, reason=WHY)
    with svc.db.read() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(VerdictAcceptance)).scalar_one() == 0

    svc.acceptances.accept(RISK, phase="scaled", metric="approval", finding=finding.text, reason=WHY)
    with svc.db.read() as s:
        audit = s.execute(sa.select(AuditLog).where(AuditLog.action == "verdict_difference_accepted")).scalars().all()
    assert len(audit) == 1 and audit[0].actor == "sim.rita" and audit[0].payload["reason"] == WHY
    after = _scaled(phase_verdict.advise(ov, settings, svc.acceptances.current()))
    accepted = next(r for r in after.reasons if "approval rate" in r.text and "significantly lower" in r.text)
    assert accepted.status == "info" and "Accepted by sim.rita" in accepted.text and WHY in accepted.text
    assert all(r.status != "block" or r.accept != "approval" for r in after.reasons)
    # accepted for the scaled phase only
    pilot = next((a for a in phase_verdict.advise(_fewer_ai_approvals(ov, "pilot"), settings,
                                                  svc.acceptances.current()) if a.phase == "pilot"), None)
    assert pilot is not None and any(r.accept == "approval" and r.status == "block" for r in pilot.reasons)


def test_a_higher_ai_approval_rate_is_not_adverse_and_the_verdict_never_says_ready_while_blocked(sim_services) -> None:
    svc = sim_services
    ov = svc.experiments.overview()
    more = dataclasses.replace(ov, weekly=[{**r, "approved": r["approved"] + (r["decided"] - r["approved"]) // 2} if r["phase"] == "scaled" and r["arm"] == "ai"
                                           else r for r in ov.weekly])
    adv = _scaled(phase_verdict.advise(more, svc.experiments.settings))
    approval = next(r for r in adv.reasons if "approval rate" in r.text and "Sequential" in r.text)
    assert approval.status == "ok" and approval.accept is None
    for a in phase_verdict.advise(_fewer_ai_approvals(ov), svc.experiments.settings):
        assert (a.verdict == "ready") == all(r.status in ("ok", "info") for r in a.reasons)


def test_fairness_lower_in_the_ai_arm_blocks_overlapping_intervals_do_not(sim_services) -> None:
    svc = sim_services
    ov = svc.experiments.overview()
    worse = {"scaled": {"ai": (0.70, 0.62, 0.77), "control": (0.90, 0.84, 0.96)}}
    overlap = {"scaled": {"ai": (0.80, 0.70, 0.88), "control": (0.90, 0.84, 0.96)}}
    adv = _scaled(phase_verdict.advise(ov, svc.experiments.settings, {}, worse))
    r = next(r for r in adv.reasons if r.text.startswith("Fairness between the arms"))
    assert r.status == "block" and r.accept == "fairness" and adv.verdict == "no-go"
    adv = _scaled(phase_verdict.advise(ov, svc.experiments.settings, {}, overlap))
    r = next(r for r in adv.reasons if r.text.startswith("Fairness between the arms"))
    assert r.status == "info" and "no significant difference" in r.text


@pytest.mark.parametrize("value,n", [(1.0, 4_000), (0.0, 4_000)])
def test_a_criterion_with_no_width_is_flagged_not_counted(sim_services, value, n) -> None:
    svc = sim_services
    ov = svc.experiments.overview()
    checks = [dataclasses.replace(c, figure=Figure(value, value, value, n), verdict="met", text="Adoption 100.0%")
              if c.phase == "scaled" and c.kind == "criterion" else c for c in ov.checks]
    adv = _scaled(phase_verdict.advise(dataclasses.replace(ov, checks=checks), svc.experiments.settings))
    flagged = [r for r in adv.reasons if "no width" in r.text]
    assert flagged and all(r.status == "wait" for r in flagged) and adv.verdict != "ready"
    # a real interval is judged as before
    assert not phase_verdict.degenerate(Figure(0.82, 0.79, 0.85, 900), "rate")
    assert not phase_verdict.degenerate(None, "rate") and not phase_verdict.degenerate(Figure(None), "rate")


def test_a_missing_fairness_snapshot_is_computed_on_demand_and_matches_the_fairness_page(sim_services) -> None:
    svc = sim_services
    with svc.db.read() as s:
        assert not SnapshotRepository(s).list("fairness")  # the history was built without the monitors
    ov = svc.experiments.overview()
    fairness = {c.phase: c for c in ov.checks if c.metric == "fairness_ratio"}
    assert fairness and all(NOT_COMPUTED not in c.text for c in fairness.values())
    for phase, c in fairness.items():
        with svc.db.read() as s:
            di = disparate_impact_of(SnapshotRepository(s).get("fairness", "phase", phase))
        assert di is not None and c.figure is not None and c.figure.value == di.value  # the Fairness page's figure
        assert svc.fairness.for_period("phase", phase).value == di.value
    assert svc.experiments.advise(ov)  # and the verdict has the per-arm fairness to compare
