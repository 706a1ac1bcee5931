"""Ranking ("the largest factor") and quality words ("a high DTI", "a strong score") bound to a feature."""

from __future__ import annotations

import re

from backend.domain import FEATURES_BY_NAME
from backend.explanations import factcheck_vocab as v
from backend.explanations.factcheck_base import WRONG_DIRECTION, Mention, Sentence, clauses, names_of


def check_ranks(st: Sentence, mentions: list[Mention]) -> None:
    rec = st.record
    for m in re.finditer(r"[a-z]+", st.work):
        word = m.group(0)
        strict, loose = word in v.STRICT_RANK, word in v.LOOSE_RANK
        if not (strict or loose):
            continue
        lo, hi = next((c for c in clauses(st.s) if c[0] <= m.start() < c[1]), (0, len(st.s)))
        ents = [e for e in mentions if lo <= e.start < hi] or mentions
        if not ents:  # a heading ("the principal reasons are:") ranks nothing
            st.account(m.start(), m.end())
            continue
        principal = {n for r in rec.reasons for n in r.features}
        ok = bool(ents)
        for e in ents:
            names = names_of(e, rec)
            up = {n for n in names if rec.facts[n].contribution > 0}
            down = {n for n in names if rec.facts[n].contribution < 0}
            helping = [f.name for f in rec.helping()]
            if word in ("only", "sole", "single"):
                ok &= (len(up) == 1 and len([f for f in rec.facts.values() if f.contribution > 0]) == 1) or (
                    len(down) == 1 and len(helping) == 1)
            elif strict:  # the largest attribution, the first feature of the first reason, or "the biggest strength"
                first = rec.reasons[0].features[:1] if rec.reasons else ()
                top = max(rec.facts.values(), key=lambda f: abs(f.contribution), default=None)
                ok &= bool((top is not None and top.name in names) or up & set(first) or (
                    helping and helping[0] in down and st.cue_signs == {v.LOWERS}))
            else:
                ok &= bool(up & principal or down & set(helping[:2]) or e.code in rec.reason_codes)
        if not ok:
            st.fail(WRONG_DIRECTION, f"ranks a factor {word!r}, which its attribution does not support")
        st.account(m.start(), m.end())


def check_adjectives(st: Sentence, mentions: list[Mention]) -> None:
    rec = st.record
    for m in mentions:
        before = re.search(r"([a-z]+)\s+(?:(?:the|applicant's|its|their|very|relatively|fairly|rather)\s+){0,2}$",
                           st.work[:m.start])
        after = re.match(r"(?:\s+of)?[\s§()]*(?<=[\s§)])(?:is|was|are|were|remains|looks)\s+"
                         r"(?:(?:very|relatively|fairly|rather|quite)\s+)?([a-z]+)\b", st.work[m.end:])
        for adj, at in ((before.group(1), before.start(1)) if before else ("", 0),
                        (after.group(1), m.end + after.start(1)) if after else ("", 0)):
            kind = ("up" if adj in v.UP_ADJ else "down" if adj in v.DOWN_ADJ else "good" if adj in v.GOOD_ADJ
                    else "bad" if adj in v.BAD_ADJ else "")
            if not kind:
                continue
            ok = False
            for n in names_of(m, rec):
                d, hir = rec.facts[n].direction, FEATURES_BY_NAME[n].higher_is_riskier
                ok |= {"good": d == v.LOWERS, "bad": d == v.RAISES,
                       "up": hir is not None and hir == (d == v.RAISES),
                       "down": hir is not None and hir == (d == v.LOWERS)}[kind]
            if not ok:
                st.fail(WRONG_DIRECTION, f"calls {m.text!r} {adj!r}, which is not what the model's attribution says")
            st.account(at, at + len(adj))
