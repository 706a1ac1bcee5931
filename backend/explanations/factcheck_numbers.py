"""Numbers of a sentence: each tied to its subject and matched to the record at the precision it is written with."""

from __future__ import annotations

import re

from backend.explanations import factcheck_vocab as v
from backend.explanations.factcheck_base import BLANK, WRONG_NUMBER, Mention, Sentence, clauses, names_of
from backend.explanations.record import DecisionRecord


def _unit(m: re.Match[str]) -> tuple[str, float]:
    """The unit a number is written with, and its scale ("$12.5k" → ("$", 1000))."""
    u = (m.group(5) or "").strip()
    if u == "k":
        return ("$" if m.group(2) else ""), 1000.0
    if m.group(2) or u in ("dollars", "usd"):
        return "$", 1.0
    return {"percent": "%", "month": "months", "year": "years", "day": "days", "point": "points"}.get(u, u), 1.0


def _candidates(subject: str | set[str], unit: str, rec: DecisionRecord) -> list[float]:
    if subject == "pd":
        return [rec.pd * 100, rec.pd_percent] if unit in ("%", "") else []
    if subject == "confidence":
        return [rec.confidence * 100] if unit == "%" else [rec.confidence, rec.confidence * 100]
    assert isinstance(subject, set)
    vals: list[float] = []
    for name in subject:
        f = rec.facts[name]
        if f.value is None or isinstance(f.value, str) or f.kind == "binary":
            continue
        x = abs(float(f.value))
        fu = f.unit
        if fu == "ratio":
            vals += [x * 100] if unit == "%" else ([x, x * 100] if unit == "" else [])
        elif fu == "%":
            vals += [x] if unit in ("%", "") else []
        elif fu == "USD":
            vals += [x] if unit in ("$", "") else []
        elif fu == "months":
            vals += [x] if unit in ("months", "") else ([x / 12] if unit == "years" else [])
        elif fu in ("years", "days"):
            vals += [x] if unit in (fu, "") else []
        else:
            vals += [x] if unit in ("", "points") else []
    return vals


def _matches(x: float, decimals: int, candidates: list[float]) -> bool:
    """``x`` is a candidate rounded to the precision ``x`` is written with (34% for 34.2, $13,000 for $12,540),
    and within 5% of it when rounded to tens or more ($10,000 is not $12,500)."""
    if decimals > 0:
        step = 10.0 ** -decimals
    else:
        digits = str(int(round(abs(x))))
        step = 10.0 ** (len(digits) - len(digits.rstrip("0"))) if x else 1.0
    return any(abs(x - c) <= 0.5 * step + 1e-9 and (step <= 1 or abs(x - c) <= 0.05 * abs(c)) for c in candidates)


_COUNTED = re.compile(r"\s*(?:other\s+|main\s+|principal\s+|key\s+)?(?:factors|reasons|drivers)\b")


def check_numbers(st: Sentence, mentions: list[Mention]) -> None:
    rec = st.record
    subjects: list[tuple[int, int, str | set[str]]] = [(m.start, m.end, names_of(m, rec)) for m in mentions]
    subjects += [(m.start(), m.end(), "pd") for m in v.PD_SUBJECT.finditer(st.s)]
    subjects += [(m.start(), m.end(), "confidence") for m in v.CONFIDENCE_SUBJECT.finditer(st.s)]
    bounds = clauses(st.s)
    for n in list(v.NUMBER.finditer(st.work)):
        if BLANK in n.group(0):
            continue
        start, end = n.start(), n.end()
        counted = _COUNTED.match(st.work, end)
        if counted and not n.group(5) and not n.group(2):  # "two factors raised the risk", "3 reasons"
            up = sum(1 for f in rec.facts.values() if f.contribution > 0)
            if float(n.group(3)) not in (len(rec.reasons), up, len(rec.facts) - up, len(rec.facts)):
                st.fail(WRONG_NUMBER, f"{n.group(0).strip()!r} is not how many factors or reasons the record has")
            st.account(start, counted.end())
            continue
        clause = next((c for c in bounds if c[0] <= start < c[1]), (0, len(st.s)))
        near = [s for s in subjects if clause[0] <= s[0] < clause[1]] or subjects
        if not near:
            st.fail(WRONG_NUMBER, f"{n.group(0).strip()!r} is not tied to any fact of the record")
            st.account(n.start(), end)
            continue
        subject = min(near, key=lambda s: (max(s[0] - end, start - s[1], 0), s[0] > start))[2]
        unit, scale = _unit(n)
        x = float(n.group(3).replace(",", "") + (n.group(4) or ""))
        decimals = len(n.group(4) or ".") - 1
        if not _matches(x * scale, decimals - (3 if scale > 1 else 0), _candidates(subject, unit, rec)):
            what = subject if isinstance(subject, str) else ", ".join(sorted(subject)) or "a factor not in the record"
            st.fail(WRONG_NUMBER, f"{n.group(0).strip()!r} is not the record's value of {what}")
        st.account(n.start(), end)
