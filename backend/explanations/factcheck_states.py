"""Feature mentions that state the feature's value in words: "the residence being verified", "an unverified
income", "a single income source".

A plain alias ("residence verified") names a feature and says nothing about its value; these phrases do,
so each is matched to the record's value before it counts as a mention: "the employment was not verified"
on a record where it was fails as ``wrong_number``. They are found before the plain aliases, so the alias
inside them ("residence verified" in "residence being verified") cannot account for the phrase on its own.
A label with its value after it ("Employment verified: no") stays a plain alias; the value word is checked
against the record by the mentions step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from backend.explanations.factcheck_base import BLANK, WRONG_NUMBER, Mention, Sentence

_COPULA = r"(?:(?:was|were|is|are|being|been|has\s+been|had\s+been|having\s+been)\s+)?"
_NOT = r"(?:was|were|is|are|being|has|had|could|can|did)?\s*(?:not|n't|never)\s+(?:been\s+|be\s+)?"


@dataclass(frozen=True)
class StatedValue:
    pattern: re.Pattern[str]
    feature: str
    holds: Callable[[float], bool]
    says: str  # what the phrase claims, for the failure's detail


def _verified(feature: str, base: str, label: str) -> list[StatedValue]:
    b = rf"(?:the\s+|an?\s+|its\s+|their\s+)?{base}"
    neg = [rf"{b}\s+{_NOT}verified", rf"unverified\s+{base}", rf"{b}\s+{_COPULA}unverified",
           rf"(?:no|lack\s+of|missing)\s+(?:a\s+)?{base}\s+verification"]
    pos = [rf"{b}\s+{_COPULA}verified(?!\s*[:(=])", rf"verified\s+{base}", rf"{base}\s+verification\s+(?:passed|succeeded)"]
    return ([StatedValue(_phrase(p), feature, lambda x: x == 0, f"{label} not verified") for p in neg]
            + [StatedValue(_phrase(p), feature, lambda x: x == 1, f"{label} verified") for p in pos])


def _phrase(pattern: str) -> re.Pattern[str]:
    """``pattern`` as whole words, not starting inside a span already accounted for (``BLANK``)."""
    return re.compile(rf"(?<![\w'{BLANK}]){pattern}(?!\w)")


#: Longest claims first: a negation is tried before the positive phrase inside it.
STATED: tuple[StatedValue, ...] = (
    *_verified("employment_verified", "employment", "employment"),
    *_verified("residence_verified", r"(?:residence|address)", "residence"),
    *_verified("income_verified", "income", "income"),
    *(StatedValue(_phrase(p), "num_income_sources", lambda x: x == 1, "one income source")
      for p in (r"(?:a\s+single|only\s+1|just\s+1|1\s+single)\s+(?:income\s+sources?|sources?\s+of\s+income)",
                r"single\s+income\s+source")),
)


def stated_mentions(st: Sentence) -> list[Mention]:
    """The value-stating mentions of ``st`` (each checked against the record; a contradiction fails)."""
    found: list[Mention] = []
    for sv in STATED:
        for hit in sv.pattern.finditer(st.work):
            if any(not (hit.end() <= m.start or hit.start() >= m.end) for m in found):
                continue
            found.append(Mention(hit.start(), hit.end(), frozenset({sv.feature}), None, hit.group(0)))
            fact = st.record.facts.get(sv.feature)
            if fact is not None and fact.value is not None and not isinstance(fact.value, str) \
                    and not sv.holds(float(fact.value)):
                st.fail(WRONG_NUMBER, f"says {sv.says!r}; the record says {fact.description}: {fact.display}")
    return found
