"""Wordings of the fact-check corpus (see build_factcheck_corpus.py): true explanations and hostile sentences."""

from __future__ import annotations

import random

from backend.explanations.record import DecisionRecord, FeatureFact

SMALL = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen twenty").split()
REC_TRUE = {
    "approve": ("The model recommends approval.", "Recommendation: approve.",
                "The model's recommendation is to approve the application.",
                "This application is recommended for approval.", "The recommendation from the model is approval.",
                "The model recommends approving this loan.", "In summary, the model recommends approval.",
                "The decision is a recommendation to approve."),
    "deny": ("The model recommends denial.", "Recommendation: deny.", "The model's recommendation is to deny the application.",
             "This application is recommended for denial.", "The recommendation from the model is to decline.",
             "The model recommends declining this loan.", "The model recommends denying this application.",
             "The decision is a recommendation to deny."),
    "manual_review": ("The model recommends a manual review.", "Recommendation: refer for manual review.",
                      "The model's recommendation is to refer the application for manual review.",
                      "This application is recommended for manual review.",
                      "The recommendation from the model is a manual review."),
}
RAISE_T = (
    "The {d} of {v} raised the estimated risk.", "The applicant's {d} ({v}) increased the risk.",
    "{D} ({v}) pushed the risk up.", "The {d}, at {v}, added to the risk.",
    "The {d} ({v}) counted against the application.", "The {d} of {v} weighed on the assessment.",
    "The {d} ({v}) worked against the applicant.", "One of the main factors raising the risk was the {d} ({v}).",
    "The {d} was {v}, which raised the risk of default.", "The {d} ({v}) contributed to the estimated risk.",
    "Another factor that increased the risk was the {d}, which is {v}.", "The {d} ({v}) hurt the application.",
    "A {d} of {v} raised the risk.", "The {d} ({v}) is a primary factor raising the risk.",
    "Factors that increased the risk include the {d} ({v}).", "The {d} of {v} also raised it.",
    "The applicant's {d} ({v}) weighed against approval.", "The {d} ({v}) lowered the chances of approval.",
)
RAISE_REASON_T = ("{R}: the {d} ({v}) raised the estimated risk.", "{R} ({d}: {v}) pushed the risk up.",
                  "The first reason is {r}, with the {d} at {v}, which increased the risk.")
LOWER_T = (
    "On the positive side, the {d} ({v}) lowered the risk.", "The {d} of {v} helped the application.",
    "In the applicant's favor, the {d} ({v}) reduced the estimated risk.",
    "The {d}, at {v}, worked in the applicant's favor.", "The {d} ({v}) was a strength and lowered the risk.",
    "The {d} of {v} offset some of the risk.", "The {d} ({v}) lowered the estimated probability of default.",
    "The applicant's {d} ({v}) counted in their favor.", "The {d}, which is {v}, helped reduce the risk.",
    "Factors that lowered the risk include the {d} ({v}).", "However, the {d} ({v}) lowered it.",
    "The {d} ({v}) improved the chances of approval.", "A {d} of {v} reduced the estimated risk.",
)
PD_AGREE = (
    "The estimated probability of default is {pd}%, which is {band}.",
    "The model puts the probability of default at {pd}%, which is {word}.",
    "The predicted probability of default is about {pdr}%, in the {word} band.",
    "With an estimated probability of default of {pd}%, the application sits in the {word} risk band.",
    "The probability of default is {pd}% ({band}).",
    "The estimated chance of default is {pd} percent, which the model rates as {word}.",
    "The estimated probability of default is {pd}%, which falls in the {word} band.",
    "Probability of default: {pd}% ({word}).", "The model estimates a {pd}% probability of default ({band}).",
)
PD_DISAGREE = (
    "The estimated probability of default is {pd}%; the model classes the application as {cls} risk.",
    "The probability of default is estimated at {pd}%, and the model rates the application as {cls} risk.",
    "The model estimates the probability of default at {pd}% and classes the application as {cls} risk.",
)
CLOSING = ("This is the model's assessment for the loan officer; the final decision rests with the lender.",
           "The final decision rests with the loan officer.", "A loan officer reviews the final decision.", "", "")


def value(f: FeatureFact, rng: random.Random) -> str:
    """The fact's value as a careful writer might put it (display, decimals, years, words)."""
    x = f.value
    if f.kind in ("binary", "categorical") or not isinstance(x, int | float):
        return f.display
    r = rng.random()
    if f.unit == "ratio" and r < 0.3 and x < 1:
        return f"{x:.2f}"
    if f.unit == "ratio" and r < 0.5:
        return f"{x * 100:.0f} percent"
    if f.unit == "months" and x >= 24 and x % 12 == 0 and r < 0.5:
        return f"{x / 12:g} years"
    if f.unit == "count" and x == int(x) and x <= 20 and r < 0.5:
        return SMALL[int(x)]
    return f.display


def _sentence(t: str, f: FeatureFact, rng: random.Random, reason: str = "") -> str:
    v = value(f, rng)
    if f.kind in ("binary", "categorical") and "{v})" not in t and "({d}: {v})" not in t:
        t = "The {d} ({v}) raised the estimated risk." if f.contribution > 0 else "The {d} ({v}) lowered the risk."
    return t.format(d=f.description, D=f.description[0].upper() + f.description[1:], v=v, r=reason.lower(),
                    R=reason)


def true_explanation(r: DecisionRecord, rng: random.Random) -> str:
    out = [rng.choice(REC_TRUE[r.recommendation])]
    word = r.pd_band.split(" (")[0]
    if r.band_agrees:
        out.append(rng.choice(PD_AGREE).format(pd=r.pd_percent, pdr=round(r.pd * 100), band=r.pd_band, word=word))
    else:
        out.append(rng.choice(PD_DISAGREE).format(pd=r.pd_percent, cls=r.risk_words.split()[0]))
    first = True
    for reason in r.reasons[:3]:
        for n in reason.features[:2]:
            f = r.facts[n]
            if f.contribution <= 0:
                continue
            if first and rng.random() < 0.4:
                out.append(_sentence(rng.choice(RAISE_REASON_T), f, rng, reason.text))
            else:
                out.append(_sentence(rng.choice(RAISE_T), f, rng))
            first = False
    for f in r.helping()[:rng.choice((1, 2))]:
        out.append(_sentence(rng.choice(LOWER_T), f, rng))
    out.append(rng.choice(CLOSING))
    return "\n".join(s for s in out if s)
