"""The shared protected-terms vocabulary and the text skeleton it is read on.

Every entry is found on its own example, on the example disguised (Cyrillic/Greek look-alikes,
fullwidth letters, zero-width characters, number words), by the Q&A (a refusal) and by the
fact-check (the sentence is not shown); benign feature phrases ("age of the collateral") are not.
"""

from __future__ import annotations

import pytest

from backend.domain import PROTECTED_TERMS, find_protected, has_bidi_controls, skeleton, words_to_numbers
from backend.explanations.factcheck import PROTECTED_ATTRIBUTE, fact_check
from backend.explanations.questions_intents import refusal
from backend.explanations.record import DecisionRecord

LOOKALIKE = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і", "x": "х", "y": "у"})
GREEK = str.maketrans({"o": "ο", "i": "ι", "v": "ν", "k": "κ", "t": "τ"})


def _disguises(text: str) -> list[str]:
    zw = "\u200b".join(text)
    full = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    return [text, text.translate(LOOKALIKE), text.translate(GREEK), zw, full, text.upper(),
            text.replace("e", "e\u0301"), text.replace(" ", "\u00a0"), text.replace("a", "a\u200d")]


def _record() -> DecisionRecord:
    return DecisionRecord("deny", 0.342, 0.91, "high_risk", "t", (), {})


@pytest.mark.parametrize("term", PROTECTED_TERMS, ids=lambda t: t.key)
def test_every_entry_finds_its_example_however_disguised(term) -> None:
    assert term.basis and term.category and term.example
    for text in _disguises(term.example):
        found = {t.key for t, _ in find_protected(words_to_numbers(skeleton(text)))}
        assert term.key in found, (term.key, text)
        failures = fact_check(text, _record()).failures
        assert failures and PROTECTED_ATTRIBUTE in {f.kind for f in failures}, (term.key, text)
    if term.key != "gendered_reference":  # the Q&A lets an officer write "why was she denied?"
        assert refusal(term.example.translate(LOOKALIKE)) == "protected", term.key


@pytest.mark.parametrize("benign", [
    "The age of the collateral is 4 years.", "The average age of credit accounts is 88 months.",
    "Credit age and account age were considered.", "The highest utilization on a single card is 93%.",
    "The loan term is 60 months.", "The applicant has over 60 months of credit history.",
    "The debt-to-income ratio is about 45%.", "The model recommends a manual review.",
])
def test_benign_feature_phrases_are_not_protected(benign: str) -> None:
    assert find_protected(words_to_numbers(skeleton(benign))) == [], benign


@pytest.mark.parametrize(("text", "expected"), [
    ("two million dollars", "2000000 dollars"), ("fifteen percent", "15 percent"),
    ("four point two percent", "4.2 percent"), ("over sixty", "over 60"), ("in her sixties", "in her 60s"),
    ("one of the reasons", "one of the reasons"), ("one credit inquiry", "1 credit inquiry"),
    ("a hundred and twenty five", "125"), ("twenty-five thousand", "25000"), ("1.5 million", "1500000"),
    ("$12.5 thousand", "$12500"), ("two point five million", "2500000"), ("a million dollars", "1000000 dollars"),
])
def test_number_words(text: str, expected: str) -> None:
    assert words_to_numbers(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("ＡＰＰＲＯＶＥＤ", "approved"), ("аррrоvеd", "approved"), ("ap\u200bpro\u200dved", "approved"),
    ("Ρregnant", "pregnant"), ("𝐚𝐠𝐞", "age"), ("٣٤٫٢%", "34.2%"), ("re\u0301tired", "retired"),
    ("\u3164age\u2800", "age"), ("ᴀɢᴇ", "age"), ("ɡender", "gender"), ("zip\u00adcode", "zipcode"),
])
def test_skeleton_folds_lookalikes_and_invisibles(text: str, expected: str) -> None:
    assert skeleton(text) == expected


def test_bidi_controls_are_detected() -> None:
    assert has_bidi_controls("the \u202edevorppa\u202c loan") and not has_bidi_controls("approved")
    assert fact_check("The \u202edevorppa\u202c loan.", _record()).failures[0].kind == "disguised_text"
