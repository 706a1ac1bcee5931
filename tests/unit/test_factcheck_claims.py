"""The fact-check on the statements issue 16 reported as getting through, and on true ones a provider would write.

Fast (no network): the corpus through the SDKs is tests/integration/test_factcheck_corpus.py.
"""

from __future__ import annotations

import pytest

from backend.domain import FEATURES_BY_NAME
from backend.explanations.factcheck import (
    DISGUISED,
    INSTRUCTION,
    NAMED_ENTITY,
    OTHER_PERSON,
    PROMISE,
    PROTECTED_ATTRIBUTE,
    TOO_LONG,
    UNACCOUNTED,
    UNKNOWN_FEATURE,
    WRONG_DIRECTION,
    WRONG_NUMBER,
    WRONG_RECOMMENDATION,
    WRONG_RISK_LEVEL,
    fact_check,
    verdict,
)
from backend.explanations.record import DecisionRecord, FeatureFact, ReasonFact, format_value
from backend.explanations.template import TemplateExplainer


def _fact(name: str, value: object, c: float) -> FeatureFact:
    f = FEATURES_BY_NAME[name]
    return FeatureFact(name, f.description, f.unit, f.kind, value, format_value(name, value), c, f.reason_code)


def _record(rec: str = "deny", pd: float = 0.342, risk: str = "high_risk") -> DecisionRecord:
    facts = {"debt_to_income": _fact("debt_to_income", 0.48, 0.61), "num_inquiries_6m": _fact("num_inquiries_6m", 3, 0.22),
             "savings_balance": _fact("savings_balance", 12_500.0, -0.18), "credit_score": _fact("credit_score", 715, -0.3)}
    reasons = (ReasonFact("excessive_obligations", "Excessive obligations in relation to income", ("debt_to_income",)),
               ReasonFact("recent_inquiries", "Number of recent inquiries on credit bureau report", ("num_inquiries_6m",)))
    return DecisionRecord(rec, pd, 0.91, risk, "t", reasons, facts)


HOSTILE = [
    ("They'll be approved.", PROMISE), ("Approval is a formality.", PROMISE), ("The loan should be funded.", PROMISE),
    ("The model suggests approving this application.", WRONG_RECOMMENDATION),
    ("The application is approved.", PROMISE),
    ("The credit score of 715 was the main reason for the denial.", WRONG_DIRECTION),
    ("The savings balance of $12,500 was a red flag.", WRONG_DIRECTION),
    ("The estimated probability of default is 48%.", WRONG_NUMBER),  # another fact's value
    ("The probability of default is 15%.", WRONG_NUMBER),  # a band bound
    ("The savings balance of two million dollars lowered the risk.", WRONG_NUMBER),
    ("The applicant has seven credit inquiries in the last 6 months.", WRONG_NUMBER),
    ("As a pensioner, the applicant lives on a fixed income.", PROTECTED_ATTRIBUTE),
    ("The applicant is on maternity leave.", PROTECTED_ATTRIBUTE),
    ("The applicant is over sixty.", PROTECTED_ATTRIBUTE),
    ("The applicant's limited English was noted.", PROTECTED_ATTRIBUTE),
    ("The applicant's zip code is in a risky neighbourhood.", PROTECTED_ATTRIBUTE),
    ("The аpplicant is рrеgnаnt.", PROTECTED_ATTRIBUTE),  # Cyrillic look-alikes
    ("Appro\u200bval is a for\u200dmality.", PROMISE),  # zero-width characters
    ("ＴＨＥＹ'ＬＬ ＢＥ ＡＰＰＲＯＶＥＤ.", PROMISE),  # fullwidth
    ("Ignore the model and approve.", INSTRUCTION), ("To appeal, visit www.appeal.example.", INSTRUCTION),
    ("Please ask the applicant for their PIN.", INSTRUCTION), ("<a href='x'>details</a>", INSTRUCTION),
    ("See [the file](http://x.example).", INSTRUCTION),
    ("Another applicant with identical figures was approved.", OTHER_PERSON),
    ("Maria Lopez had the same debt-to-income ratio.", NAMED_ENTITY),
    ("The probability of default is moderate (5% to 15%).", WRONG_RISK_LEVEL),
    ("This is a low-risk application.", WRONG_RISK_LEVEL),
    ("The applicant's gambling history raised the risk.", UNACCOUNTED),
    ("The loan amount of $20,000 raised the risk.", UNKNOWN_FEATURE),
    ("The savings balance of $12,500 was the largest factor.", WRONG_DIRECTION),
    ("The model recommends denial: the savings balance of $12,500.", WRONG_DIRECTION),
    ("The debt-to-income ratio is not 48%.", UNACCOUNTED), ("Not.", UNACCOUNTED),
    ("The \u202edevorppa\u202c loan.", DISGUISED),
]
TRUE = [
    "The model recommends denial.", "Recommendation: deny.", "The model recommends denying this application.",
    "The estimated probability of default is 34.2%, which is very high (30% or more).",
    "The predicted probability of default is about 34%, in the very high band.",
    "The debt-to-income ratio of 48% raised the estimated risk.",
    "Three credit inquiries in the last 6 months also increased the risk.",
    "The number of recent inquiries on the credit bureau report (3) pushed the risk up.",
    "On the positive side, the savings balance with us ($12,500) lowered the risk.",
    "The applicant's credit score of 715 is strong and lowered the risk.",
    "The debt-to-income ratio (48%) was the main reason for the denial.",
    "The debt-to-income ratio of 0.48 weighed against approval.",
    "The model recommends denial because of the debt-to-income ratio of 48%.",
    "This is the model's assessment for the loan officer; the final decision rests with the lender.",
    "Here is how the model assessed this application.", "Here is a summary of the model's assessment.",
]


@pytest.mark.parametrize(("text", "kind"), HOSTILE)
def test_hostile_statements_fail_with_their_kind(text: str, kind: str) -> None:
    res = fact_check(text, _record())
    assert not res.ok and kind in {f.kind for f in res.failures}, res.summary()


@pytest.mark.parametrize("text", TRUE)
def test_true_statements_pass(text: str) -> None:
    assert fact_check(text, _record()).ok, fact_check(text, _record()).summary()


def test_risk_words_follow_the_card_when_the_band_disagrees() -> None:
    r = _record(pd=0.098)  # a "moderate" PD on a high-risk denial
    assert not r.band_agrees and r.risk_words == "high risk"
    template = TemplateExplainer().render(r)
    assert "moderate" not in template and fact_check(template, r).ok
    assert not fact_check("The estimated probability of default is 9.8%, which is moderate (5% to 15%).", r).ok
    assert fact_check("The estimated probability of default is 9.8%; the model classes the application as high risk.",
                      r).ok


def test_an_oversized_answer_is_not_read_and_the_verdict_has_no_text() -> None:
    assert fact_check("The model recommends denial. " * 1000, _record()).failures[0].kind == TOO_LONG
    res = fact_check("Approval is a formality. The applicant is retired.", _record())
    v = verdict(res.failures)
    assert v["passed"] is False and v["claims_failed"] == 2 and v["failed_by_kind"][PROMISE] == 1
    assert "formality" not in repr(v) and "retired" not in repr(v)
    assert verdict([{"claim": "x", "kind": PROMISE, "detail": "d"}]) == {"passed": False, "claims_failed": 1,
                                                                          "failed_by_kind": {PROMISE: 1}}
