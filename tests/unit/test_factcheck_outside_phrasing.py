"""True sentences phrased the way an LLM writes them, and a lie in the same frame for each (issue 16).

The lead measured 9 of 15 true sentences on corpus record 0 rejected (:data:`LEAD`); :data:`MORE` are true
sentences in other styles (British spelling, markdown bold and bullets, hedges, summary counts and balances,
partial feature names, the reviewer step) over five records of ``tests/corpus/factcheck_records.jsonl``.
All were written by the project after the fact-check existed, so they measure what it accepts, not how a
real model writes. :data:`STILL_REJECTED` are true sentences it still rejects (the honest remainder).
Every accepted frame has a lie beside it in :data:`LIES` (wrong direction, count, number, outcome, a
promise, a protected trait) that must fail with the kind given.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.explanations.factcheck import (
    INSTRUCTION,
    OTHER_PERSON,
    PROMISE,
    PROTECTED_ATTRIBUTE,
    UNACCOUNTED,
    UNKNOWN_REASON,
    WRONG_DIRECTION,
    WRONG_NUMBER,
    WRONG_RECOMMENDATION,
    WRONG_RISK_LEVEL,
    fact_check,
)
from backend.explanations.record import DecisionRecord

_RECORDS = Path(__file__).resolve().parents[1] / "corpus" / "factcheck_records.jsonl"

#: The lead's 9 rejected true sentences on record 0 (4 positive, 4 negative contributions; deny).
LEAD = [
    (0, 'On the positive side, a 34-month banking relationship with us reduced the risk.'),
    (0, "An estimated monthly payment of $426 on the new loan worked in the applicant's favour."),
    (0, 'Deposits relative to stated income (5%) lowered the risk somewhat.'),
    (0, 'Overall, the factors raising the risk outweighed those lowering it.'),
    (0, 'A loan officer will review this recommendation before any final decision is made.'),
    (0, "Having no bankruptcy on file still counted toward higher risk in this model's estimate."),
    (0, '**Recommendation:** deny.'),
    (0, 'Four factors increased the risk and four decreased it.'),
    (0, 'The installment accounts figure was the strongest driver of the estimate.'),
]
#: Plain sentences that passed before this change (the rest of the 15 on record 0).
PLAIN = [
    (0, 'The model recommends denial.'),
    (0, 'The average monthly deposits of $141 raised the risk.'),
    (0, 'A credit score of 725 increased the risk.'),
    (0, 'The estimated probability of default is 32%.'),
    (0, 'The loan purpose, home improvement, lowered the risk.'),
    (0, 'The number of installment accounts (1) raised the risk.'),
]
#: More true sentences in LLM styles over records 0 (deny), 1 (deny), 2 (deny), 3 (approve), 7 (manual review).
MORE = [
    (0, '- The installment accounts figure (1) pushed the risk up.'),
    (0, '* A credit score of 725 still added to the risk in this case.'),
    (0, 'The estimated probability of default is about 32%, which the model places in the very high band.'),
    (0, "The model's confidence in this estimate is 94%."),
    (0, 'Monthly deposits averaging $141 worked against the applicant.'),
    (0, 'The home improvement purpose of the loan helped somewhat.'),
    (0, '**Estimated probability of default:** 32%.'),
    (0, 'Four factors lowered the risk.'),
    (0, "The 34-month relationship with the bank counted in the applicant's favor."),
    (0, 'The final decision rests with a loan officer, not with the model.'),
    (1, 'The model recommends denying this application.'),
    (1, 'The estimated probability of default is 15%, in the high band (15% to 30%).'),
    (1, 'Six factors raised the risk and four lowered it.'),
    (1, 'Overall, the factors that raised the risk outweighed the ones that lowered it.'),
    (1, 'Days until the first payment (30 days) lowered the risk the most.'),
    (1, 'A highest card utilisation of 61% added slightly to the risk.'),
    (1, 'Unused revolving credit of $11,239 increased the risk slightly.'),
    (1, '**Main reasons:** income insufficient for amount of credit requested and temporary residence.'),
    (1, 'The number of address changes in the last three years (1) raised the risk modestly.'),
    (1, 'Having a mortgage account reduced the risk.'),
    (1, 'This recommendation will be reviewed by a loan officer before a final decision is made.'),
    (2, 'Recommendation: deny.'),
    (2, 'The estimated probability of default is 37%, which is very high.'),
    (2, 'Overall, the factors lowering the risk outweighed those raising it.'),
    (2, 'Six factors increased the risk, while four reduced it.'),
    (2, "A savings balance of $12,010 counted against the applicant in this model's estimate."),
    (2, 'The estimated monthly payment of $264 on the new loan lowered the risk.'),
    (2, 'The payment as a share of monthly income (3%) raised the risk a little.'),
    (2, "- Housing costs relative to income (19%) worked in the applicant's favour."),
    (2, 'The revolving accounts figure (5) increased the risk.'),
    (2, 'The highest credit limit of $231,204 contributed to the risk.'),
    (2, 'A loan officer will review this assessment before any final decision is taken.'),
    (3, 'The model recommends approval.'),
    (3, '**Recommendation:** approve.'),
    (3, 'The estimated probability of default is 2.8%, in the low band (under 5%).'),
    (3, 'Revolving utilisation of 8% lowered the risk.'),
    (3, 'A total debt balance of $58,917 raised the risk somewhat.'),
    (3, 'Having no inquiries in the last six months helped the applicant.'),
    (3, 'Four factors reduced the risk and six increased it.'),
    (3, 'Overall, the factors lowering the risk outweighed those raising it.'),
    (3, 'The installment balance of $9,141 added to the risk slightly.'),
    (7, 'The model recommends referring the application for manual review.'),
    (7, 'The estimated probability of default is 0.7%, which is very low.'),
    (7, 'Five factors raised the risk and four lowered it.'),
    (7, 'The loan amount of $50,800 raised the risk.'),
    (7, 'A total debt balance of $6,073 increased the risk somewhat.'),
    (7, 'A loan officer will review this recommendation before any final decision is made.'),
    # the two true sentences the check rejected until the value-stating mentions (factcheck_states.py)
    (1, "Having a single income source raised the risk."),
    (3, "The residence being verified was the strongest factor in the applicant's favour."),
    (1, "Having just one source of income pushed the risk up."),
    (1, "The employment was verified, yet it still raised the risk in this model."),
    (3, "A verified residence lowered the risk."),
    (7, "The applicant's address was verified, which lowered the risk."),
]
#: True sentences still rejected (a false rejection, never a lie shown): a word outside the vocabulary.
STILL_REJECTED = [
    (1, "Relying on just one source of income pushed the risk up."),  # 'relying' is not a known word
]
LIES = [
    (0, 'On the positive side, a 34-month banking relationship with us raised the risk.', WRONG_DIRECTION),
    (0, 'On the positive side, a 30-month banking relationship with us reduced the risk.', WRONG_NUMBER),
    (0, 'An estimated monthly payment of $426 on the new loan worked against the applicant.', WRONG_DIRECTION),
    (0, "An estimated monthly payment of $462 on the new loan worked in the applicant's favour.", WRONG_NUMBER),
    (0, 'Deposits relative to stated income (5%) raised the risk somewhat.', WRONG_DIRECTION),
    (0, 'Deposits relative to stated income (15%) lowered the risk somewhat.', WRONG_NUMBER),
    (0, 'Overall, the factors lowering the risk outweighed those raising it.', WRONG_DIRECTION),
    (0, 'A loan officer will review this recommendation and approve the loan.', PROMISE),
    (0, 'A loan officer will review this recommendation before the loan is approved.', PROMISE),
    (0, "Having no bankruptcy on file still counted toward lower risk in this model's estimate.", WRONG_DIRECTION),
    (0, '**Recommendation:** approve.', WRONG_RECOMMENDATION),
    (0, '**Recommendation:** refer for manual review.', WRONG_RECOMMENDATION),
    (0, '**Guaranteed approval** once the officer signs.', PROMISE),
    (0, 'Five factors increased the risk and four decreased it.', WRONG_NUMBER),
    (0, 'Four factors increased the risk and three decreased it.', WRONG_NUMBER),
    (0, "Four factors increased the risk and four decreased it, mostly because of the applicant's age.", PROTECTED_ATTRIBUTE),
    (0, 'The credit score figure was the strongest driver of the estimate.', WRONG_DIRECTION),
    (0, 'The installment accounts figure (1) lowered the risk.', WRONG_DIRECTION),
    (0, 'The number of installment accounts (2) raised the risk.', WRONG_NUMBER),
    (0, 'A credit score of 725 still lowered the risk in this case.', WRONG_DIRECTION),
    (0, "The model's confidence in this estimate is 49%.", WRONG_NUMBER),
    (0, 'Monthly deposits averaging $411 worked against the applicant.', WRONG_NUMBER),
    (0, '**Estimated probability of default:** 23%.', WRONG_NUMBER),
    (0, 'Three factors lowered the risk.', WRONG_NUMBER),
    (0, 'The final decision rests with a loan officer, not with the model, and approval is certain.', PROMISE),
    (0, 'Deposits relative to stated income (5%) lowered the risk somewhat for a single mother.', PROTECTED_ATTRIBUTE),
    (0, "A loan officer will review this recommendation, given the applicant's national origin.", PROTECTED_ATTRIBUTE),
    (1, 'Six factors raised the risk and five lowered it.', WRONG_NUMBER),
    (1, 'Four factors raised the risk and six lowered it.', WRONG_NUMBER),
    (1, 'Overall, the factors that lowered the risk outweighed the ones that raised it.', WRONG_DIRECTION),
    (1, 'A highest card utilisation of 16% added slightly to the risk.', WRONG_NUMBER),
    (1, 'A highest card utilisation of 61% reduced the risk slightly.', WRONG_DIRECTION),
    (1, 'Unused revolving credit of $11,239 decreased the risk slightly.', WRONG_DIRECTION),
    (1, '**Main reasons:** bankruptcy and temporary residence.', UNKNOWN_REASON),
    (1, 'Having a mortgage account increased the risk.', WRONG_DIRECTION),
    (1, 'This recommendation will be reviewed by a loan officer, who will approve it.', PROMISE),
    (1, 'The number of address changes in the last three years (3) raised the risk modestly.', WRONG_NUMBER),
    (2, 'Overall, the factors raising the risk outweighed those lowering it.', WRONG_DIRECTION),
    (2, 'Six factors increased the risk, while five reduced it.', WRONG_NUMBER),
    (2, 'The payment as a share of monthly income (3%) lowered the risk a little.', WRONG_DIRECTION),
    (2, 'The payment as a share of monthly income (30%) raised the risk a little.', WRONG_NUMBER),
    (2, '- Housing costs relative to income (19%) worked against the applicant.', WRONG_DIRECTION),
    (2, "- Housing costs relative to income (91%) worked in the applicant's favour.", WRONG_NUMBER),
    (2, 'The revolving accounts figure (5) decreased the risk.', WRONG_DIRECTION),
    (2, "A savings balance of $12,010 counted in the applicant's favour in this model's estimate.", WRONG_DIRECTION),
    (2, '**Recommendation:** approve.', WRONG_RECOMMENDATION),
    (3, 'Having no inquiries in the last six months hurt the applicant.', WRONG_DIRECTION),
    (3, 'Having no accounts opened in the last 12 months helped the applicant.', WRONG_DIRECTION),
    (3, 'Having no debt raised the risk.', WRONG_NUMBER),
    (3, 'Six factors reduced the risk and four increased it.', WRONG_NUMBER),
    (3, 'Overall, the factors raising the risk outweighed those lowering it.', WRONG_DIRECTION),
    (3, 'Revolving utilisation of 8% raised the risk.', WRONG_DIRECTION),
    (3, 'A total debt balance of $58,917 lowered the risk somewhat.', WRONG_DIRECTION),
    (3, '**Recommendation:** deny.', WRONG_RECOMMENDATION),
    (3, 'The residence being verified guarantees approval.', PROMISE),
    (7, 'Four factors raised the risk and five lowered it.', WRONG_NUMBER),
    (7, 'Overall, the factors raising the risk outweighed those lowering it.', WRONG_DIRECTION),
    (7, 'The loan amount of $50,800 lowered the risk.', WRONG_DIRECTION),
    (7, 'A loan officer will review this recommendation, and the loan will be approved.', PROMISE),
    (7, '**Recommendation:** deny.', WRONG_RECOMMENDATION),
    (7, 'The estimated probability of default is 0.7%, which is very high.', WRONG_RISK_LEVEL),
    # probes of the new frames: a record's figure misattributed, "no X" when X is not zero, a trait riding along
    (0, "The applicant showed confidence of 94%.", UNACCOUNTED),
    (8, "Having no recent delinquencies helped the applicant.", WRONG_NUMBER),
    (30, "The applicant has no collections.", WRONG_NUMBER),
    (0, "4 of them increased the risk, and 4 lowered it because she is pregnant.", PROTECTED_ATTRIBUTE),
    (0, "Overall, the factors raising the risk outweighed those lowering it, so approval is likely.", PROMISE),
    (0, "The factors raising the risk outweighed those lowering it for this young applicant.", PROTECTED_ATTRIBUTE),
    (0, "Deposits relative to stated income (5%) lowered the risk, unlike other applicants.", OTHER_PERSON),
    (0, "**Recommendation:** deny, but an appeal will succeed.", INSTRUCTION),
    (0, "__Recommendation:__ approve.", WRONG_RECOMMENDATION),
    (0, "A loan officer will review this application, which is a formality.", PROMISE),
    # value-stating mentions: the words state the value, and the value is checked
    (1, "Having several income sources raised the risk.", WRONG_DIRECTION),
    (1, "Having two income sources raised the risk.", WRONG_NUMBER),
    (1, "The employment was not verified, which raised the risk.", WRONG_NUMBER),
    (1, "Unverified employment raised the risk.", WRONG_NUMBER),
    (3, "The residence being unverified was the strongest factor in the applicant's favour.", WRONG_NUMBER),
    (3, "The residence being verified raised the risk.", WRONG_DIRECTION),
    (7, "The applicant's address could not be verified, which lowered the risk.", WRONG_NUMBER),
]


@pytest.fixture(scope="module")
def records() -> list[DecisionRecord]:
    return [DecisionRecord.from_dict(json.loads(line)["record"]) for line in _RECORDS.read_text().splitlines()]


def test_the_corpus_covers_styles_and_records() -> None:
    true = LEAD + PLAIN + MORE
    assert len(true) >= 60 and len({i for i, _ in true}) >= 3
    assert len(LIES) >= len(LEAD) + 40


@pytest.mark.parametrize(("rec", "text"), LEAD + PLAIN + MORE)
def test_true_phrasing_passes(records: list[DecisionRecord], rec: int, text: str) -> None:
    result = fact_check(text, records[rec])
    assert result.ok, result.summary()


@pytest.mark.parametrize(("rec", "text", "kind"), LIES)
def test_lie_in_the_same_frame_fails(records: list[DecisionRecord], rec: int, text: str, kind: str) -> None:
    result = fact_check(text, records[rec])
    assert not result.ok
    assert kind in {f.kind for f in result.failures}, result.summary()


@pytest.mark.parametrize(("rec", "text"), STILL_REJECTED)
def test_known_false_rejections_are_still_rejected(records: list[DecisionRecord], rec: int, text: str) -> None:
    """Documents the remainder; when one starts passing, move it to MORE and add its lie."""
    assert not fact_check(text, records[rec]).ok


def test_a_stated_value_is_checked_against_the_record(records: list[DecisionRecord]) -> None:
    """The same words on a record where they are false: the phrase states the value, so it must fail."""
    raw = json.loads(_RECORDS.read_text().splitlines()[3])["record"]
    raw["facts"]["residence_verified"].update(value=0, display="no")
    unverified = DecisionRecord.from_dict(raw)
    for text in ("The residence being verified was the strongest factor in the applicant's favour.",
                 "Residence verified was the strongest factor in the applicant's favour.",
                 "A verified residence lowered the risk."):
        assert fact_check(text, records[3]).ok, text
        result = fact_check(text, unverified)
        assert WRONG_NUMBER in {f.kind for f in result.failures}, (text, result.summary())
    assert fact_check("Residence verified: no.", unverified).ok  # a label with its value stays a label


def test_whole_explanation_in_markdown_passes_and_one_lie_sinks_it(records: list[DecisionRecord]) -> None:
    text = "\n".join(t for i, t in LEAD + PLAIN if i == 0)
    assert fact_check(text, records[0]).ok, fact_check(text, records[0]).summary()
    for i, lie, _ in LIES:
        if i == 0:
            assert not fact_check(text + "\n" + lie, records[0]).ok, lie
