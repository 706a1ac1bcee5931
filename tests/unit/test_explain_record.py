"""Decision record, template and engine with stand-in providers (no network, no SDK)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from backend.explanations.engine import ExplanationEngine
from backend.explanations.factcheck import WRONG_NUMBER, fact_check
from backend.explanations.providers import Completion, ProviderError, ProviderStream, cost_usd
from backend.explanations.record import DecisionRecord, format_value, pd_band
from backend.explanations.template import TemplateExplainer
from backend.platform.clock import FixedClock


def _result() -> SimpleNamespace:
    reasons = [{"code": "excessive_obligations", "text": "Excessive obligations in relation to income", "weight": 0.7,
                "features": [{"name": "debt_to_income", "description": "debt-to-income ratio", "value": 0.48,
                              "contribution": 0.5},
                             {"name": "monthly_debt_payments", "description": "monthly payments on other debts",
                              "value": 1250.0, "contribution": 0.2}]}]
    attributions = {"debt_to_income": 0.5, "monthly_debt_payments": 0.2, "employment_type": -0.3,
                    "savings_balance": -0.1, "credit_score": 0.0, "sex": 0.9}
    features = {"debt_to_income": 0.48, "monthly_debt_payments": 1250.0, "employment_type": "self_employed",
                "savings_balance": 8000.0, "credit_score": 700, "sex": "female"}
    return SimpleNamespace(recommendation="manual_review", pd=0.1834, confidence=0.8, risk_class="low_risk",
                           model_version="3", reasons=reasons, attributions=attributions, features=features,
                           policy_reasons=["confidence_below_threshold"], application_id="APP-1")


def test_record_keeps_reasons_and_largest_attributions_without_protected() -> None:
    r = DecisionRecord.from_score(_result())
    assert list(r.facts) == ["debt_to_income", "monthly_debt_payments", "employment_type", "savings_balance"]
    assert r.pd_percent == 18.3 and r.pd_band == "high (15% to 30%)"
    assert r.facts["employment_type"].display == "self-employed" and r.facts["employment_type"].direction == "lowers"
    prompt = r.to_prompt_json()
    assert "sex" not in prompt and "female" not in prompt and "APP-1" not in prompt and "credit bureau" not in prompt


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("debt_to_income", 0.482, "48%"), ("annual_income", 85000.4, "$85,000"), ("months_employed", 1, "1 month"),
    ("residual_income_monthly", -300.0, "-$300"), ("income_verified", 0, "no"), ("loan_purpose", "debt_consolidation",
    "debt consolidation"), ("down_payment_pct", 20.0, "20%"), ("credit_score", 640, "640"), ("months_employed", None,
    "not available")])
def test_format_value(name: str, value: object, shown: str) -> None:
    assert format_value(name, value) == shown


def test_pd_bands() -> None:
    assert [pd_band(p) for p in (0.01, 0.03, 0.1, 0.2, 0.5)] == [
        "very low (under 2%)", "low (under 5%)", "moderate (5% to 15%)", "high (15% to 30%)", "very high (30% or more)"]


def test_template_text() -> None:
    r = DecisionRecord.from_score(_result())
    text = TemplateExplainer().render(r)
    assert text.startswith("Recommendation: refer for manual review.")
    assert "debt-to-income ratio (48%) and monthly payments on other debts ($1,250) raised" in text
    assert "type of employment (self-employed)" in text and fact_check(text, r).ok
    assert TemplateExplainer().explain(r).provider == "template"


class _Stub:
    provider, model = "stub", "stub-1"

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)

    def generate(self, record: DecisionRecord) -> Completion:
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return Completion(str(a), self.provider, self.model, 10, 5, 1.0, cost_usd({}, self.model, 10, 5))

    def stream(self, record: DecisionRecord) -> ProviderStream:
        c = self.generate(record)
        return ProviderStream(iter([c.text]), lambda text: c)


def test_engine_order_and_accounting() -> None:
    r = DecisionRecord.from_score(_result())
    good = "The debt-to-income ratio of 48% raised the estimated risk."
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    out = ExplanationEngine(_Stub(ProviderError("timeout", "slow")), _Stub(RuntimeError("bug")), None, clock).explain(r)
    assert out.explanation.provider == "template" and out.explanation.fallback_used
    assert [u.error for u in out.usage] == ["timeout: slow", "RuntimeError: bug"]
    assert out.usage[0].created_at == clock.now() and out.usage[1].fallback_used
    out = ExplanationEngine(_Stub(good.replace("48", "58")), _Stub(good), None, clock).explain(r)
    assert out.explanation.provider == "template" and out.failures[0].kind == WRONG_NUMBER  # no retry by default
    out = ExplanationEngine(_Stub(good.replace("48", "58")), _Stub(good), None, clock,
                            retry_on_failed_check=True).explain(r)
    assert out.explanation.text == good and out.explanation.fallback_used and len(out.checks) == 2
    es = ExplanationEngine(None, None, None, clock).stream(r)
    assert [e.kind for e in es] == ["final"] and es.outcome is not None and es.outcome.usage == []
