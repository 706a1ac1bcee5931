"""Fact-check of a generated explanation against its :class:`DecisionRecord`, sound by construction.

The text is split into sentences; a sentence passes only when **all of it is accounted for**
(:mod:`factcheck_rules`), an allow-list rather than a list of known lies:

* it is read as its skeleton (:mod:`backend.domain.textnorm`: NFKC, invisible characters removed,
  Cyrillic/Greek/fullwidth look-alikes folded to Latin, number words as digits); bidi overrides fail;
* **features** and Regulation B **reasons** it names must be in the record (catalog names, descriptions,
  paraphrases); a category value ("rent") only as the value of a fact it names;
* every **number** is tied to its subject (the nearest feature, the probability of default, the
  confidence) and must be that subject's value in a unit that fits it (48% for a ratio of 0.48, 18
  months or 1.5 years): a number equal to *another* fact's value or to a band bound fails;
* every **direction** ("raised the risk", "helped", "was the main reason for the denial", "a strength")
  and every quality word bound to a feature ("high DTI", "strong credit score") must agree with the
  sign of that feature's attribution;
* **outcome words** only inside the recommendation ("recommends denial") or a reason frame ("the main
  reason for the denial"), and they must be the record's; any other approval is a **promise**;
* **risk levels** (very low … very high, a band's bounds) must be the record's band *and* agree with
  the risk class on the card (a "moderate (5% to 15%)" PD on a high-risk denial fails);
* no **protected trait or proxy** (:mod:`backend.domain.protected_terms`), no **instructions, links or
  markup**, no **other person**, no **named entity** not in the record;
* every other word must be in :data:`factcheck_vocab.SAFE_WORDS` (words that carry no claim).

A failed sentence is never shown; :meth:`FactCheckResult.verdict` counts failures by kind.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend.domain import FEATURES_BY_NAME
from backend.explanations.factcheck_rules import (
    DISGUISED,
    EMPTY,
    INSTRUCTION,
    KINDS,
    NAMED_ENTITY,
    OTHER_PERSON,
    PROMISE,
    PROTECTED_ATTRIBUTE,
    RELATIVE_TOLERANCE,
    UNACCOUNTED,
    UNKNOWN_FEATURE,
    UNKNOWN_REASON,
    WRONG_DIRECTION,
    WRONG_NUMBER,
    WRONG_RECOMMENDATION,
    WRONG_RISK_LEVEL,
    Failure,
    check_sentence,
)
from backend.explanations.record import DecisionRecord

#: The longest text checked; a longer answer fails as a whole (the fact-check's work is bounded).
MAX_CHARS = 4000
TOO_LONG = "too_long"

__all__ = ["DISGUISED", "EMPTY", "INSTRUCTION", "KINDS", "MAX_CHARS", "NAMED_ENTITY", "OTHER_PERSON", "PROMISE",
           "PROTECTED_ATTRIBUTE", "RELATIVE_TOLERANCE", "TOO_LONG", "UNACCOUNTED", "UNKNOWN_FEATURE",
           "UNKNOWN_REASON", "WRONG_DIRECTION", "WRONG_NUMBER", "WRONG_RECOMMENDATION", "WRONG_RISK_LEVEL",
           "FactCheckResult", "Failure", "fact_check", "is_known_feature", "sentences", "verdict"]
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.M)


@dataclass(frozen=True)
class FactCheckResult:
    ok: bool
    failures: list[Failure] = field(default_factory=list)
    sentences: int = 0

    def summary(self) -> str:
        return "passed" if self.ok else "; ".join(f"{f.kind}: {f.detail} [{f.claim}]" for f in self.failures)

    def verdict(self) -> dict[str, Any]:
        return verdict(self.failures, self.sentences)


def verdict(failures: Sequence[Failure | Mapping[str, Any]], checked: int | None = None) -> dict[str, Any]:
    """What every role may see: how many claims failed and how many of each kind; never the rejected text.
    ``failures``: :class:`Failure` objects or their stored form (dicts with ``claim``/``kind``/``detail``)."""
    kinds = [f.kind if isinstance(f, Failure) else str(f.get("kind", "")) for f in failures]
    claims = {f.claim if isinstance(f, Failure) else str(f.get("claim", "")) for f in failures}
    out: dict[str, Any] = {"passed": not failures, "claims_failed": len(claims), "failed_by_kind": dict(Counter(kinds))}
    if checked is not None:
        out["sentences_checked"] = checked
    return out


def sentences(text: str) -> list[str]:
    """Split on line breaks and sentence ends (list markers removed)."""
    out: list[str] = []
    for line in _LIST_MARK.sub("", text).splitlines():
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=\S)", line) if s.strip()]
    return out


def fact_check(text: str, record: DecisionRecord, memo: dict[str, list[Failure]] | None = None) -> FactCheckResult:
    """Check ``text`` against ``record``; ``ok`` only when every sentence is accounted for (module docstring).

    ``memo``: sentences already checked against this same ``record`` and their failures (a sentence's check reads
    nothing but the sentence and the record): a stream checks each sentence as it arrives, then the whole answer,
    and each sentence is checked once."""
    if len(text or "") > MAX_CHARS:
        return FactCheckResult(False, [Failure(text[:80] + "...", TOO_LONG, f"longer than {MAX_CHARS} characters")])
    parts = sentences(text or "")
    if not parts:
        return FactCheckResult(False, [Failure("", EMPTY, "no explanation text")])
    failures = [f for part in parts for f in _check(part, record, memo)]
    return FactCheckResult(not failures, failures, len(parts))


def _check(sentence: str, record: DecisionRecord, memo: dict[str, list[Failure]] | None) -> list[Failure]:
    if memo is None:
        return check_sentence(sentence, record)
    if sentence not in memo:
        memo[sentence] = check_sentence(sentence, record)
    return memo[sentence]


def is_known_feature(name: str) -> bool:
    return name in FEATURES_BY_NAME
