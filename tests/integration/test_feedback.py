"""Explanation feedback and the monthly survey on SQLite and PostgreSQL: access, refusals, audit
rows, one answer per month, NPS and helpfulness arithmetic, and the bulk variants' audit chain."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from backend.decisioning import feedback as fb
from backend.decisioning.feedback import FeedbackError, FeedbackItem, SurveyItem
from backend.domain import Actor
from backend.domain.decision_rules import NOT_FOUND, TEXT_NUL, DecisionNotFound
from backend.platform.db.tables_book import ExplanationFeedback, SurveyResponse
from backend.platform.db.tables_governance import AuditLog
from backend.training.synthetic import generate


def _app(seed: int) -> dict:
    df = generate(1, seed=seed).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    return df.where(df.notna(), None).to_dict("records")[0]


def _count(db, table, *where) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


@pytest.fixture
def f(scoring_services):
    svc = scoring_services
    users = {name: svc.users.add(name, role=role)[0]
             for name, role in [("olivia", "loan_officer"), ("oscar", "loan_officer"), ("maria", "risk_manager"),
                                ("paul", "product_lead")]}

    def score(owner: str = "olivia", seed: int = 5):
        u = users[owner]
        return svc.scoring.score(_app(seed), submitter=Actor(u.username, u.role, u.id))

    return SimpleNamespace(svc=svc, fb=svc.feedback, db=svc.db, score=score, clock=svc.clock, **users)


@pytest.fixture
def survey(services):
    """Survey tests need no model: users only."""
    users = {name: services.users.add(name, role=role)[0]
             for name, role in [("olivia", "loan_officer"), ("oscar", "loan_officer"), ("maria", "risk_manager"),
                                ("paul", "product_lead")]}
    return SimpleNamespace(svc=services, fb=services.feedback, db=services.db, clock=services.clock, **users)


# -- explanation feedback --------------------------------------------------------------------------------
def test_rating_links_latest_explanation_with_one_audit_row(f):
    r = f.score()
    e1 = f.svc.workspace.explain(r.prediction_id, actor=f.olivia)
    f.clock.advance(seconds=5)
    e2 = f.svc.workspace.explain(r.prediction_id, actor=f.olivia)
    before = f.svc.audit.count()
    v = f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=True, comment="<b>clear</b> =1+1")
    assert (v.explanation_id, v.helpful, v.comment) == (e2.id, True, "<b>clear</b> =1+1") and e1.id != e2.id
    assert f.svc.audit.count() == before + 1
    last = f.svc.audit.recent(1)[0]
    assert (last["action"], last["actor"], last["entity_id"]) == ("explanation_feedback", "olivia", v.id)
    assert last["payload"]["explanation_id"] == e2.id and last["payload"]["helpful"] is True
    with f.db.read() as s:
        row = s.get(ExplanationFeedback, uuid.UUID(v.id))
        assert row.comment == "<b>clear</b> =1+1" and row.user_id == f.olivia.id
    assert f.svc.audit.verify().ok


def test_officer_cannot_rate_another_officers_decision(f):
    r = f.score("olivia")
    f.svc.workspace.explain(r.prediction_id, actor=f.olivia)
    for who in (f.oscar, f.paul):
        for call in (lambda: f.fb.rate_explanation(r.prediction_id, actor=who, helpful=False),
                     lambda: f.fb.latest_rating(r.prediction_id, actor=who)):
            with pytest.raises(DecisionNotFound) as e:
                call()
            assert str(e.value) == NOT_FOUND
    for bad in (str(uuid.uuid4()), "not-a-uuid", ""):
        with pytest.raises(DecisionNotFound) as e:
            f.fb.rate_explanation(bad, actor=f.olivia, helpful=True)
        assert str(e.value) == NOT_FOUND
    assert f.fb.rate_explanation(r.prediction_id, actor=f.maria, helpful=True).helpful  # managers see all
    f.svc.users.set_disabled("olivia", True)
    with pytest.raises(DecisionNotFound):
        f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=True)
    ghost = Actor("ghost", "risk_manager", uuid.uuid4(), "Ghost")
    with pytest.raises(FeedbackError, match=fb.NOT_A_USER):
        f.fb.rate_explanation(r.prediction_id, actor=ghost, helpful=True)
    assert _count(f.db, ExplanationFeedback) == 1


def test_no_explanation_yet_and_bad_values_are_refused(f):
    r = f.score()
    before = f.svc.audit.count()
    with pytest.raises(FeedbackError) as e:
        f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=True)
    assert str(e.value) == fb.NO_EXPLANATION
    f.svc.workspace.explain(r.prediction_id, actor=f.olivia)
    with pytest.raises(FeedbackError, match=fb.BAD_HELPFUL):
        f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful="yes")  # type: ignore[arg-type]
    with pytest.raises(FeedbackError) as e:
        f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=True, comment="x" * 1001)
    assert str(e.value) == fb.COMMENT_TOO_LONG.format(max=1000, n=1001)
    with pytest.raises(FeedbackError) as e:
        f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=True, comment="a\x00b")
    assert str(e.value) == TEXT_NUL
    assert _count(f.db, ExplanationFeedback) == 0 and f.svc.audit.count() == before + 1  # the explanation only
    assert f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=True, comment="x" * 1000).comment
    assert f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=True, comment="   ").comment is None


def test_changing_ones_mind_keeps_both_and_latest_wins(f):
    r = f.score()
    f.svc.workspace.explain(r.prediction_id, actor=f.olivia)
    assert f.fb.latest_rating(r.prediction_id, f.olivia) is None
    first = f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=True)
    second = f.fb.rate_explanation(r.prediction_id, actor=f.olivia, helpful=False, comment="on reflection, vague")
    assert second.at > first.at  # the clock stands still in tests: the newer one is still strictly newer
    assert f.fb.latest_rating(r.prediction_id, f.olivia) == second
    assert f.fb.latest_rating(r.prediction_id, f.maria) is None
    assert _count(f.db, ExplanationFeedback) == 2
    assert _count(f.db, AuditLog, AuditLog.action == "explanation_feedback") == 2
    h = f.fb.helpfulness()
    assert (h.share, h.n) == (0.0, 1)  # one user, one explanation: the newest verdict counts once


# -- survey ----------------------------------------------------------------------------------------------
def test_survey_once_per_period_with_audit(survey):
    now = survey.clock.now()  # 2026-01-15
    assert survey.fb.survey_due(survey.olivia, now)
    v = survey.fb.submit_survey(actor=survey.olivia, period="2026-01", nps=9, satisfaction=4, comment="=SUM(A1)")
    assert (v.period, v.nps, v.satisfaction, v.comment) == ("2026-01", 9, 4, "=SUM(A1)")
    assert not survey.fb.survey_due(survey.olivia, now)
    assert survey.fb.survey_due(survey.olivia, now + timedelta(days=20))  # February
    assert survey.fb.survey_due(survey.oscar, now)
    with pytest.raises(FeedbackError) as e:
        survey.fb.submit_survey(actor=survey.olivia, period="2026-01", nps=3)
    assert str(e.value) == fb.SURVEY_DONE.format(period="2026-01")
    survey.fb.submit_survey(actor=survey.olivia, period="2025-12", nps=5)  # a late answer for last month
    assert _count(survey.db, SurveyResponse) == 2
    rows = survey.svc.audit.recent(2, action="survey_submitted")
    assert [r["payload"]["period"] for r in rows] == ["2025-12", "2026-01"] and rows[1]["actor"] == "olivia"
    assert rows[1]["payload"]["comment"] == "=SUM(A1)"


def test_survey_values_and_roles(survey):
    bad = [({"period": "2026-1", "nps": 5}, fb.BAD_PERIOD.format(period="2026-1")),
           ({"period": "2026-13", "nps": 5}, fb.BAD_PERIOD.format(period="2026-13")),
           ({"period": "2026-02", "nps": 5}, fb.FUTURE_PERIOD.format(period="2026-02")),
           ({"period": "2026-01", "nps": 11}, fb.BAD_NPS), ({"period": "2026-01", "nps": -1}, fb.BAD_NPS),
           ({"period": "2026-01", "nps": True}, fb.BAD_NPS), ({"period": "2026-01", "nps": 7.5}, fb.BAD_NPS),
           ({"period": "2026-01", "nps": 5, "satisfaction": 0}, fb.BAD_SATISFACTION),
           ({"period": "2026-01", "nps": 5, "satisfaction": 6}, fb.BAD_SATISFACTION),
           ({"period": "2026-01", "nps": 5, "comment": "y" * 1001}, fb.COMMENT_TOO_LONG.format(max=1000, n=1001))]
    for kwargs, msg in bad:
        with pytest.raises(FeedbackError) as e:
            survey.fb.submit_survey(actor=survey.olivia, **kwargs)
        assert str(e.value) == msg, kwargs
    assert not survey.fb.survey_due(survey.paul, survey.clock.now())  # a product lead is not asked
    with pytest.raises(FeedbackError, match=fb.SURVEY_NOT_FOR_ROLE):
        survey.fb.submit_survey(actor=survey.paul, period="2026-01", nps=5)
    assert _count(survey.db, SurveyResponse) == 0
    assert survey.fb.submit_survey(actor=survey.maria, period="2026-01", nps=0, satisfaction=1).nps == 0


def test_nps_arithmetic(survey):
    # NPS: 10, 9, 9 promoters; 8, 7 passives; 6, 0 detractors -> (3 - 2) / 7 = 14.2857 %
    t0 = datetime(2025, 11, 10, tzinfo=UTC)
    people = [survey.svc.users.add(f"user{i}", role="loan_officer")[0] for i in range(7)]
    survey.fb.record_surveys_many([SurveyItem(u.id, u.username, u.role, "2025-11", t0 + timedelta(hours=i), score)
                                   for i, (u, score) in enumerate(zip(people, [10, 9, 9, 8, 7, 6, 0], strict=True))])
    s = survey.fb.nps()
    assert (s.n, s.promoters, s.passives, s.detractors) == (7, 3, 2, 2)
    assert s.score == pytest.approx(100 * 1 / 7, abs=1e-3)
    assert survey.fb.nps(since=t0 + timedelta(hours=5)).detractors == 2  # only the last two (6, 0)
    only = survey.fb.nps(since=t0 + timedelta(hours=5))
    assert only.score == -100.0 and only.n == 2
    assert survey.fb.nps(until=t0).n == 0 and survey.fb.nps(until=t0).score is None


def test_helpfulness_counts_each_users_newest_verdict(f):
    r1, r2 = f.score(seed=5), f.score(seed=6)
    e1 = f.svc.workspace.explain(r1.prediction_id, actor=f.olivia)
    e2 = f.svc.workspace.explain(r2.prediction_id, actor=f.olivia)
    t = datetime(2025, 12, 1, tzinfo=UTC)
    items = [  # olivia on e1: yes then no (counts no); maria on e1: yes; olivia on e2: yes; maria on e2: no, then yes
        FeedbackItem(uuid.UUID(r1.prediction_id), uuid.UUID(e1.id), f.olivia.id, "olivia", "loan_officer", t, True),
        FeedbackItem(uuid.UUID(r1.prediction_id), uuid.UUID(e1.id), f.olivia.id, "olivia", "loan_officer",
                     t + timedelta(minutes=1), False, "changed my mind"),
        FeedbackItem(uuid.UUID(r1.prediction_id), uuid.UUID(e1.id), f.maria.id, "maria", "risk_manager", t, True),
        FeedbackItem(uuid.UUID(r2.prediction_id), uuid.UUID(e2.id), f.olivia.id, "olivia", "loan_officer",
                     t + timedelta(days=10), True),
        FeedbackItem(uuid.UUID(r2.prediction_id), uuid.UUID(e2.id), f.maria.id, "maria", "risk_manager",
                     t + timedelta(days=10), False),
        FeedbackItem(uuid.UUID(r2.prediction_id), uuid.UUID(e2.id), f.maria.id, "maria", "risk_manager",
                     t + timedelta(days=11), True),
    ]
    assert f.fb.record_feedback_many(items) == 6
    h = f.fb.helpfulness()
    assert (h.n, h.share) == (4, 0.75)  # no, yes, yes, yes
    dec = f.fb.helpfulness(since=t, until=t + timedelta(days=1))
    assert (dec.n, dec.share) == (2, 0.5)  # only the first three rows: olivia's no, maria's yes
    assert f.fb.helpfulness(until=t).n == 0 and f.fb.helpfulness(until=t).share is None


def test_bulk_variants_keep_the_audit_chain_and_validate(f):
    r = f.score()
    e = f.svc.workspace.explain(r.prediction_id, actor=f.olivia)
    before = f.svc.audit.count()
    t = datetime(2025, 9, 1, tzinfo=UTC)
    pid, eid = uuid.UUID(r.prediction_id), uuid.UUID(e.id)
    n = f.fb.record_feedback_many([FeedbackItem(pid, eid, f.olivia.id, "olivia", "loan_officer",
                                                t + timedelta(hours=i), i % 2 == 0, None) for i in range(50)])
    m = f.fb.record_surveys_many([SurveyItem(f.olivia.id, "olivia", "loan_officer", f"2025-{mo:02d}",
                                             datetime(2025, mo, 28, tzinfo=UTC), mo - 2, 3) for mo in range(8, 13)])
    assert (n, m) == (50, 5)
    assert f.svc.audit.count() == before + 55
    report = f.svc.audit.verify()
    assert report.ok, report.detail
    with f.db.read() as s:
        ats = list(s.execute(select(AuditLog.at).where(AuditLog.action == "survey_submitted")
                             .order_by(AuditLog.seq)).scalars())
    assert ats == [datetime(2025, mo, 28, tzinfo=UTC) for mo in range(8, 13)]  # each item's own time
    # the survey index: one per user and period, in the batch or against the stored ones; nothing half-written
    dec = datetime(2025, 12, 30, tzinfo=UTC)
    again = [SurveyItem(f.maria.id, "maria", "risk_manager", "2025-12", dec, 9),
             SurveyItem(f.olivia.id, "olivia", "loan_officer", "2025-12", dec, 9)]
    with pytest.raises(FeedbackError, match="nothing was recorded"):
        f.fb.record_surveys_many(again)
    with pytest.raises(FeedbackError, match="nothing was recorded"):
        f.fb.record_surveys_many([again[0], again[0]])
    for bad, msg in ((SurveyItem(f.maria.id, "maria", "risk_manager", "2025-11", dec.replace(tzinfo=None), 9),
                      fb.NAIVE_TIME),
                     (SurveyItem(f.maria.id, "maria", "risk_manager", "2025-11", dec, 12), fb.BAD_NPS),
                     (SurveyItem(f.maria.id, "maria", "risk_manager", "2026-01", dec, 5), "has not started")):
        with pytest.raises(FeedbackError, match=re.escape(msg)):
            f.fb.record_surveys_many([again[0], bad])
    with pytest.raises(FeedbackError):
        f.fb.record_feedback_many([FeedbackItem(pid, eid, f.maria.id, "maria", "risk_manager", t, True, "\x00")])
    assert _count(f.db, SurveyResponse) == 5 and _count(f.db, ExplanationFeedback) == 50
    assert f.svc.audit.count() == before + 55 and f.svc.audit.verify().ok
