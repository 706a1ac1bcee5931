"""A first hour that teaches (issue 20, item 4), on the simulated history (its scaled phase, 50% AI): the
score page's examples open with AI-arm cases of each recommendation, the preview of the arm is what scoring
records, the arm sentence says why; Home lists each role's pending items."""

from __future__ import annotations

import dataclasses

import pytest

from app.components.pending import pending_items
from backend.domain import Actor
from backend.rollout import assign
from backend.scoring import arm_sentence, example_applications
from backend.scoring.examples import Example, order


@pytest.fixture
def officer(sim_services):
    user, _ = sim_services.users.add("newcomer", role="loan_officer", display_name="New Officer", senior=False,
                                     actor=Actor("admin", "admin"), password="a-long-password-1", rounds=4)
    return user


def test_the_first_three_examples_include_ai_cases_of_each_recommendation(sim_services, officer) -> None:
    svc = sim_services
    phase = svc.scoring.phase_at(svc.clock.now())
    assert phase.phase == "scaled" and phase.ai_share == 0.5
    ex = example_applications(svc.scoring, officer)
    assert len(ex) == 25
    assert [e.arm for e in ex[:3]] == ["ai"] * 3
    assert {e.recommendation for e in ex[:3]} == {"approve", "deny", "manual_review"}
    assert {e.arm for e in ex} >= {"ai", "control"}  # the others are shown too, labelled
    assert all(e.recommendation is None for e in ex if e.arm != "ai")  # never the model's view outside the AI arm
    # the preview is what scoring records
    for e in ex[:6]:
        res = svc.scoring.score(e.raw, submitter=officer, source="console")
        assert res.arm == e.arm
        if e.arm == "ai":
            assert res.recommendation == e.recommendation


def test_order_puts_ai_first_even_when_it_is_rare() -> None:
    raw = {"loan_amount": 1.0}
    pool = [Example(raw, "control", "hash bucket 0.9 >= 0.10", None) for _ in range(30)]
    pool[17] = Example(raw, "ai", "hash bucket 0.01 < 0.10", "deny")
    pool[29] = Example(raw, "ai", "hash bucket 0.02 < 0.10", "approve")
    out = order(pool, 25)
    assert [e.recommendation for e in out[:2]] == ["approve", "deny"] and len(out) == 25  # the policy's order
    assert order([], 25) == []
    only_control = order(pool[:5], 25)
    assert len(only_control) == 5 and all(e.arm == "control" for e in only_control)


def test_the_arm_sentence_says_why(sim_services, officer) -> None:
    phase = sim_services.scoring.phase_at(sim_services.clock.now())
    from backend.rollout import OfficerInfo
    o = OfficerInfo(officer.username, officer.role, False)
    big = assign(phase, applicant_id="x", officer=o, loan_amount=phase.loan_amount_cap + 1)
    assert big.arm == "excluded" and "cap" in arm_sentence(phase, big.arm, big.reason)
    for applicant in (f"A{i}" for i in range(40)):
        a = assign(phase, applicant_id=applicant, officer=o, loan_amount=1000)
        text = arm_sentence(phase, a.arm, a.reason)
        assert text.startswith("AI arm") == (a.arm == "ai") and text.startswith("Control arm") == (a.arm == "control")
    shadow = dataclasses.replace(phase, phase="shadow")
    assert "silently" in arm_sentence(shadow, "control", "shadow mode")


def test_home_lists_each_roles_pending_items(sim_services, officer) -> None:
    svc = sim_services
    risk = svc.users.get("sim.rita")
    lead = svc.users.get("sim.priya")
    svc.alerts.evaluate(refresh=True)  # open alerts, as the monitor would
    svc.rollout.propose(lead, phase="full", ai_share=1.0, loan_amount_cap=25_000.0, confidence_threshold=0.7,
                        starts_at=svc.clock.now(), rationale="Every criterion met; move to full production.")
    by_role = {u.role: {p.what: p for p in pending_items(svc, u)} for u in (risk, lead)}
    assert any("open alerts" in w for w in by_role["risk_manager"])
    assert any("rollout proposals waiting for your review" in w for w in by_role["risk_manager"])
    assert any("of your rollout proposals" in w for w in by_role["product_lead"])
    assert not any("alerts" in w for w in by_role["product_lead"])  # a product lead does not act on alerts
    for p in (*by_role["risk_manager"].values(), *by_role["product_lead"].values()):
        assert p.count > 0 and p.page.endswith(".py")
    svc.scoring.score(example_applications(svc.scoring, officer)[0].raw, submitter=officer, source="console")
    mine = {p.what: p.count for p in pending_items(svc, officer)}
    assert mine.get("applications waiting for your decision") == 1
