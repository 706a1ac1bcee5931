"""The Q&A intent classifier: accuracy on a held-out split of the shipped exemplars, and on hand-written
paraphrases it never trained on (tests/corpus/qa_paraphrases.tsv); the value parser on stated what-ifs.

The held-out split is of our own generated questions (optimistic); the paraphrase set is the honest
figure. Both are printed (``-s``) so the README can quote them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from backend.explanations.qa_classifier import LABELS, build
from backend.explanations.qa_exemplars import exemplars
from backend.explanations.questions_intents import classify, normalise, parse_changes, resolve

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "qa_paraphrases.tsv"
HELD_OUT_MIN = 0.95
PARAPHRASE_MIN = 0.90


def _paraphrases() -> list[tuple[str, str, str]]:
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            intent, kind, question = line.split("\t")
            rows.append((intent, None if kind == "-" else kind, question))
    return rows


def test_exemplars_cover_every_label_with_hundreds_of_distinct_questions():
    data = exemplars()
    counts = Counter(label for _, label in data)
    assert set(counts) == set(LABELS)
    assert all(n >= 200 for n in counts.values()), counts
    assert len({q for q, _ in data}) == len(data)
    assert exemplars() == data  # deterministic


def test_held_out_accuracy():
    from sklearn.model_selection import train_test_split

    data = exemplars()
    texts, labels = [normalise(q) for q, _ in data], [label for _, label in data]
    tr_x, te_x, tr_y, te_y = train_test_split(texts, labels, test_size=0.2, stratify=labels, random_state=0)
    pipe = build(tr_x, tr_y)
    acc = float((pipe.predict(te_x) == te_y).mean())
    print(f"\nintent accuracy on the held-out 20% of the generated exemplars: {acc:.3f} (n={len(te_y)})")
    assert acc >= HELD_OUT_MIN


def test_hand_written_paraphrases_get_the_right_intent_and_refusal_kind():
    rows = _paraphrases()
    assert len(rows) >= 80
    wrong = []
    for intent, kind, question in rows:
        got = classify(question)
        if got.name != intent or got.refusal != kind:
            wrong.append((question, intent, kind, got.name, got.refusal))
    acc = 1 - len(wrong) / len(rows)
    print(f"\nintent accuracy on {len(rows)} hand-written paraphrases (not trained on): {acc:.3f}; wrong: {wrong}")
    assert acc >= PARAPHRASE_MIN, wrong
    refusals = [(q, k) for i, k, q in rows if i == "refused"]
    assert all(classify(q).refusal == k for q, k in refusals), [
        (q, k, classify(q).refusal) for q, k in refusals if classify(q).refusal != k]


@pytest.mark.parametrize(("question", "expected"), [
    ("What if their income were $80,000?", {"annual_income": 80_000}),
    ("what if they earned 95k a year", {"annual_income": 95_000}),
    ("What if the credit score were 700?", {"credit_score": 700}),
    ("what if the fico was 705", {"credit_score": 705}),
    ("What if DTI were 30%?", {"debt_to_income": 0.30}),
    ("what if the debt to income ratio dropped to 0.35", {"debt_to_income": 0.35}),
    ("what if they had no delinquencies", {"num_delinquencies_2y": 0}),
    ("what if utilization were 20 percent", {"revolving_utilization": 0.20}),
    ("what if they paid off $2,000 of card debt", {"revolving_paydown": 2000}),
    ("What if the loan amount were $15,000?", {"loan_amount": 15_000}),
    ("with a 60-month term?", {"loan_term_months": 60}),
    ("What if they borrowed 12k over 5 years?", {"loan_amount": 12_000, "loan_term_months": 60}),
    ("what if they enrolled in autopay", {"autopay_enrolled": 1}),
    ("what if income doubled", {"annual_income@mul": 2.0}),
    ("what if they had 2 fewer inquiries", {"num_inquiries_6m@add": -2.0}),
    ("what if they borrowed 10% less", {"loan_amount@mul": 0.9}),
    ("what if they had $10k more income", {"annual_income@add": 10_000}),
])
def test_stated_values_are_parsed(question, expected):
    assert dict(parse_changes(normalise(question))) == pytest.approx(expected)
    assert classify(question).name == "what_if"


def test_relative_changes_resolve_against_the_applicants_values():
    f = {"annual_income": 50_000.0, "num_inquiries_6m": 3, "loan_amount": 20_000.0}
    assert resolve({"annual_income@mul": 2.0, "num_inquiries_6m@add": -5.0, "loan_amount@mul": 0.9}, f) == {
        "annual_income": 100_000.0, "num_inquiries_6m": 0, "loan_amount": 18_000.0}


def test_an_idiom_is_not_a_protected_term():
    assert classify("Could you explain the outcome in plain english").name == "why"
    assert classify("Is the applicant English?").refusal == "protected"


@pytest.mark.parametrize("question", [
    "What if the applicant were 30 years younger?", "what if she were a man", "what if they were married",
    "What if the applicant lived in zip 10001?",
])
def test_what_ifs_on_protected_characteristics_are_refused(question):
    got = classify(question)
    assert got.name == "refused" and got.refusal == "protected", got
