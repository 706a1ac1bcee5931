"""Rollout phases on SQLite and PostgreSQL: propose/approve/reject/withdraw with exactly one audit row
each, four-eyes, validation, ``active(at)`` over a scheduled history, phase changes that apply to new
applications only, and shadow mode in the officer's workspace (hidden result, manual decision)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from cli_identity import sign_in_as_named
from signing_key import SESSION_SIGNING_KEY
from sqlalchemy import func, select
from typer.testing import CliRunner

from backend.decisioning.workspace import AIHidden, WorkspaceService
from backend.domain import Actor
from backend.domain.decision_rules import DecisionError
from backend.platform.db.tables_book import Application, Decision
from backend.platform.db.tables_governance import AuditLog, RolloutConfig
from backend.rollout.service import CONTROL, RolloutError
from backend.training.synthetic import generate

RATIONALE = "Pilot agreed at the steering committee"


def _users(svc) -> SimpleNamespace:
    made = {name: svc.users.add(name, role=role, senior=senior)[0]
            for name, role, senior in [("paul", "product_lead", False), ("pia", "product_lead", False),
                                       ("rita", "risk_manager", True), ("olivia", "loan_officer", True),
                                       ("marcus", "ml_engineer", False)]}
    return SimpleNamespace(**made)


def _audit(db, action: str) -> list[AuditLog]:
    with db.read() as s:
        return list(s.execute(select(AuditLog).where(AuditLog.action == action)).scalars())


def _propose(svc, actor, phase="pilot", share=0.1, **kw):  # noqa: ANN001, ANN003
    kw.setdefault("rationale", RATIONALE)
    return svc.rollout.propose(actor, phase=phase, ai_share=share, loan_amount_cap=25_000.0,
                               confidence_threshold=0.7, **kw)


@pytest.fixture
def r(services):
    return SimpleNamespace(svc=services, **vars(_users(services)))


# -- the four-eyes flow ---------------------------------------------------------------------------------
def test_propose_then_approve_writes_one_audit_row_each(r, clock):
    p = _propose(r.svc, r.paul, senior_only=True, features={"qa": False})
    assert (p.version, p.status, p.proposed_by) == (1, "proposed", "paul")
    assert r.svc.rollout.active().version == 0  # nothing changes until approved
    assert [x.version for x in r.svc.rollout.pending()] == [1]
    clock.advance(minutes=5)
    done = r.svc.rollout.approve(1, r.rita, note="ok")
    assert (done.status, done.reviewed_by, done.starts_at) == ("approved", "rita", clock.now())
    active = r.svc.rollout.active()
    assert (active.version, active.phase, active.senior_only, active.enabled("qa")) == (1, "pilot", True, False)
    proposed, approved = _audit(r.svc.db, "rollout_proposed"), _audit(r.svc.db, "rollout_approved")
    assert len(proposed) == 1 and len(approved) == 1
    assert (proposed[0].actor, proposed[0].role, proposed[0].entity_id) == ("paul", "product_lead", "1")
    assert (approved[0].actor, approved[0].role, approved[0].payload["note"]) == ("rita", "risk_manager", "ok")


def test_reject_needs_a_note_and_writes_one_audit_row(r):
    _propose(r.svc, r.paul)
    with pytest.raises(RolloutError, match="at least 10"):
        r.svc.rollout.reject(1, r.rita, note="no")
    assert _audit(r.svc.db, "rollout_rejected") == []
    done = r.svc.rollout.reject(1, r.rita, note="Wait for the September incident review")
    assert done.status == "rejected" and done.review_note.startswith("Wait")
    assert len(_audit(r.svc.db, "rollout_rejected")) == 1
    assert r.svc.rollout.active().version == 0
    with pytest.raises(RolloutError, match="rejected, not waiting"):
        r.svc.rollout.approve(1, r.rita)


def test_withdraw_only_by_the_proposer(r):
    _propose(r.svc, r.paul)
    with pytest.raises(RolloutError):
        r.svc.rollout.withdraw(1, r.pia)  # another product lead
    with pytest.raises(RolloutError):
        r.svc.rollout.withdraw(1, r.rita)
    assert _audit(r.svc.db, "rollout_withdrawn") == []
    assert r.svc.rollout.withdraw(1, r.paul).status == "withdrawn"
    rows = _audit(r.svc.db, "rollout_withdrawn")
    assert len(rows) == 1 and (rows[0].actor, rows[0].role) == ("paul", "product_lead")
    assert r.svc.rollout.pending() == []


def test_four_eyes(r):
    with pytest.raises(RolloutError, match="loan officer may not propose"):
        _propose(r.svc, r.olivia)
    with pytest.raises(RolloutError, match="ml engineer may not propose"):
        _propose(r.svc, r.marcus)
    _propose(r.svc, r.paul)
    with pytest.raises(RolloutError, match="product lead may not approve"):
        r.svc.rollout.approve(1, r.pia)
    with pytest.raises(RolloutError, match="product lead may not approve"):
        r.svc.rollout.approve(1, r.paul)  # the proposer, and not a risk manager either
    with pytest.raises(RolloutError, match="not an active user"):
        r.svc.rollout.approve(1, SimpleNamespace(username="ghost", role="risk_manager"))  # a stated role is not trusted
    r.svc.users.set_disabled("rita", True)
    with pytest.raises(RolloutError, match="not an active user"):
        r.svc.rollout.approve(1, r.rita)
    with r.svc.db.read() as s:
        assert s.execute(select(RolloutConfig.status)).scalar_one() == "proposed"
    assert _audit(r.svc.db, "rollout_approved") == []


def test_the_proposer_cannot_review_their_own_proposal(r, monkeypatch):
    """Even a user allowed both steps (here a risk manager given PROPOSE_ROLLOUT) cannot approve their own."""
    from backend.domain import permissions

    policy = dict(permissions.POLICY)
    policy[permissions.Role.RISK_MANAGER] = policy[permissions.Role.RISK_MANAGER] | {permissions.Perm.PROPOSE_ROLLOUT}
    monkeypatch.setattr(permissions, "POLICY", policy)
    _propose(r.svc, r.rita)
    with pytest.raises(RolloutError, match="four-eyes"):
        r.svc.rollout.approve(1, r.rita)
    with pytest.raises(RolloutError, match="four-eyes"):
        r.svc.rollout.reject(1, r.rita, note="changed my mind entirely")


@pytest.mark.parametrize(("kw", "message"), [
    ({"phase": "beta"}, "phase must be one of"),
    ({"share": 1.5}, "between 0 and 1"),
    ({"phase": "shadow", "share": 0.2}, "shadow mode shows the AI to nobody"),
    ({"share": 0.0}, "needs an AI share above 0"),
    ({"phase": "full", "share": 0.5}, "full production means an AI share of 1.0"),
    ({"loan_amount_cap": 0.0}, "cap must be above"),
    ({"confidence_threshold": 0.3}, "between 0.5 and 1.0"),
    ({"eligible_roles": ["product_lead"]}, "only loan officers and risk managers"),
    ({"features": {"chat": True}}, "unknown features"),
    ({"rationale": "short"}, "at least 10 characters"),
    ({"rationale": "x" * 2001}, "at most 2,000"),
    ({"rationale": "nul \x00 in the rationale"}, "NUL"),
    ({"rationale": "lone surrogate \udc80 here"}, "lone surrogate"),
    ({"starts_naive": True}, "time zone"),
])
def test_validation_errors_write_nothing(r, clock, kw, message):
    kw = dict(kw)
    phase, share = kw.pop("phase", "pilot"), kw.pop("share", 0.1)
    args = {"loan_amount_cap": 25_000.0, "confidence_threshold": 0.7, "rationale": RATIONALE}
    if kw.pop("starts_naive", False):
        kw["starts_at"] = clock.now().replace(tzinfo=None)
    args.update(kw)
    with pytest.raises(RolloutError, match=message):
        r.svc.rollout.propose(r.paul, phase=phase, ai_share=share, **args)
    with r.svc.db.read() as s:
        assert s.execute(select(func.count()).select_from(RolloutConfig)).scalar_one() == 0
    assert _audit(r.svc.db, "rollout_proposed") == []


def test_active_over_a_scheduled_history(r, clock):
    t0 = clock.now()
    _propose(r.svc, r.paul, "shadow", 0.0, starts_at=t0 + timedelta(days=1))
    _propose(r.svc, r.paul, "pilot", 0.1, starts_at=t0 + timedelta(days=30))
    _propose(r.svc, r.paul, "scaled", 0.5, starts_at=t0 + timedelta(days=60))
    for v in (1, 2, 3):
        r.svc.rollout.approve(v, r.rita)  # approved ahead of time: each keeps its scheduled start
    _propose(r.svc, r.paul, "full", 1.0, starts_at=t0 + timedelta(days=45))
    r.svc.rollout.reject(4, r.rita, note="Not before the pilot review")  # rejected versions never apply

    def at(days: float) -> tuple[int, str]:
        p = r.svc.rollout.active(t0 + timedelta(days=days))
        return p.version, p.phase

    assert at(0) == (0, "full")  # before the first phase: the built-in default
    assert at(1) == (1, "shadow") and at(29.9) == (1, "shadow")
    assert at(30) == (2, "pilot") and at(45) == (2, "pilot")
    assert at(60) == (3, "scaled") and at(400) == (3, "scaled")
    hist = {p.version: p for p in r.svc.rollout.history()}
    assert hist[1].ends_at == hist[2].starts_at and hist[2].ends_at == hist[3].starts_at
    assert hist[3].ends_at is None and hist[4].status == "rejected"
    assert [p.version for p in r.svc.rollout.history()] == [4, 3, 2, 1]  # newest first
    # a proposal approved after its start begins at its approval, not before (no retroactive change)
    _propose(r.svc, r.paul, "pilot", 0.2, starts_at=t0 + timedelta(days=2))
    clock.advance(days=3)
    assert r.svc.rollout.approve(5, r.rita).starts_at == clock.now()
    assert r.svc.rollout.active(t0 + timedelta(days=2, hours=12)).version == 1


def test_cli_rollout_flow_and_errors(r, tmp_path, monkeypatch):
    from backend.cli import app

    for key in [k for k in __import__("os").environ if k.startswith("CREDITRISK_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)  # the copied registries are signed with it
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    monkeypatch.setattr("backend.platform.cli._services_factory", lambda migrate=True: r.svc)
    runner = CliRunner()

    def run(app, args):  # --as NAME is proven by NAME's CLI token
        sign_in_as_named(r.svc, args, tmp_path / "cli-token", monkeypatch)
        return runner.invoke(app, args)

    unproven = runner.invoke(app, ["rollout", "approve", "1", "--as", "rita"])  # no token, no password
    assert unproven.exit_code == 2 and "needs proof" in unproven.output
    ok = run(app, ["rollout", "set", "--phase", "pilot", "--ai-share", "0.1", "--cap", "25000", "--threshold", "0.7",
                   "--senior-only", "--roles", "loan_officer", "--officers", "olivia", "--disable", "qa,letters",
                   "--rationale", RATIONALE, "--as", "paul"])
    assert ok.exit_code == 0, ok.output
    p = r.svc.rollout.pending()[0]
    assert (p.eligible_roles, p.eligible_officers, p.senior_only) == (("loan_officer",), ("olivia",), True)
    assert p.features == {"explanations": True, "qa": False, "letters": False}
    refused = run(app, ["rollout", "approve", "1", "--as", "paul"])
    assert refused.exit_code == 1 and "may not approve" in refused.output
    assert run(app, ["rollout", "reject", "1", "--as", "rita", "--note", "no"]).exit_code == 1
    assert run(app, ["rollout", "approve", "1", "--as", "rita"]).exit_code == 0
    shown = run(app, ["rollout", "show"])
    assert shown.exit_code == 0 and "Pilot (version 1)" in shown.output
    assert run(app, ["rollout", "history", "--json"]).exit_code == 0
    assert run(app, ["rollout", "set", "--phase", "pilot", "--rationale", RATIONALE, "--as", "paul"]).exit_code == 1
    assert run(app, ["rollout", "set", "--phase", "shadow", "--rationale", RATIONALE, "--as", "paul"]).exit_code == 0
    assert run(app, ["rollout", "withdraw", "2", "--as", "paul"]).exit_code == 0
    for cmd in ([], ["show"], ["history"], ["set"], ["approve"], ["reject"], ["withdraw"]):
        assert run(app, ["rollout", *cmd, "--help"]).exit_code == 0


# -- scoring under the phases (needs the trained model) --------------------------------------------------
def _apps(n: int, seed: int) -> list[dict]:
    df = generate(n, seed=seed).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    rows = df.where(df.notna(), None).to_dict("records")
    for i, row in enumerate(rows):
        row["applicant_id"] = f"a-{seed}-{i}"
        row["loan_amount"] = min(float(row["loan_amount"]), 20_000.0)
    return rows


@pytest.fixture
def s(scoring_services):
    return SimpleNamespace(svc=scoring_services, **vars(_users(scoring_services)))


def _score(s, rows, officer=None):  # noqa: ANN001
    u = officer or s.olivia
    return [s.svc.scoring.score(row, submitter=Actor(u.username, u.role, u.id, senior=u.senior)) for row in rows]


def _apps_rows(db) -> dict[str, tuple]:
    with db.read() as ses:
        return {str(a.id): (a.arm, a.phase, a.rollout_version, a.ai_visible)
                for a in ses.execute(select(Application)).scalars()}


def test_a_phase_change_applies_to_new_applications_only(s, clock):
    before = _score(s, _apps(6, seed=1))
    assert {(x.arm, x.phase, x.ai_visible) for x in before} == {("ai", "full", True)}
    snapshot = _apps_rows(s.svc.db)
    _propose(s.svc, s.paul, "shadow", 0.0)
    clock.advance(minutes=1)
    s.svc.rollout.approve(1, s.rita)
    clock.advance(minutes=1)
    after = _score(s, _apps(6, seed=2))
    assert {(x.arm, x.phase, x.ai_visible) for x in after} == {(CONTROL, "shadow", False)}
    rows = _apps_rows(s.svc.db)
    assert {k: rows[k] for k in snapshot} == snapshot  # the old applications keep arm, phase and version
    assert {rows[x.application_id][2] for x in after} == {1}
    # re-scoring an old application (same id, same features) keeps its original arm
    old = dict(_apps(1, seed=9)[0], application_id="EXT-OLD-1")
    clock.advance(minutes=1)
    s.svc.rollout.approve(_propose(s.svc, s.paul, "full", 1.0).version, s.rita)  # back to full
    first = _score(s, [old])[0]
    _propose(s.svc, s.paul, "shadow", 0.0)
    s.svc.rollout.approve(3, s.rita)
    again = _score(s, [old])[0]
    assert (first.arm, first.ai_visible) == ("ai", True)
    assert (again.application_id, again.arm, again.phase, again.ai_visible) == (first.application_id, "ai", "full", True)


def test_pilot_assigns_by_hash_and_eligibility(s):
    _propose(s.svc, s.paul, "pilot", 0.5, senior_only=True)
    s.svc.rollout.approve(1, s.rita)
    junior = s.svc.users.add("oscar", role="loan_officer", senior=False)[0]
    rows = _apps(20, seed=4)
    senior_arms = {x.arm for x in _score(s, rows)}
    assert senior_arms <= {"ai", "control"} and len(senior_arms) == 2  # 20 applicants at 50%: both arms appear
    assert {x.arm for x in _score(s, _apps(3, seed=5), officer=junior)} == {"excluded"}
    big = dict(_apps(1, seed=6)[0], loan_amount=40_000.0)
    assert _score(s, [big])[0].arm == "excluded"


def test_shadow_mode_hides_the_model_from_the_officer(s, clock):
    _propose(s.svc, s.paul, "shadow", 0.0)
    s.svc.rollout.approve(1, s.rita)
    scored = _score(s, _apps(1, seed=7))[0]
    ws: WorkspaceService = s.svc.workspace
    with pytest.raises(AIHidden, match="shadow mode"):
        ws.result(scored.prediction_id, actor=s.olivia)
    case = ws.case(scored.prediction_id, actor=s.olivia)
    assert (case.arm, case.phase, case.prediction_id) == ("control", "shadow", scored.prediction_id)
    assert not {"pd", "recommendation", "reasons", "risk_class"} & set(vars(case))
    with pytest.raises(AIHidden):
        ws.explain(scored.prediction_id, actor=s.olivia)
    with pytest.raises(AIHidden):
        ws.ask(scored.prediction_id, "Why was this decided?", actor=s.olivia)
    manager = ws.result(scored.prediction_id, actor=s.rita)  # a manager sees it, flagged
    assert manager.ai_visible is False and manager.pd == pytest.approx(scored.pd)
    # the manual decision: not an override, with the officer's time recorded
    with pytest.raises(DecisionError, match="principal reason"):
        s.svc.decisions.decide(scored.prediction_id, actor=s.olivia, outcome="deny",
                               idempotency_key=uuid.uuid4().hex)
    started = clock.now() - timedelta(minutes=7)
    view = s.svc.decisions.decide(scored.prediction_id, actor=s.olivia, outcome="deny", reason_code="other",
                                  reason_text="Debt load too high for the stated income after verification.",
                                  idempotency_key=uuid.uuid4().hex, started_at=started)
    assert (view.outcome, view.status, view.is_override, view.decision_seconds) == ("deny", "final", False, 420.0)
    with s.svc.db.read() as ses:
        d = ses.execute(select(Decision)).scalar_one()
        assert (d.is_override, d.override_reason_code, d.decision_seconds) == (False, "other", 420.0)
    rows = _audit(s.svc.db, "decision_manual")
    assert len(rows) == 1 and rows[0].payload["ai_visible"] is False and rows[0].payload["phase"] == "shadow"


def test_features_switched_off_by_the_phase_are_refused(s):
    _propose(s.svc, s.paul, "scaled", 1.0 - 1e-9, features={"explanations": False, "qa": False})
    s.svc.rollout.approve(1, s.rita)
    scored = _score(s, _apps(1, seed=8))[0]
    assert scored.ai_visible
    with pytest.raises(DecisionError, match="switched off"):
        s.svc.workspace.explain(scored.prediction_id, actor=s.olivia)
    with pytest.raises(DecisionError, match="switched off"):
        s.svc.workspace.ask(scored.prediction_id, "Why?", actor=s.olivia)
