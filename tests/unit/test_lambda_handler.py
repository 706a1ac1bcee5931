"""The Lambda handler called directly (no network): the record's JSON round trip, malformed events,
the function's own settings, cold and warm containers, and the reply's shape."""

from __future__ import annotations

import json
import math
import os
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from backend.container.adapters import build_engine
from backend.explanations.engine import ExplanationEngine
from backend.explanations.factcheck import WRONG_NUMBER
from backend.explanations.providers import Completion, ProviderStream
from backend.explanations.record import DecisionRecord, RecordError
from backend.explanations.template import TemplateExplainer
from backend.serving import explain_lambda as lambda_handler
from backend.serving.explain_lambda import BAD_REQUEST, CONFIG, LAMBDA_RECURSION, handler

PII = "Jane Q. Applicant 078-05-1120"


def _result(**features: Any) -> SimpleNamespace:
    reasons = [{"code": "excessive_obligations", "text": "Excessive obligations in relation to income",
                "features": [{"name": "debt_to_income", "value": 0.48, "contribution": 0.5},
                             {"name": "monthly_debt_payments", "value": 1250.0, "contribution": 0.2}]}]
    attributions = {"debt_to_income": 0.5, "monthly_debt_payments": 0.2, "employment_type": -0.3,
                    "savings_balance": -0.1, "months_employed": 0.05, "income_verified": -0.04, "sex": 0.9}
    values = {"debt_to_income": 0.48, "monthly_debt_payments": 1250.0, "employment_type": "self_employed",
              "savings_balance": 8000.0, "months_employed": None, "income_verified": True, "sex": "female", **features}
    return SimpleNamespace(recommendation="manual_review", pd=0.1834, confidence=0.8, risk_class="low_risk",
                           model_version="3", reasons=reasons, attributions=attributions, features=values,
                           policy_reasons=["confidence_below_threshold"], application_id="APP-1")


@pytest.fixture
def record() -> DecisionRecord:
    return DecisionRecord.from_score(_result())


@pytest.fixture(autouse=True)
def cold_container(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.setattr(lambda_handler, "_ENGINE", None)


def _wire(d: dict[str, Any]) -> Any:
    """What the function receives: strict JSON (no NaN literal) parsed back."""
    return json.loads(json.dumps(d, allow_nan=False))


# -- the record's JSON form ---------------------------------------------------------------------------------
def test_round_trip_is_lossless(record: DecisionRecord) -> None:
    back = DecisionRecord.from_dict(_wire(record.to_dict()))
    assert back == record and list(back.facts) == list(record.facts)
    assert back.to_prompt_json() == record.to_prompt_json() and back.reason_codes == record.reason_codes
    assert back.facts["income_verified"].value is True and back.facts["months_employed"].value is None


def test_round_trip_of_nonfinite_and_numpy_values() -> None:
    rec = DecisionRecord.from_score(_result(months_employed=float("nan"), savings_balance=np.float64(8000.0),
                                            debt_to_income=np.float32(0.5)))
    d = _wire(rec.to_dict())
    assert d["facts"]["months_employed"]["value"] == {"nonfinite": "nan"}
    back = DecisionRecord.from_dict(d)
    assert math.isnan(back.facts["months_employed"].value) and back.facts["months_employed"].display == "not available"
    assert back.to_dict() == d and back.facts["savings_balance"].value == 8000.0


# -- malformed events ---------------------------------------------------------------------------------------
def _bad_events(record: DecisionRecord) -> list[Any]:
    good = record.to_dict()
    fact = good["facts"]["debt_to_income"]

    def rec(**changes: Any) -> dict[str, Any]:
        return {"record": {**good, **changes}}

    def with_fact(**changes: Any) -> dict[str, Any]:
        return rec(facts={**good["facts"], "debt_to_income": {**fact, **changes}})

    return [
        None, [], PII, 42, {}, {"records": good}, {"record": good, PII: PII}, {"record": None}, {"record": [good]},
        rec(pd="0.18"), rec(pd=1.5), rec(pd=-0.1), rec(pd=True), rec(pd=math.nan), rec(pd=10**400),
        rec(confidence=None), rec(recommendation=PII), rec(risk_class=7), rec(application_id=12345),
        rec(policy_reasons=PII), rec(policy_reasons=[1]), rec(reasons={"0": PII}), rec(facts=[fact]),
        {"record": {k: v for k, v in good.items() if k != "pd"}}, {"record": {**good, PII: 1}},
        rec(reasons=[{"code": "x", "text": PII, "features": ["savings"]}]),
        rec(reasons=[{"code": "x", "text": PII}]),
        rec(facts={**good["facts"], PII: fact}),
        with_fact(name="sex", value=PII), with_fact(name="applicant_name"), with_fact(value=[PII]),
        with_fact(value={"ssn": PII}), with_fact(value={"nonfinite": PII}), with_fact(value=math.inf),
        with_fact(contribution="0.5"), with_fact(contribution=10**400), with_fact(value=10**400),
        with_fact(unit=3), with_fact(extra=PII),
    ]


def test_malformed_events_get_a_structured_refusal_without_values(record: DecisionRecord) -> None:
    for i, event in enumerate(_bad_events(record)):
        reply = handler(event, None)
        assert reply["ok"] is False and reply["error"]["kind"] == BAD_REQUEST, i
        message = reply["error"]["message"]
        assert message and "\n" not in message and "Traceback" not in message, i
        assert PII not in json.dumps(reply) and "078-05" not in message, i
    assert lambda_handler._ENGINE is None  # a malformed event does not even build the engine


def test_from_dict_names_the_field() -> None:
    good = DecisionRecord.from_score(_result()).to_dict()
    with pytest.raises(RecordError, match=r"^record\.facts\[0\]\.value: must be null"):
        DecisionRecord.from_dict({**good, "facts": {"debt_to_income": {**good["facts"]["debt_to_income"],
                                                                       "value": [1]}}})
    with pytest.raises(RecordError, match=r"^record\.reasons\[0\]\.features\[0\]: must name one of the record"):
        DecisionRecord.from_dict({**good, "reasons": [{"code": "c", "text": "t", "features": ["savings_balance_x"]}]})


# -- the function's settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["CREDITRISK_LLM__PROVIDER", "CREDITRISK_LLM__FALLBACK__PROVIDER"])
def test_the_function_refuses_to_call_itself(record: DecisionRecord, monkeypatch: pytest.MonkeyPatch,
                                             env: str) -> None:
    monkeypatch.setenv(env, "lambda")
    monkeypatch.setenv("CREDITRISK_LLM__MODEL", "creditrisk-explain")
    assert handler({"record": record.to_dict()}, None) == {
        "ok": False, "error": {"kind": CONFIG, "message": LAMBDA_RECURSION}}


def test_malformed_function_setting_names_the_variable(record: DecisionRecord,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITRISK_LLM__PROVIDER", "openai")
    monkeypatch.setenv("CREDITRISK_LLM__API_KEY", "sk-do-not-echo")
    monkeypatch.setenv("CREDITRISK_LLM__TIMEOUT", "-1")
    reply = handler({"record": record.to_dict()}, None)
    assert reply["ok"] is False and reply["error"]["kind"] == CONFIG
    assert reply["error"]["message"].startswith("Invalid setting CREDITRISK_LLM__TIMEOUT:")
    assert "sk-do-not-echo" not in json.dumps(reply)


def test_the_function_ignores_other_backends_settings(record: DecisionRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only CREDITRISK_LLM__* matters in the function: no database, no cookie key needed in production."""
    monkeypatch.setenv("CREDITRISK_ENV", "production")
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", "mysql://not-used")
    assert handler({"record": record.to_dict()}, None)["ok"] is True


# -- replies, cold and warm ------------------------------------------------------------------------------------
def test_template_reply_and_cold_then_warm(record: DecisionRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Any] = []

    def counting(settings: Any, **kw: Any) -> ExplanationEngine:
        builds.append(settings)
        return build_engine(settings, **kw)

    monkeypatch.setattr(lambda_handler, "build_engine", counting)
    first = handler({"record": record.to_dict()}, None)
    second = handler(_wire({"record": record.to_dict()}), None)
    assert len(builds) == 1 and first == second  # built on the cold start, reused while warm
    assert first == {"ok": True, "text": TemplateExplainer().render(record), "provider": "template",
                     "model": "template-v1", "fallback_used": False, "fact_check_ok": True, "failures": [],
                     "usage": []}
    json.dumps(first, allow_nan=False)  # what the runtime serialises


class _Liar:
    provider, model = "openai", "gpt-4o"

    def generate(self, record: DecisionRecord) -> Completion:
        text = TemplateExplainer().render(record).replace("18.3%", "11.3%")
        return Completion(text, self.provider, self.model, 800, 90, 12.0, 0.0029)

    def stream(self, record: DecisionRecord) -> ProviderStream:  # pragma: no cover - explain() only
        raise NotImplementedError


def test_an_llm_answer_failing_the_check_inside_is_replaced_and_reported(record: DecisionRecord,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_handler, "_ENGINE", ExplanationEngine(_Liar()))
    reply = handler({"record": record.to_dict()}, None)
    assert reply["ok"] is True and reply["text"] == TemplateExplainer().render(record)
    assert (reply["provider"], reply["fallback_used"], reply["fact_check_ok"]) == ("template", True, False)
    assert [f["kind"] for f in reply["failures"]] == [WRONG_NUMBER]
    u, = reply["usage"]
    assert (u["provider"], u["fact_check"], u["input_tokens"], u["cost_usd"]) == ("openai", "failed", 800, 0.0029)
    assert u["failed_claims"][0].startswith(WRONG_NUMBER) and isinstance(u["created_at"], str)
    json.dumps(reply, allow_nan=False)
