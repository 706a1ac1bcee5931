"""Fact-check corpus: generated faulty and correct explanations of real-looking decision records.

Records: synthetic applications (``backend.training.synthetic``) with random sparse attributions run
through the real reason builder (``backend.models.reasons.top_reasons``), then ``DecisionRecord``.

Last run (``pytest -s tests/unit/test_factcheck.py``):
    faulty rejected: 300/300 (100.0%)   correct accepted: 300/300 (100.0%)
    (faulty mix: 50 each of changed number, invented feature/reason, reversed direction, protected
    attribute/proxy, promise of approval, wrong recommendation; correct: 75 template texts and 225
    paraphrases in three styles: ratios as decimals, months as years, numbered lists, "helped",
    "pushed the risk up", "counted against", "worked in the applicant's favor")
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from backend.domain.features import FEATURE_NAMES, FEATURES_BY_NAME
from backend.explanations.factcheck import (
    EMPTY,
    PROMISE,
    PROTECTED_ATTRIBUTE,
    UNKNOWN_FEATURE,
    UNKNOWN_REASON,
    WRONG_DIRECTION,
    WRONG_NUMBER,
    WRONG_RECOMMENDATION,
    fact_check,
)
from backend.explanations.record import RECOMMENDATION_WORDS, DecisionRecord, FeatureFact, format_value
from backend.explanations.template import TemplateExplainer
from backend.models.reasons import top_reasons
from backend.training.synthetic import generate

N = 300
PROTECTED_SENTENCES = (
    "The applicant's age was also taken into account.", "Her gender did not play a role in the risk.",
    "As a 62 years old applicant, the term matters.", "The zip code of the applicant is in a higher risk area.",
    "Being married lowers the estimated risk.", "The applicant's race was not considered.",
    "The applicant's ethnicity is Hispanic.", "His religion is not relevant here.",
    "National origin did not affect this outcome.", "The applicant is a single mother.",
    "The applicant's marital status was noted.", "The applicant's nationality was checked.",
    "A female applicant with this profile is typical.", "The applicant's neighborhood raised the risk.",
    "The applicant receives public assistance.", "The applicant's disability was considered.",
)
PROMISES = (
    "You will be approved once the documents arrive.", "Approval is guaranteed.",
    "The applicant is pre-approved for this amount.", "Rest assured, the applicant will qualify.",
    "We will approve this loan.", "The applicant is certain to be approved.", "You'll get the loan.",
    "This loan is guaranteed to close.", "The applicant has been preapproved.",
)
INVENTED = ("has_bankruptcy", "num_public_records", "has_garnishment", "savings_balance", "loan_to_value",
            "collateral_value", "credit_score", "debt_to_income", "num_overdrafts_12m", "revolving_utilization",
            "has_foreclosure_or_repo", "num_chargeoffs", "months_as_customer", "num_late_payments_with_us")


def _clean(v: object) -> object:
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and math.isnan(v) else v


def make_records(n: int, seed: int) -> list[DecisionRecord]:
    df = generate(n, seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        vals = {k: _clean(df.iloc[i][k]) for k in FEATURE_NAMES}
        phi = rng.normal(0, 0.3, len(FEATURE_NAMES)) * (rng.random(len(FEATURE_NAMES)) < 0.3)
        pd_ = float(rng.beta(1, 8))
        rec = "deny" if pd_ > 0.3 else ("manual_review" if pd_ > 0.15 else "approve")
        result = SimpleNamespace(recommendation=rec, pd=pd_, confidence=float(rng.uniform(0.6, 1.0)),
                                 risk_class="high_risk" if pd_ > 0.3 else "low_risk", model_version="t",
                                 reasons=top_reasons(FEATURE_NAMES, phi, vals), policy_reasons=[],
                                 attributions=dict(zip(FEATURE_NAMES, phi.tolist(), strict=True)), features=vals)
        out.append(DecisionRecord.from_score(result))
    return out


def _has_value(f: FeatureFact) -> bool:
    return f.display != "not available"


def _years(f: FeatureFact) -> str:
    if f.unit == "months" and isinstance(f.value, int | float) and f.value >= 24 and f.value % 6 == 0:
        return f"{f.value / 12:g} years"
    if f.unit == "ratio" and isinstance(f.value, float) and f.value < 1:
        return f"{f.value:.2f}"
    return f.display


def paraphrase(r: DecisionRecord, style: int) -> str:
    """Correct explanations in a few LLM-like styles."""
    raising = [r.facts[n] for reason in r.reasons for n in reason.features]
    helping = r.helping()[:2]
    band = r.risk_words.split(" (")[0].replace(" risk", "")
    rec = {"approve": "approval", "deny": "denial", "manual_review": "manual review"}[r.recommendation]
    out = []
    if style == 0:
        out.append(f"The model recommends {rec}, with a {band} estimated probability of default of {r.pd_percent}%.")
        for f in raising[:4]:
            val = "" if not _has_value(f) else (f" ({f.display})" if f.kind == "binary" else f" of {f.display}")
            out.append(f"The applicant's {f.description}{val} increased the risk.")
        if helping:
            out.append(f"On the positive side, the {helping[0].description} ({helping[0].display}) helped.")
    elif style == 1:
        out.append(f"Recommendation: {RECOMMENDATION_WORDS[r.recommendation]}.")
        out.append(f"The estimated chance of default is about {r.pd * 100:.0f}%, which the model rates as {band}.")
        for i, reason in enumerate(r.reasons, 1):
            facts = "; ".join(f"{r.facts[n].description} is {_years(r.facts[n])}" for n in reason.features)
            out.append(f"{i}. {reason.text} ({facts}) pushed the risk up." if facts else f"{i}. {reason.text}.")
        for f in helping:
            out.append(f"The {f.description} ({_years(f)}) worked in the applicant's favor.")
    else:
        out.append(f"This application is recommended for {rec}.")
        if raising:
            f = raising[0]
            out.append(f"The largest factor was {f.description} ({f.display}), which raised the estimated risk.")
        for f in raising[1:3]:
            out.append(f"The {f.description} ({f.display}) also counted against the application.")
        if helping:
            out.append(f"The {helping[-1].description} ({helping[-1].display}) lowered the estimated risk, "
                       f"but not enough to change the {band} risk band.")
        out.append("A loan officer reviews the final decision.")
    return "\n".join(out)


def _all_numbers(r: DecisionRecord) -> list[float]:
    nums = [r.pd * 100, r.pd_percent, r.confidence * 100, 2, 5, 15, 30]
    for f in r.facts.values():
        nums += [float(x) for x in re.findall(r"\d+(?:\.\d+)?", f.description)]
        if isinstance(f.value, int | float):
            v = abs(float(f.value))
            nums += [v, v * 100, v / 100, v / 12]
    return nums


def change_number(text: str, r: DecisionRecord, rng: random.Random) -> str | None:
    def where(disp: str) -> re.Match[str] | None:
        return re.search(r"(?<![\w$,.])" + re.escape(disp) + r"(?![\w,]|\.\d)", text)

    facts = [f for f in r.facts.values() if isinstance(f.value, int | float) and f.kind != "binary"
             and re.search(r"\d", f.display) and where(f.display)]
    rng.shuffle(facts)
    for f in facts:
        for _ in range(20):
            v = float(f.value)
            new = v * rng.uniform(1.3, 3.0) + rng.choice([1, 3, 7]) * (0.05 if f.unit == "ratio" else 1)
            disp = format_value(f.name, new)
            x = float(re.sub(r"[^\d.]", "", disp) or 0)
            if disp != f.display and all(abs(x - c) > max(1.0, 0.02 * c) for c in _all_numbers(r)):
                m = where(f.display)
                assert m is not None
                return text[:m.start()] + disp + text[m.end():]
    pd_text = f"{r.pd_percent:.1f}%"
    if pd_text in text:
        new_pd = r.pd_percent + rng.choice([7.3, 11.1, 19.7])
        if all(abs(new_pd - c) > 1 for c in _all_numbers(r)):
            return text.replace(pd_text, f"{new_pd:.1f}%", 1)
    return None


def reverse_direction(text: str, r: DecisionRecord, rng: random.Random) -> str | None:
    swaps = [("raised the estimated risk", "lowered the estimated risk"), ("increased the risk", "reduced the risk"),
             ("lowered the estimated risk", "raised the estimated risk"), ("helped", "hurt"),
             ("pushed the risk up", "helped"), ("counted against the application", "worked in its favor")]
    rng.shuffle(swaps)
    for a, b in swaps:
        if a in text:
            return text.replace(a, b, 1)
    return None


def invent(text: str, r: DecisionRecord, rng: random.Random) -> str | None:
    if rng.random() < 0.3:
        codes = {f.reason_code for f in r.facts.values()}
        free = [c for c in ("bankruptcy", "garnishment_or_attachment", "foreclosure_or_repossession",
                            "collection_or_judgment", "unverified_residence") if c not in codes]
        if free:
            from backend.domain.reason_codes import REASONS
            return text + f"\nAnother principal reason: {REASONS[rng.choice(free)]}."
    free_f = [n for n in INVENTED if n not in r.facts]
    name = rng.choice(free_f)
    desc = FEATURES_BY_NAME[name].description
    return text + f"\nThe {desc} also raised the estimated risk."


def faulty(records: list[DecisionRecord], n: int) -> list[tuple[str, str, DecisionRecord]]:
    rng = random.Random(7)
    kinds = ("number", "invented", "direction", "protected", "promise", "recommendation")
    out: list[tuple[str, str, DecisionRecord]] = []
    i = 0
    while len(out) < n:
        r = records[i % len(records)]
        kind = kinds[i % len(kinds)]
        i += 1
        base = TemplateExplainer().render(r) if i % 2 else paraphrase(r, i % 3)
        text: str | None
        if kind == "number":
            text = change_number(base, r, rng)
        elif kind == "direction":
            text = reverse_direction(base, r, rng)
        elif kind == "invented":
            text = invent(base, r, rng)
        elif kind == "protected":
            lines = base.split("\n")
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(PROTECTED_SENTENCES))
            text = "\n".join(lines)
        elif kind == "promise":
            text = base + " " + rng.choice(PROMISES)
        else:
            other = rng.choice([k for k in RECOMMENDATION_WORDS if k != r.recommendation])
            text = f"Recommendation: {RECOMMENDATION_WORDS[other]}.\n" + base.split("\n", 1)[1]
        if text is not None and text != base:
            out.append((kind, text, r))
    return out


@pytest.fixture(scope="module")
def records() -> list[DecisionRecord]:
    return make_records(N, seed=11)


def test_faulty_explanations_are_all_rejected(records: list[DecisionRecord]) -> None:
    cases = faulty(records, N)
    passed = [(k, t) for k, t, r in cases if fact_check(t, r).ok]
    mix = dict(Counter(k for k, _, _ in cases))
    print(f"\nfaulty rejected: {len(cases) - len(passed)}/{len(cases)} "
          f"({100 * (len(cases) - len(passed)) / len(cases):.1f}%) mix={mix}")
    assert len(cases) >= 200
    assert {k for k, _, _ in cases} == {"number", "invented", "direction", "protected", "promise", "recommendation"}
    assert not passed, passed[:3]


def test_correct_explanations_are_accepted(records: list[DecisionRecord]) -> None:
    texts = [(TemplateExplainer().render(r) if i % 4 == 0 else paraphrase(r, i % 3), r)
             for i, r in enumerate(records)]
    failed = [(t, fact_check(t, r).summary()) for t, r in texts if not fact_check(t, r).ok]
    rate = 1 - len(failed) / len(texts)
    print(f"\ncorrect accepted: {len(texts) - len(failed)}/{len(texts)} ({100 * rate:.1f}%)")
    assert len(texts) >= 200
    assert rate >= 0.98, failed[:3]


def test_failures_name_the_sentence_and_kind(records: list[DecisionRecord]) -> None:
    r = records[0]
    text = TemplateExplainer().render(r) + "\nYou will be approved. The applicant's age matters."
    res = fact_check(text, r)
    kinds = {f.kind: f.claim for f in res.failures}
    assert not res.ok
    assert kinds[PROMISE] == "You will be approved."
    assert kinds[PROTECTED_ATTRIBUTE] == "The applicant's age matters."
    assert fact_check("", r).failures[0].kind == EMPTY


def test_each_kind_is_detected(records: list[DecisionRecord]) -> None:
    r = next(x for x in records if x.reasons and x.helping() and x.recommendation == "approve")
    f = r.facts[r.reasons[0].features[0]]
    h = r.helping()[0]
    assert fact_check(f"The {h.description} raised the estimated risk.", r).failures[0].kind == WRONG_DIRECTION
    assert fact_check(f"The {f.description} helped the applicant.", r).failures[0].kind == WRONG_DIRECTION
    assert fact_check("The probability of default is 93.4%.", r).failures[0].kind == WRONG_NUMBER
    missing = next(n for n in INVENTED if n not in r.facts)
    assert fact_check(f"The {FEATURES_BY_NAME[missing].description} matters.", r).failures[0].kind == UNKNOWN_FEATURE
    codes = {x.reason_code for x in r.facts.values()}
    code = next(c for c in ("bankruptcy", "garnishment_or_attachment") if c not in codes)
    from backend.domain.reason_codes import REASONS
    assert fact_check(f"{REASONS[code]}.", r).failures[0].kind == UNKNOWN_REASON
    assert fact_check("We recommend denial.", r).failures[0].kind == WRONG_RECOMMENDATION
    assert fact_check("This is not a guarantee of approval.", r).ok
    assert fact_check(f"Probability of default: {r.pd_percent}% ({r.pd * 100:.0f}% rounded).", r).ok
