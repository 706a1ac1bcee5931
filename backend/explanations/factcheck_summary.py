"""Sentences about the attribution as a whole, checked against it: "four factors raised the risk and four
lowered it" (the counts by sign), "overall, the factors raising the risk outweighed those lowering it" (the
sums by sign), and the reviewer step ("a loan officer will review this recommendation before any final
decision is made"), which promises nothing about the outcome."""

from __future__ import annotations

import re

from backend.explanations.factcheck_base import WRONG_DIRECTION, WRONG_NUMBER, Mention, Sentence, names_of

_UP = r"(?:rais\w*|increas\w*|push\w*\s+up|add\w*\s+to|elevat\w*|work\w*\s+against\s+the\s+applicant|hurt\w*)"
_DOWN = r"(?:lower\w*|reduc\w*|decreas\w*|eas\w*|mitigat\w*|help\w*|work\w*\s+in\s+(?:the\s+applicant's|their)\s+favor)"
_OBJ = r"(?:\s+(?:the\s+)?(?:estimated\s+)?(?:risk|it|them|the\s+estimate))?"
_WHO = r"(?:\s+(?:other\s+|of\s+(?:the|them|these)\s+)?(?:factors?|features?|drivers?|inputs?|facts?|of\s+them))"
_CHANGE = r"(?:\s+(?:each|all|also|only))?"
_VERB = rf"{_CHANGE}\s+(?:(?:have|had)\s+)?(?:({_UP})|({_DOWN})){_OBJ}"
#: "4 factors raised the risk", "4 of them lowered it"; a bare "4 decreased it" only after "and"/"while"/","
#: and only in a sentence that counts factors ("a score of 725 increased the risk" is not a count)
COUNT = re.compile(rf"(?<![\w$.,])(\d+){_WHO}{_VERB}")
BARE = re.compile(rf"(?:\band|\bwhile|\bwhereas|,)\s+(\d+){_VERB}")
_SIDE_UP = r"(?:factors?|drivers?|those|the\s+ones)\s+(?:(?:that\s+)?(?:rais|increas|push|add)\w*(?:\s+(?:to\s+)?the\s+risk)?|against\s+the\s+applicant)"
_SIDE_DOWN = r"(?:factors?|drivers?|those|the\s+ones)\s+(?:(?:that\s+)?(?:lower|reduc|decreas|eas|help)\w*(?:\s+(?:the\s+risk|it))?|in\s+(?:the\s+applicant's|their)\s+favor)"
_BEAT = r"(?:outweigh\w*|outweighed|were\s+(?:larger|stronger|bigger)\s+than|dominated|exceeded|outnumbered)"
#: "the factors raising the risk outweighed those lowering it" (and the reverse)
BALANCE = re.compile(rf"\b(?:the\s+)?(?:({_SIDE_UP})|({_SIDE_DOWN}))\s+{_BEAT}\s+(?:the\s+)?(?:{_SIDE_UP}|{_SIDE_DOWN})")
_OFFICER = r"(?:a|the)\s+(?:loan\s+officer|credit\s+officer|human\s+reviewer|reviewer|underwriter|lender|person)"
_REVIEW_OBJ = r"(?:this|the)\s+(?:model's\s+)?(?:recommendation|assessment|explanation|estimate|application|result)"
#: a human step that promises no outcome (an outcome word after it is still checked by the promise screen)
REVIEWER = tuple(re.compile(p) for p in (
    rf"\b{_OFFICER}\s+(?:will|is\s+going\s+to|must|still\s+needs\s+to|reviews?|checks?)\s*(?:review|check|look\s+at|"
    rf"examine)?\s+{_REVIEW_OBJ}(?:\s+before\s+(?:any|a|the)\s+final\s+decision\s+is\s+(?:made|taken|reached))?",
    rf"\b(?:this|the)\s+(?:recommendation|assessment|result)\s+(?:will\s+be|is|must\s+be)\s+reviewed\s+by\s+{_OFFICER}"
    rf"(?:\s+before\s+(?:any|a|the)\s+final\s+decision\s+is\s+(?:made|taken|reached))?",
    rf"\bthe\s+final\s+decision\s+(?:is\s+made\s+by|lies\s+with|rests\s+with|belongs\s+to)\s+{_OFFICER}(?:,?\s+not\s+(?:with\s+)?the\s+model)?",
    r"\b(?:this|the)\s+(?:recommendation|assessment)\s+is\s+not\s+(?:a|the)\s+final\s+decision",
))


def check_summary(st: Sentence) -> None:
    rec = st.record
    up = [f.contribution for f in rec.facts.values() if f.contribution > 0]
    down = [-f.contribution for f in rec.facts.values() if f.contribution < 0]
    for p in REVIEWER:
        for m in p.finditer(st.work):
            st.account(m.start(), m.end())
    for m in BALANCE.finditer(st.work):
        up_wins = m.group(1) is not None
        if (sum(up) > sum(down)) != up_wins or sum(up) == sum(down):
            st.fail(WRONG_DIRECTION, "says which side of the attribution outweighed the other; the sums say otherwise")
        st.account(m.start(), m.end())
    counts = list(COUNT.finditer(st.work))
    for m in counts + (list(BARE.finditer(st.work)) if counts else []):
        want = len(up) if m.group(2) is not None else len(down)
        if int(m.group(1)) != want:
            st.fail(WRONG_NUMBER, f"{m.group(0).strip()!r}: the record has {want} such factors")
        st.account(m.start(1), m.end())


def check_none(st: Sentence, mentions: list[Mention]) -> None:
    """"no inquiries in the last 6 months", "no recent delinquencies": a count of zero, so the named fact
    must be 0 in the record."""
    for m in mentions:
        no = re.search(r"\bno\s+(?:recent\s+)?$", st.work[:m.start])
        if no is None:
            continue
        values = [st.record.facts[n].value for n in names_of(m, st.record)]
        numeric = [float(x) for x in values if x is not None and not isinstance(x, str)]
        if not any(x == 0 for x in numeric):
            st.fail(WRONG_NUMBER, f"says there is no {m.text!r}; the record's value is not zero")
        st.account(no.start(), no.start() + 2)
