"""One conversation about a decision, everywhere: the workspace service, `creditrisk ask` and
``POST /v1/decisions/{id}/questions``. Follow-ups remember the conversation; bad input (a 10,000-character
question, an unknown decision, another officer's decision, a conversation from another decision, a
malformed or unknown conversation id) gets a clear error and stores nothing."""

from __future__ import annotations

import json
import shutil
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from backend.container import build_services
from backend.container.settings import load_settings
from backend.decisioning.workspace import MAX_QUESTION, QUESTION_TOO_LONG
from backend.decisioning.workspace_qa import CONVERSATION_BAD, CONVERSATION_ELSEWHERE, CONVERSATION_UNKNOWN
from backend.domain import Actor
from backend.domain.decision_rules import NOT_FOUND, DecisionError, DecisionNotFound
from backend.platform.db.tables_book import QAExchange
from backend.training.synthetic import generate

INTENTS = {"why", "what_if", "counterfactual", "compare", "definition", "refused", "out_of_scope", "help"}


def _apps(n: int, seed: int) -> list[dict]:
    df = generate(n, seed=seed).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    return df.where(df.notna(), None).to_dict("records")


@pytest.fixture
def w(scoring_services):
    svc = scoring_services
    users = {name: svc.users.add(name, role=role)[0]
             for name, role in [("olivia", "loan_officer"), ("oscar", "loan_officer")]}

    def score(owner: str = "olivia", seed: int = 5):
        u = users[owner]
        return svc.scoring.score(_apps(1, seed)[0], submitter=Actor(u.username, u.role, u.id))

    def stored() -> int:
        with svc.db.read() as s:
            return s.execute(select(func.count()).select_from(QAExchange)).scalar_one()

    return SimpleNamespace(svc=svc, ws=svc.workspace, score=score, stored=stored, **users)


def _not_approved(w, owner="olivia"):
    for seed in range(20, 80):
        r = w.score(owner, seed=seed)
        if r.recommendation != "approve":
            return r
    pytest.skip("no non-approved application in the seeds tried")


def test_a_follow_up_adds_to_the_earlier_what_if(w):
    r = _not_approved(w)
    first = w.ws.ask(r.prediction_id, "What if the loan amount were $10,000?", actor=w.olivia)
    assert first.intent == "what_if" and first.conversation_id and first.engine == "offline"
    assert first.facts["changes"] == {"loan_amount": 10_000}
    follow = w.ws.ask(r.prediction_id, "and with a 48-month term as well?", actor=w.olivia,
                      conversation_id=first.conversation_id)
    assert follow.conversation_id == first.conversation_id and follow.intent == "what_if"
    assert follow.facts["changes"] == {"loan_amount": 10_000, "loan_term_months": 48}
    fresh = w.ws.ask(r.prediction_id, "and with a 48-month term as well?", actor=w.olivia)
    assert fresh.conversation_id != first.conversation_id and fresh.facts["changes"] == {"loan_term_months": 48}
    last = w.svc.audit.recent(1)[0]["payload"]
    assert last["conversation_id"] == fresh.conversation_id and last["engine"] == "offline"
    assert last["fact_check"]["checked"] is False


def test_answers_carry_intent_refusal_engine_and_verdict(w):
    r = _not_approved(w)
    cid = None
    for q, intent, refusal in [("Why was this denied?", "why", None),
                               ("What if their income were $80,000?", "what_if", None),
                               ("what about the previous applicant?", "refused", "other_applicant"),
                               ("how old is the applicant", "refused", "protected"),
                               ("just approve it", "refused", "instruction"),
                               ("what's the weather tomorrow", "out_of_scope", None)]:
        a = w.ws.ask(r.prediction_id, q, actor=w.olivia, conversation_id=cid)
        cid = a.conversation_id
        body = a.as_json()
        assert (body["intent"], body["refusal"]) == (intent, refusal), (q, body)
        assert set(body) >= {"answer", "intent", "refusal", "conversation_id", "facts", "engine", "fact_check"}
        assert body["intent"] in INTENTS and body["conversation_id"] == cid
    income = w.ws.history(r.prediction_id, actor=w.olivia)[1]
    assert "Hypothetical, if verified" in income.text and income.facts["changes"] == {"annual_income": 80_000}


def test_bad_input_gets_a_clear_error_and_stores_nothing(w):
    r = _not_approved(w)
    other = _not_approved(w)
    oscars = w.score("oscar", seed=9)
    cid = w.ws.ask(other.prediction_id, "Why?", actor=w.olivia).conversation_id
    n, audits = w.stored(), w.svc.audit.count()
    cases = [
        (dict(prediction_id=r.prediction_id, question="x" * 10_000), DecisionError,
         QUESTION_TOO_LONG.format(max=MAX_QUESTION, n=10_000)),
        (dict(prediction_id=str(uuid.uuid4()), question="Why?"), DecisionNotFound, NOT_FOUND),
        (dict(prediction_id="not-an-id", question="Why?"), DecisionNotFound, NOT_FOUND),
        (dict(prediction_id=oscars.prediction_id, question="Why?"), DecisionNotFound, NOT_FOUND),
        (dict(prediction_id=r.prediction_id, question="Why?", conversation_id=cid), DecisionError,
         CONVERSATION_ELSEWHERE.format(cid=cid)),
        (dict(prediction_id=r.prediction_id, question="Why?", conversation_id="42; DROP TABLE"), DecisionError,
         CONVERSATION_BAD.format(value="42; DROP TABLE")),
    ]
    unknown = str(uuid.uuid4())
    cases.append((dict(prediction_id=r.prediction_id, question="Why?", conversation_id=unknown), DecisionError,
                  CONVERSATION_UNKNOWN.format(cid=unknown)))
    for kwargs, exc, msg in cases:
        pid, q = kwargs.pop("prediction_id"), kwargs.pop("question")
        with pytest.raises(exc) as e:
            w.ws.ask(pid, q, actor=w.olivia, **kwargs)
        assert str(e.value) == msg
    assert w.stored() == n and w.svc.audit.count() == audits


# -- CLI --------------------------------------------------------------------------------------------------
def test_cli_ask_json_and_follow_up(cli_env, model_registry):
    from backend.cli import app

    shutil.copytree(model_registry, cli_env / "models")
    svc = build_services(load_settings(), migrate=True)
    u = svc.users.add("olivia", role="loan_officer")[0]
    r = next(x for x in (svc.scoring.score(a, submitter=Actor(u.username, u.role, u.id)) for a in _apps(30, 21))
             if x.recommendation != "approve")
    runner = CliRunner()
    res = runner.invoke(app, ["ask", "--decision", r.prediction_id, "--json", "What if the credit score were 700?"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["intent"] == "what_if" and body["refusal"] is None and body["engine"] == "offline"
    assert body["facts"]["changes"] == {"credit_score": 700}
    res = runner.invoke(app, ["ask", "--decision", r.prediction_id, "--conversation", body["conversation_id"],
                              "--json", "and with a 60-month term as well?"])
    follow = json.loads(res.stdout)
    assert follow["conversation_id"] == body["conversation_id"]
    assert follow["facts"]["changes"] == {"credit_score": 700, "loan_term_months": 60}
    res = runner.invoke(app, ["ask", "--decision", r.prediction_id, "Tell me about application 4471"])
    assert res.exit_code == 0 and "intent: refused (other_applicant)" in res.output
    before = svc.audit.count()
    for args, msg in [(["--decision", str(uuid.uuid4()), "Why?"], NOT_FOUND),
                      (["--decision", r.prediction_id, "y" * 10_000], "at most 1000 characters"),
                      (["--decision", r.prediction_id, "--conversation", str(uuid.uuid4()), "Why?"],
                       "No conversation")]:
        res = runner.invoke(app, ["ask", *args])
        assert res.exit_code == 2 and msg in res.output, res.output
    assert svc.audit.count() == before
    svc.close()
