"""One sentence against the decision record: every part of it must be accounted for (see :mod:`factcheck`).

The sentence is folded to its skeleton (:func:`backend.domain.textnorm.skeleton`, number words as digits).
Each step *accounts* for a span of it (blanks it with ``§``) or reports a :class:`Failure`; whatever is left
at the end must be :data:`SAFE_WORDS` and plain punctuation, or the sentence fails as ``unaccounted``.
"""

from __future__ import annotations

import re

from backend.domain import REASONS, find_protected, has_bidi_controls, skeleton, strip_invisible
from backend.explanations import factcheck_vocab as v
from backend.explanations.factcheck_base import (
    ALIASES,
    BLANK,
    CAPITALISED,
    DISGUISED,
    EMPTY,
    INSTRUCTION,
    KINDS,
    NAMED_ENTITY,
    OTHER_PERSON,
    PROMISE,
    PROTECTED_ATTRIBUTE,
    PUNCT,
    RELATIVE_TOLERANCE,
    UNACCOUNTED,
    UNKNOWN_FEATURE,
    UNKNOWN_REASON,
    WRONG_DIRECTION,
    WRONG_NUMBER,
    WRONG_RECOMMENDATION,
    WRONG_RISK_LEVEL,
    Failure,
    Mention,
    Sentence,
    clauses,
    names_of,
    outcome_of,
    signs_of,
)
from backend.explanations.factcheck_numbers import check_numbers
from backend.explanations.factcheck_quality import check_adjectives, check_ranks
from backend.explanations.factcheck_states import stated_mentions
from backend.explanations.factcheck_summary import check_none, check_summary
from backend.explanations.record import PD_BANDS, DecisionRecord

__all__ = ["DISGUISED", "EMPTY", "INSTRUCTION", "KINDS", "NAMED_ENTITY", "OTHER_PERSON", "PROMISE",
           "PROTECTED_ATTRIBUTE", "RELATIVE_TOLERANCE", "UNACCOUNTED", "UNKNOWN_FEATURE", "UNKNOWN_REASON",
           "WRONG_DIRECTION", "WRONG_NUMBER", "WRONG_RECOMMENDATION", "WRONG_RISK_LEVEL", "Failure", "check_sentence"]


_BOLD = re.compile(r"\*\*([^*\n]{1,80})\*\*|__([^_\n]{1,80})__")


def check_sentence(raw: str, record: DecisionRecord) -> list[Failure]:
    raw = _BOLD.sub(lambda m: m.group(1) or m.group(2), raw)  # markdown bold is emphasis, not markup
    if has_bidi_controls(raw):
        return [Failure(raw, DISGUISED, "bidirectional control characters reorder what is displayed")]
    st = Sentence(raw, record)
    for p in v.SAFE_PHRASES:
        for m in p.finditer(st.work):
            st.account(m.start(), m.end())
    check_summary(st)
    mentions = _mentions(st)
    check_none(st, mentions)
    for p in v.LATE_SAFE_PHRASES:
        for m in p.finditer(st.work):
            st.account(m.start(), m.end())
    _screen(st)
    _outcomes(st, mentions)
    _risk_levels(st)
    check_numbers(st, mentions)
    _directions(st, mentions)
    check_adjectives(st, mentions)
    check_ranks(st, mentions)
    _leftover(st)
    return st.fails


def _mentions(st: Sentence) -> list[Mention]:
    rec = st.record
    taken: list[Mention] = stated_mentions(st)  # "the residence being verified": checked against the value
    work = st.work
    for pattern, names, code, words in ALIASES:
        if not all(w in work for w in words):  # a word of the alias is missing: the pattern cannot match
            continue
        for hit in pattern.finditer(work):
            if all(hit.end() <= t.start or hit.start() >= t.end for t in taken):
                taken.append(Mention(hit.start(), hit.end(), names, code, hit.group(0)))
    # a value in words ("rent", "debt consolidation", "yes", "not available") counts only as the value of the
    # fact nearest to it; an alias inside it ("debt" in "debt consolidation") names no feature
    values: list[tuple[int, int, str]] = []
    for f in rec.facts.values():
        disp = v.norm(skeleton(f.display))
        if disp and not re.search(r"\d", disp):
            values += [(h.start(), h.end(), disp) for h in re.finditer(rf"(?<![a-z]){re.escape(disp)}(?![a-z])", st.work)]
    values = [x for x in dict.fromkeys(values) if not any(t.start <= x[0] and x[1] <= t.end and
                                                         (t.start, t.end) != (x[0], x[1]) for t in taken)]
    taken = [t for t in taken if not any(a <= t.start and t.end <= b and (a, b) != (t.start, t.end)
                                         for a, b, _ in values)]
    for m in taken:
        st.account(m.start, m.end)
        if m.code is not None and m.code not in rec.reason_codes and not signs_of(m, rec):
            st.fail(UNKNOWN_REASON, f"reason {REASONS[m.code]!r} is not a reason of this decision")
        elif m.code is None and not (m.names & rec.facts.keys()):
            st.fail(UNKNOWN_FEATURE, f"{m.text!r} is not among this decision's factors")
    parts = clauses(st.s)
    for a, b, disp in values:
        lo, hi = next((c for c in parts if c[0] <= a < c[1]), (0, len(st.s)))
        near = min([t for t in taken if lo <= t.start < hi] or taken, key=lambda t: max(t.start - b, a - t.end, 0),
                   default=None)
        if near is not None and any(v.norm(skeleton(rec.facts[n].display)) == disp for n in names_of(near, rec)):
            st.account(a, b)
    return sorted(taken, key=lambda t: t.start)


def _screen(st: Sentence) -> None:
    found = find_protected(st.work)
    if found:
        st.fail(PROTECTED_ATTRIBUTE, "names " + ", ".join(f"{w!r} ({t.category})" for t, w in found))
    shown = strip_invisible(st.raw)
    if v.LURE.search(st.work) or v.LURE.search(shown.lower()):
        st.fail(INSTRUCTION, "instructions, links or markup aimed at the reader")
    if v.OTHER_PERSON.search(st.work):
        st.fail(OTHER_PERSON, "refers to another person or application")
    names = [n for n in CAPITALISED.findall(shown) if any(w.lower() not in v.SAFE_WORDS for w in n.split())]
    if names and not all(_is_record_text(n, st) for n in names):
        st.fail(NAMED_ENTITY, f"names {names[0]!r}, which is not in the decision record")
    if v.PROMISE.search(st.work):
        st.fail(PROMISE, f"promises an outcome: {v.PROMISE.search(st.work).group(0)!r}")  # type: ignore[union-attr]


def _is_record_text(name: str, st: Sentence) -> bool:
    low = v.norm(skeleton(name))
    return bool(re.search(rf"(?<![a-z]){re.escape(low)}", st.s)) and all(
        ch == BLANK for m in re.finditer(re.escape(low), st.s) for ch in st.work[m.start():m.end()])


def _outcomes(st: Sentence, mentions: list[Mention]) -> None:
    rec = st.record.recommendation
    recommended = bool(v.FRAME_RECOMMEND.search(st.work))
    for m in v.FRAME_CHANCES.finditer(st.work):  # "lowered the chances of approval": the verb is the cue
        st.account(m.start(1), m.end(1))
    for pattern, asserts in ((v.FRAME_RECOMMEND, True), (v.FRAME_CAUSE, True), (v.FRAME_DIRECTION, False)):
        for m in pattern.finditer(st.work):
            said = outcome_of(m.group(m.lastindex or 0))
            if asserts and said and said != rec:
                st.fail(WRONG_RECOMMENDATION, f"says {said}, the record says {rec}")
            if pattern is v.FRAME_RECOMMEND:
                st.account(m.start(), m.end())
            else:  # a cause frame is a direction claim: bound to its feature in _directions
                st.work = st.work[:m.start()] + _cue_marker(said, pattern is v.FRAME_CAUSE, m) + st.work[m.end():]
    for m in re.finditer(rf"\b{v.OUTCOME}", st.work):
        said = outcome_of(m.group(1))
        if said == "approve":
            st.fail(PROMISE, f"states an approval outside the model's recommendation: {m.group(0)!r}")
        elif said != rec:
            st.fail(WRONG_RECOMMENDATION, f"says {said}, the record says {rec}")
        elif recommended:  # "recommends referring the application for manual review"
            st.account(m.start(), m.end())
        else:
            st.fail(UNACCOUNTED, f"states the outcome outside the model's recommendation: {m.group(0)!r}")


def _cue_marker(said: str, cause: bool, m: re.Match[str]) -> str:
    """A cause/direction frame becomes a neutral direction cue of the same length ("raises"/"lowers")."""
    up = (said != "approve") if cause else (said != "approve") == ("against" not in m.group(0))
    word = "\x01" if up else "\x02"  # read by _directions as a cue
    return word + BLANK * (len(m.group(0)) - 1)


def _band(st: Sentence) -> tuple[set[str], tuple[float, float]]:
    rec = st.record
    label = rec.pd_band
    consistent = rec.band_agrees
    allowed = ({label.split(" (")[0]} if consistent else set()) | {"high" if rec.risk_class == "high_risk" else "low"}
    lo = 0.0
    for upper, text in PD_BANDS:
        if text == label:
            return allowed, (lo * 100, upper * 100) if consistent else (-1.0, -1.0)
        lo = upper
    return allowed, (-1.0, -1.0)


def _risk_levels(st: Sentence) -> None:
    allowed, (lo, hi) = _band(st)
    for p in v.LEVEL_PATTERNS:
        for m in p.finditer(st.work):
            level = v.LEVELS[m.group(1)]
            if level not in allowed:
                st.fail(WRONG_RISK_LEVEL, f"calls the risk {level!r}; the record's is {sorted(allowed)}")
            st.account(m.start(1), m.end(1))
    for m in v.BAND_RANGE.finditer(st.work):
        nums = [float(x) for x in m.groups() if x is not None]
        ok = (len(nums) == 2 and (nums[0], nums[1]) == (lo, hi)) or (len(nums) == 1 and (
            (m.group(3) is not None and nums[0] == hi) or (m.group(3) is None and nums[0] == lo)))
        if not ok:
            st.fail(WRONG_RISK_LEVEL, f"{m.group(0).strip()!r} is not the band of this decision")
        st.account(m.start(), m.end())


def _directions(st: Sentence, mentions: list[Mention]) -> None:
    rec, s = st.record, st.work
    cues: list[tuple[int, int, str]] = []
    for pattern, sign in v.CUES:
        for c in pattern.finditer(s):
            if any(a <= c.start() < b for a, b, _ in cues):
                continue
            said, window = sign, max(0, c.start() - 20)
            neg = v.NEGATION.search(s[window:c.start()])
            if neg:  # "did not raise the risk": the negation is part of the direction claim
                said = v.LOWERS if sign == v.RAISES else v.RAISES
                st.account(window + neg.start(), window + neg.end())
            cues.append((c.start(), c.end(), said))
    cues += [(m.start(), m.start() + 1, v.RAISES if m.group(0) == "\x01" else v.LOWERS)
             for m in re.finditer("[\x01\x02]", s)]
    if v.FRAME_RECOMMEND.search(st.s):  # "recommended for denial because of the DTI of 48%"
        causal = [(m.start(), m.end(), _implicit_sign(st)) for m in v.CAUSAL.finditer(s)]
        for a, b, _ in causal:
            st.account(a, b)
        cues += causal if mentions else []
    for a, b, sign in cues:
        st.account(a, b)
        st.cue_signs.add(sign)
    implicit = _implicit_sign(st)
    for lo, hi in clauses(st.s):
        here = [c for c in cues if lo <= c[0] < hi]
        if not here and implicit and any(lo <= m.start < hi for m in mentions):
            here = [(lo, lo, implicit)]  # "the model recommends denial: the savings balance ($12,500)"
        if not here:
            continue
        ents = [m for m in mentions if lo <= m.start < hi] or mentions
        if not ents:
            st.fail(UNACCOUNTED, "a direction (raised/lowered the risk) not tied to any factor of the record")
        for m in ents:
            pos = (m.start + m.end) / 2
            sign = min(here, key=lambda c: abs(c[0] - pos))[2]
            signs = signs_of(m, rec)
            if signs and sign not in signs:
                st.fail(WRONG_DIRECTION, f"says {m.text!r} {sign} the risk; the model says the opposite")


def _implicit_sign(st: Sentence) -> str:
    """A sentence that names reasons or a recommendation presents its factors as raising (deny, review, reasons)
    or lowering (approve) the risk even without a direction word."""
    rec = v.FRAME_RECOMMEND.search(st.s)
    if rec is not None:
        return v.LOWERS if outcome_of(rec.group(rec.lastindex or 0)) == "approve" else v.RAISES
    return v.RAISES if re.search(r"\breasons?\b", st.s) else ""


def _leftover(st: Sentence) -> None:
    words = re.findall(r"[a-z]+(?:'[a-z]*)?|\d[\d.,]*|[^\sa-z\d]", st.work)
    bad = []
    for w in words:
        if w in PUNCT or w in v.SAFE_WORDS or (w.endswith("'s") and w[:-2] in v.SAFE_WORDS):
            continue
        bad.append(w)
    if any(w in ("not", "never", "no", "n't") or w.endswith("n't") for w in bad):
        st.fail(UNACCOUNTED, "a negation that is not part of a direction (raised/lowered the risk) claim")
    if any(w[0].isdigit() for w in bad):
        st.fail(WRONG_NUMBER, "a number that matches nothing of the record")
    if bad and not st.fails:
        kind = INSTRUCTION if any(not (w[0].isalnum() or w[0] == "'") for w in bad) else UNACCOUNTED
        st.fail(kind, "not accounted for by the record: " + ", ".join(repr(w) for w in dict.fromkeys(bad)))
    elif bad:
        st.fail(UNACCOUNTED, "not accounted for by the record: " + ", ".join(repr(w) for w in dict.fromkeys(bad)))
