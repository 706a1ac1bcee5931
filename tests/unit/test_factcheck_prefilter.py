"""Two shortcuts of the fact-check that must not change one verdict.

* An alias pattern is tried only on a sentence holding every word of the alias (``factcheck_vocab.alias_table``):
  each sentence of the project's corpora (690 explanations on 60 records, hostile and true) and texts made to
  catch the shortcut out (plurals, articles between the words, a word inside a longer word, look-alike letters,
  an alias split over a line) gets the same failures as with every pattern tried.
* A stream checks each sentence as it arrives and then the whole answer; with the memo each sentence is checked
  once, and the verdicts are those of a check without it.
"""

from __future__ import annotations

import bisect
import itertools
import random
from typing import Any

import pytest
from factcheck_corpus import HOSTILE, RECORDS, TRUE
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.explanations import factcheck, factcheck_rules
from backend.explanations.factcheck import fact_check, sentences
from backend.explanations.factcheck_base import ALIASES, Sentence
from backend.explanations.record import DecisionRecord

LINES = HOSTILE + TRUE
UNFILTERED = [(pattern, names, code, ()) for pattern, names, code, _ in ALIASES]  # every pattern tried


def _record(line: dict[str, Any]) -> DecisionRecord:
    return RECORDS[int(line["record"])]


def _both(text: str, record: DecisionRecord, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    fast = [f for s in sentences(text) for f in factcheck_rules.check_sentence(s, record)]
    with monkeypatch.context() as m:
        m.setattr(factcheck_rules, "ALIASES", UNFILTERED)
        slow = [f for s in sentences(text) for f in factcheck_rules.check_sentence(s, record)]
    return fast, slow


def test_every_alias_names_its_words_in_order() -> None:
    for pattern, _, _, words in ALIASES:
        assert words and all(w in pattern.pattern.replace("\\", "") for w in words)
        assert pattern.search(" ".join(words)), pattern.pattern  # the alias itself matches


def test_a_pattern_matches_only_where_every_word_of_its_alias_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """What makes the shortcut exact, on every sentence of the corpora as the fact-check folds it (blanking a span
    later only removes matches): wherever an alias pattern matches, each of its words is in the text."""
    assert len(LINES) >= 600
    folded = sorted({Sentence(s, _record(line)).work for line in LINES for s in sentences(line["text"])})
    joined = "\n§\n".join(folded)  # no match spans "§" (not a blank, an article or a letter)
    starts = list(itertools.accumulate((len(w) + 3 for w in folded), initial=0))
    missed, hits = [], 0
    for pattern, _, _, words in ALIASES:
        for hit in pattern.finditer(joined):
            hits += 1
            work = folded[bisect.bisect_right(starts, hit.start()) - 1]
            assert hit.group(0) in work
            if not all(w in work for w in words):
                missed.append((pattern.pattern, work))
    assert len(folded) > 3000 and hits > len(folded) and not missed, missed[:3]


def test_the_corpora_get_the_same_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end on every fifth explanation (all of them: 40 s; the property above covers every sentence)."""
    differ = []
    for line in LINES[::5]:
        fast, slow = _both(line["text"], _record(line), monkeypatch)
        if fast != slow:
            differ.append((line["text"][:120], fast, slow))
    assert not differ, differ[:3]


def _alias_text(rng: random.Random) -> str:
    """A sentence built to catch the shortcut out: alias words with plurals, articles, glued or look-alike letters."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        words = list(rng.choice(ALIASES)[3])
        how = rng.randrange(7)
        if how == 0:
            words[-1] += rng.choice(("s", "es"))
        elif how == 1 and len(words) > 1:
            words.insert(1, rng.choice(("the", "a", "an")))
        elif how == 2:
            words[0] = "non" + words[0]  # inside a longer word: no match either way
        elif how == 3:
            words[0] = words[0].replace("o", "\u043e", 1)  # Cyrillic o
        elif how == 4 and len(words) > 1:
            words[0] += "\n"
        elif how == 5:
            words = [w.upper() for w in words]
        parts.append(" ".join(words))
    value = rng.choice(["is 0.42", "of $12,000", "was 3 months", "raised the risk", "lowered the estimate", ""])
    return f"The {' and the '.join(parts)} {value}.".replace("  ", " ")


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, len(RECORDS) - 1))
def test_texts_made_to_catch_the_shortcut_get_the_same_failures(seed: int, which: int) -> None:
    text = _alias_text(random.Random(seed))
    with pytest.MonkeyPatch.context() as m:
        fast, slow = _both(text, RECORDS[which], m)
    assert fast == slow, text
    for s in sentences(text):
        work = Sentence(s, RECORDS[which]).work
        assert not [p for p, _, _, words in ALIASES if not all(w in work for w in words) and p.search(work)], s


def test_a_stream_checks_each_sentence_once_with_the_same_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = factcheck.check_sentence

    def counting(sentence: str, record: DecisionRecord) -> list:
        calls.append(sentence)
        return real(sentence, record)

    monkeypatch.setattr(factcheck, "check_sentence", counting)
    for line in LINES[::23]:
        record, text = _record(line), line["text"]
        memo: dict = {}
        calls.clear()
        pieces = [fact_check(s, record, memo) for s in sentences(text)]  # as the sentences arrive
        whole = fact_check(text, record, memo)  # then the whole answer
        assert len(calls) == len(set(calls)) == len(sentences(text))
        calls.clear()
        assert [fact_check(s, record) for s in sentences(text)] == pieces
        assert fact_check(text, record) == whole
