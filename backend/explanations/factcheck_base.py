"""The pieces every fact-check step shares: failure kinds, the sentence being accounted for, its mentions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.domain import skeleton, words_to_numbers
from backend.explanations import factcheck_vocab as v
from backend.explanations.record import DecisionRecord

UNKNOWN_FEATURE = "unknown_feature"
UNKNOWN_REASON = "unknown_reason"
WRONG_NUMBER = "wrong_number"
WRONG_DIRECTION = "wrong_direction"
WRONG_RISK_LEVEL = "wrong_risk_level"
PROTECTED_ATTRIBUTE = "protected_attribute"
PROMISE = "promise"
WRONG_RECOMMENDATION = "wrong_recommendation"
INSTRUCTION = "instruction"
OTHER_PERSON = "other_person"
NAMED_ENTITY = "named_entity"
DISGUISED = "disguised_text"
UNACCOUNTED = "unaccounted"
EMPTY = "empty"
KINDS = (UNKNOWN_FEATURE, UNKNOWN_REASON, WRONG_NUMBER, WRONG_DIRECTION, WRONG_RISK_LEVEL, PROTECTED_ATTRIBUTE,
         PROMISE, WRONG_RECOMMENDATION, INSTRUCTION, OTHER_PERSON, NAMED_ENTITY, DISGUISED, UNACCOUNTED, EMPTY)
RELATIVE_TOLERANCE = 0.005
BLANK = "§"
ALIASES = v.alias_table()
PUNCT = set(".,;:()'\"!?-%$/&" + BLANK)
CAPITALISED = re.compile(r"(?<![.!?:]\s)(?<!^)(?<!\()\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")


@dataclass(frozen=True)
class Failure:
    claim: str
    kind: str
    detail: str


@dataclass
class Mention:
    start: int
    end: int
    names: frozenset[str]
    code: str | None
    text: str


class Sentence:
    def __init__(self, raw: str, record: DecisionRecord) -> None:
        self.raw, self.record = raw, record
        self.s = v.norm(words_to_numbers(skeleton(raw)))
        self.work = self.s  # accounted spans become BLANK
        self.fails: list[Failure] = []
        self.cue_signs: set[str] = set()  # directions the sentence states ("lowered the risk", "a strength")

    def fail(self, kind: str, detail: str) -> None:
        if not any(f.kind == kind for f in self.fails):
            self.fails.append(Failure(self.raw, kind, detail))

    def account(self, start: int, end: int) -> None:
        self.work = self.work[:start] + BLANK * (end - start) + self.work[end:]


def names_of(m: Mention, rec: DecisionRecord) -> set[str]:
    if m.code is not None:
        return {n for n, f in rec.facts.items() if f.reason_code == m.code}
    return {n for n in m.names if n in rec.facts}


def signs_of(m: Mention, rec: DecisionRecord) -> set[str]:
    signs = {v.RAISES} if m.code is not None and m.code in rec.reason_codes else set()
    return signs | {rec.facts[n].direction for n in names_of(m, rec)}


def outcome_of(word: str) -> str:
    for prefix, outcome in v.OUTCOMES.items():
        if word.startswith(prefix):
            return outcome
    return ""


def clauses(s: str) -> list[tuple[int, int]]:
    cuts = [0, *[m.end() for m in v.CLAUSE.finditer(s)], len(s)]
    return list(zip(cuts, cuts[1:], strict=False))
