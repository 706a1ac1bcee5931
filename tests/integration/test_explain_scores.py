"""Explanations of real scores: ScoreResult → DecisionRecord → template → fact-check, offline."""

from __future__ import annotations

from backend.container.adapters import build_engine
from backend.domain import Actor
from backend.domain.features import PROTECTED
from backend.explanations.factcheck import fact_check
from backend.explanations.record import DecisionRecord
from backend.training.synthetic import generate

OFFICER = Actor("olivia", "loan_officer")


def _apps(n: int, seed: int = 5) -> list[dict]:
    df = generate(n, seed=seed).drop(columns=["default", "pd_true"]).astype(object)
    return df.where(df.notna(), None).to_dict("records")


def test_template_explanations_of_real_scores_pass_the_fact_check(scoring_services):
    engine = build_engine(scoring_services.settings.llm)  # default settings: the template, no LLM
    for res in scoring_services.scoring.score_many(_apps(40), submitter=OFFICER, persist=False):
        record = DecisionRecord.from_score(res)
        assert {r.code for r in record.reasons} == {r["code"] for r in res.reasons}
        assert not set(record.facts) & set(PROTECTED)
        prompt = record.to_prompt_json()
        assert all(p not in prompt for p in PROTECTED) and "application_id" not in prompt
        out = engine.explain(record)
        assert out.explanation.provider == "template" and out.usage == []
        assert fact_check(out.explanation.text, record).ok, fact_check(out.explanation.text, record).summary()
        assert f"{record.pd_percent:.1f}%" in out.explanation.text
