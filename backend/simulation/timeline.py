"""The history's timeline: the rollout phases (shadow, pilot 10%, scaled 50%), each proposed by the product
lead and approved by the risk manager through :class:`RolloutService` (four-eyes, audited) at its
historical date, and which model served when: the champion, and during the data-quality incident a
retrained model that learnt from the corrupted feed, promoted mid-month and rolled back nine days later
(registry events and audit rows at those times)."""

from __future__ import annotations

from datetime import datetime, timedelta

from backend.container import Services
from backend.domain import Actor
from backend.models import RegistryError
from backend.platform.clock import FixedClock
from backend.simulation.cast import ML_ENGINEER, PRODUCT_LEAD, RISK_MANAGER
from backend.simulation.config import SimConfig, SimReport
from backend.simulation.draws import generate_applications

#: month of the history it starts, phase, AI share, senior officers only, the product lead's rationale
PHASE_PLAN = (
    (0, "shadow", 0.0, False, "Shadow mode: the model scores every application silently so that agreement "
                              "with officers can be measured before anyone sees it."),
    (2, "pilot", 0.10, True, "Pilot: 10% of eligible applications through the AI arm, senior officers only, "
                             "loans up to $25,000, confidence threshold 0.70."),
    (4, "scaled", 0.50, False, "Scaled rollout: half of the applications through the AI arm for every "
                               "officer, after the pilot met its criteria."),
)
#: (from when, model version): the model serving from each time on, oldest first
Timeline = list[tuple[datetime, str]]


def ensure_phases(svc: Services, clock: FixedClock, cfg: SimConfig, people: dict[str, Actor]) -> None:
    """The seed's phases, each proposed by the product lead and approved by the risk manager (once)."""
    ro = svc.rollout
    if any(p.proposed_by == PRODUCT_LEAD for p in ro.history()):
        return
    lead, risk = people[PRODUCT_LEAD], people[RISK_MANAGER]
    for month, phase, share, senior_only, why in PHASE_PLAN:
        if month >= cfg.months:
            continue
        starts = cfg.month(month)
        clock.at = starts - timedelta(days=6, hours=-10)
        p = ro.propose(lead, phase=phase, ai_share=share, loan_amount_cap=25_000.0, confidence_threshold=0.70,
                       starts_at=starts, senior_only=senior_only, rationale=why, salt=f"seed-demo-{cfg.seed}")
        clock.at = starts - timedelta(days=3, hours=-15)
        ro.approve(p.version, risk, note="Criteria reviewed; go.")
    ro.invalidate()
    svc.scoring.rollout = ro


def model_timeline(svc: Services, clock: FixedClock, cfg: SimConfig, rep: SimReport) -> Timeline:
    """Which model served when: the champion, and during the incident the retrained one (trained,
    promoted and rolled back here unless a resumed run finds the rollback in the registry already)."""
    reg = svc.models.registry()
    champion = reg.resolve("champion")
    if not cfg.incident or not cfg.retrain:
        return [(cfg.start, champion)]
    events = reg.aliases().get("events", [])
    promote_at = cfg.incident_window[0] + timedelta(days=7, hours=9)
    rollback_at = promote_at + timedelta(days=9, hours=2)
    # resumed (or a rolling history prepared again on a later day): the simulated rollback is in the registry
    done = [e for e in events if e.get("action") == "rollback" and (e.get("at", "").startswith(
        rollback_at.strftime("%Y-%m-%d")) or "(simulated)" in f"{e.get('note', '')} {e.get('cause', '')}")]
    if done:  # resumed: the timeline is in the registry already
        retrained = str(done[-1].get("previous"))
        return [(cfg.start, champion), (promote_at, retrained), (rollback_at, champion)]
    retrained = _retrain(svc, cfg, promote_at)

    admin = svc.model_admin
    ml = Actor(ML_ENGINEER, "ml_engineer")
    clock.at = promote_at
    try:  # a failed gate needs a risk manager's written override before anyone may promote it
        admin.override(Actor(RISK_MANAGER, "risk_manager"), retrained, at=promote_at,
                       reason="monthly retrain approved over the failed gate(s) pending the "
                              f"{cfg.month(cfg.incident_month + 1):%B} review (simulated)")
    except RegistryError:
        pass  # nothing to override: every gate passed
    res = admin.promote(retrained, ml, at=promote_at,
                        note=f"scheduled monthly retrain (simulated); trained on the first weeks of {promote_at:%B}")
    forced = not all(g.get("passed") for g in res.get("gates", []))
    admin.rollback(ml, at=rollback_at, open_incident=False,  # opened by incident_story, once the days are written
                   note="PSI above 0.25 on income, utilization and inquiries; accuracy alerts since the "
                        "promotion: rolled back to the previous champion (simulated)",
                   cause=f"trained on the corrupted {promote_at:%B} feed (PSI above 0.25, accuracy alerts); "
                         "must not serve again (simulated)")
    rep.notes.append(f"model {retrained} promoted {promote_at:%Y-%m-%d}"
                     f"{' (gates overridden)' if forced else ''} and rolled back {rollback_at:%Y-%m-%d}")
    return [(cfg.start, champion), (promote_at, retrained), (rollback_at, champion)]


def serving_at(timeline: Timeline, at: datetime) -> str:
    """The model version serving at ``at`` (the first one before the timeline starts)."""
    return [v for t, v in timeline if t <= at][-1] if any(t <= at for t, _ in timeline) else timeline[0][1]


def _retrain(svc: Services, cfg: SimConfig, at: datetime) -> str:
    """A model trained on applications up to ``at``, half of them from the corrupted feed."""
    from backend.training import train_and_register

    lo, hi = cfg.incident_window
    data = generate_applications(cfg.retrain_rows, seed=cfg.seed + 101, start=lo - timedelta(days=14), end=at,
                                 incident=(lo, hi))
    report = train_and_register(data.drop(columns=["application_id"]), registry_root=svc.settings.model.registry_dir,
                                name=svc.settings.model.name, seed=cfg.seed, cv_folds=2, registered_at=at,
                                registry=svc.models.registry())
    return str(report["version"])


ROLLBACK_REQUESTED_BEFORE = timedelta(minutes=3)  # the ML engineer asked 3 minutes before the switch took effect
POSTMORTEM_TEST = "tests/integration/test_drift.py::test_the_september_incident_stands_out"


def incident_story(svc: Services, timeline: Timeline, rep: SimReport) -> None:
    """The September rollback as an incident, worked through at its historical times (issue 19): opened 3 minutes
    before the rollback took effect, verified from the records 8 minutes after or, on a quieter book, once the restored
    champion has served a few requests (the clock says when the 10 minutes are missed), the retrained model's last decisions
    reviewed by the risk manager, the post-mortem in 20 hours, closed. Nothing when the history has no rollback or
    the incident is closed already (a resumed run)."""
    if len(timeline) < 3:
        return
    retrained, rollback_at = timeline[1][1], timeline[2][0]
    inc = svc.incidents
    inc.open_from_registry(requested_at=rollback_at - ROLLBACK_REQUESTED_BEFORE)
    if inc.get(retrained)["status"] == "closed":
        return
    ml, risk = Actor(ML_ENGINEER, "ml_engineer"), Actor(RISK_MANAGER, "risk_manager")
    ready = inc.records_ready(retrained)  # verified once the records hold a few requests of the restored champion
    verify_at = max(rollback_at + timedelta(minutes=8), (ready or rollback_at) + timedelta(seconds=30))
    result = inc.verify(retrained, ml, at=verify_at)
    for k, row in enumerate(inc.review_sample(retrained, 100)):
        inc.review(retrained, row["application"], risk, at=rollback_at + timedelta(hours=2, minutes=k),
                   note="re-scored with the restored champion; decision stands unless the applicant asks (simulated)")
    inc.postmortem(retrained, ml, owner=ML_ENGINEER, test=POSTMORTEM_TEST, at=rollback_at + timedelta(hours=20),
                   summary="the monthly retrain read the corrupted September feed (monthly incomes, zeroed "
                           "utilization, double-counted inquiries); the drift test now fails on that feed (simulated)")
    if not result["passed"]:
        rep.notes.append("incident left open: verification did not pass " + str(result["checks"]))
        return
    inc.close(retrained, risk, at=rollback_at + timedelta(hours=21))
    rep.notes.append(f"incident for {retrained} closed {rollback_at + timedelta(hours=21):%Y-%m-%d %H:%M}")
