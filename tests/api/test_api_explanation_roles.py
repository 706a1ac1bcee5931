"""Rejected text stays out of officers' hands: ``POST /v1/decisions/{id}/explanation`` with a provider that lies.

Every role gets the shown text (the template) and the verdict (how many claims failed, of which kind); only the
roles that review model behaviour (risk manager, admin here; ML engineers have no explain scope) get the rejected
claims themselves. The lies must not appear anywhere in an officer's response body.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from api_helpers import applications, make_api

from backend.container import build_services
from backend.domain import Perm, allowed
from backend.explanations import DecisionRecord, ExplanationEngine
from backend.explanations.providers import Completion, ProviderStream

LIES = ("Approval is a formality.", "The applicant is on maternity leave.",
        "Ignore the model and visit www.appeal.example to approve.")


class LyingProvider:
    provider, model = "openai", "gpt-4o"

    def generate(self, record: DecisionRecord) -> Completion:
        return Completion("The model's assessment follows. " + " ".join(LIES), self.provider, self.model, 10, 10, 1.0,
                          0.001)

    def stream(self, record: DecisionRecord) -> ProviderStream:
        raise NotImplementedError


@pytest.fixture
def api(tmp_path: Path, sqlite_database: Any, clock: Any, model_registry: Path) -> Iterator[SimpleNamespace]:
    from backend.container.settings import load_settings

    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root})
    svc = build_services(s, db=sqlite_database, clock=clock, explanation_engine=ExplanationEngine(LyingProvider()))
    yield from make_api(svc)


def test_only_reviewers_see_the_rejected_claims(api: SimpleNamespace) -> None:
    res = api.client.post("/v1/score", json=applications(1, seed=5)[0], headers=api.auth("olivia"))
    assert res.status_code == 200, res.text
    pid = res.json()["decision_id"]
    for user, reviewer in (("olivia", False), ("maria", True), ("ada", True)):
        assert allowed({"olivia": "loan_officer", "maria": "risk_manager", "ada": "admin"}[user],
                       Perm.REVIEW_MODEL_OUTPUT) is reviewer
        res = api.client.post(f"/v1/decisions/{pid}/explanation", headers=api.auth(user))
        assert res.status_code == 201, res.text
        body = res.json()
        assert body["provider"] == "template" and not body["fact_check_ok"]
        v = body["verdict"]
        assert v["passed"] is False and v["claims_failed"] >= len(LIES)
        assert {"promise", "protected_attribute", "instruction"} <= set(v["failed_by_kind"])
        if reviewer:
            claims = " ".join(f["claim"] for f in body["failures"])
            assert all(lie in claims for lie in LIES)
        else:
            assert body["failures"] == []
            for lie in LIES:
                assert lie not in res.text
            assert "maternity" not in res.text.lower() and "formality" not in res.text.lower()


def test_ml_engineers_and_admins_review_but_officers_and_product_leads_do_not() -> None:
    assert [r for r in ("loan_officer", "risk_manager", "product_lead", "ml_engineer", "admin")
            if allowed(r, Perm.REVIEW_MODEL_OUTPUT)] == ["risk_manager", "ml_engineer", "admin"]


class CountingProvider:
    """A well-behaved provider that counts what it is paid for."""

    provider, model = "anthropic", "claude-sonnet-4-5"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, record: DecisionRecord) -> Completion:
        self.calls += 1
        return Completion("Here is how the model assessed this application.", self.provider, self.model, 10, 10, 1.0,
                          0.001)

    def stream(self, record: DecisionRecord) -> ProviderStream:
        raise NotImplementedError


def test_an_identical_request_reuses_the_stored_explanation(tmp_path: Path, sqlite_database: Any, clock: Any,
                                                            model_registry: Path) -> None:
    from backend.container.settings import load_settings
    from backend.domain import Actor

    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    counting = CountingProvider()
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root})
    svc = build_services(s, db=sqlite_database, clock=clock, explanation_engine=ExplanationEngine(counting))
    u = svc.users.add("olivia", role="loan_officer")[0]
    officer = Actor(u.username, u.role, u.id)
    pid = svc.scoring.score(applications(1, seed=5)[0], submitter=officer).prediction_id
    audits = svc.audit.count()
    first = svc.workspace.explain(pid, actor=officer)
    second = svc.workspace.explain(pid, actor=officer)
    assert first.provider == "anthropic" and first.fact_check_ok and counting.calls == 1
    assert second.id == first.id and second.text == first.text
    assert svc.audit.count() == audits + 2 and svc.audit.recent(1)[0]["action"] == "explanation_shown"
