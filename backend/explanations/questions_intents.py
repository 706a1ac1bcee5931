"""Intent recognition for the decision Q&A: rule-based guards for refusals, a trained classifier for
the rest, and a deterministic parser for the values a what-if states.

1. **refusals by rule** (safest first): prompt injection or requests to change the decision
   (``instruction``), protected characteristics or their proxies (``protected``: the shared vocabulary
   of :mod:`backend.domain.protected_terms`, read on the look-alike-folded skeleton of the question),
   other applicants or applications (``other_applicant``), over-long questions (``too_long``);
2. **the classifier** (:mod:`qa_classifier`: TF-IDF char+word n-grams, linear SVM, trained on
   :mod:`qa_exemplars`) picks one of ``why``, ``what_if``, ``counterfactual``, ``compare``,
   ``definition``, ``out_of_scope``, ``help`` or a refusal kind the rules missed;
3. **values**: a question that states values (:func:`parse_changes`: loan amount, term, down payment,
   autopay, first payment, and any numeric non-protected feature named with a number: income, credit
   score, DTI, utilization, delinquencies …) is a ``what_if`` unless it asks for a definition or a
   comparison; a ``what_if`` without values is a ``counterfactual`` search (narrowed to the levers named).

Matching is on a normalised text (NFKC, case-folded, ``_``/``-`` as spaces, control characters removed).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from backend.domain import (
    FEATURES,
    FEATURES_BY_NAME,
    MUTABLE_FEATURES,
    PROTECTED,
    find_protected,
    skeleton,
    words_to_numbers,
)

MAX_QUESTION_CHARS = 1000

#: Spoken names of features (besides each feature's own name and description).
ALIASES: dict[str, str] = {
    "dti": "debt_to_income", "debt to income": "debt_to_income", "debt ratio": "debt_to_income",
    "utilization": "revolving_utilization", "utilisation": "revolving_utilization",
    "revolving utilization": "revolving_utilization", "credit card utilization": "revolving_utilization",
    "credit score": "credit_score", "fico": "credit_score", "bureau score": "credit_score",
    "income": "annual_income", "salary": "annual_income", "ltv": "loan_to_value",
    "loan to value": "loan_to_value", "pti": "payment_to_income", "payment to income": "payment_to_income",
    "lti": "loan_to_income", "loan to income": "loan_to_income", "term": "loan_term_months",
    "loan term": "loan_term_months", "amount": "loan_amount", "loan amount": "loan_amount",
    "loan size": "loan_amount", "borrow": "loan_amount", "borrowed": "loan_amount", "loan of": "loan_amount",
    "down payment": "down_payment", "downpayment": "down_payment",
    "autopay": "autopay_enrolled", "auto pay": "autopay_enrolled", "automatic payments": "autopay_enrolled",
    "monthly payment": "estimated_monthly_payment", "residual income": "residual_income_monthly",
    "credit history": "credit_history_months", "inquiries": "num_inquiries_6m",
    "delinquencies": "num_delinquencies_2y", "overdrafts": "num_overdrafts_12m",
    "collections": "num_collections", "bankruptcy": "has_bankruptcy", "housing ratio": "housing_to_income",
    "first payment": "days_to_first_payment", "fico score": "credit_score", "score": "credit_score",
    "delinquency": "num_delinquencies_2y", "late payments": "num_delinquencies_2y",
    "revolving debt": "revolving_balance", "card balances": "revolving_balance", "card debt": "revolving_balance",
    "monthly debts": "monthly_debt_payments", "debt payments": "monthly_debt_payments",
    "inquiry": "num_inquiries_6m", "thin file": "thin_file",
}  # fmt: skip

OTHER_APPLICANT_RX = re.compile(
    r"\b(other (?!approved\b)(?:applicants?|customers?|borrowers?|clients?|people|persons?|applications?|"
    r"loans?|files?)|another (?:applicant|customer|borrower|client|person|application|loan|file)|"
    r"(?:previous|prior|last|next|earlier|other|someone else'?s?) (?:application|applicant|customer|"
    r"borrower|client|decision|file)s?|someone else|somebody else|everyone else|"
    r"(?:applicant|application|customer|client|borrower|loan|case|file)s? ?(?:id|no|number|#)? ?#?\d+|"
    r"(?:app|appl|apl|cust|cus|id|case|ref|acct) ?#?\d{3,}|(?:before|after) this one|the one (?:before|after)|"
    r"(?:applicants?|applications?|customers?|borrowers?|files?|cases?|loans?|ones?) (?:i|we|you) (?:saw|had|did|"
    r"looked at|processed|handled|scored|approved|denied)|(?:yesterday|this morning|last week)'?s? (?:applicant|"
    r"application|customer|borrower|file|loan|case)|names?|named|who else|social security|ssn|phone number|(?:their|his|her|applicant'?s?|customer'?s?) email|list (?:all|every|the) "
    r"(?:applicants?|applications?|customers?|loans?))\b")
_PERSONAL_DATA_RX = re.compile(r"\b(social security (?:number|no|#)|ssn|phone number|email address|date of birth)\b")
_IDIOMS = re.compile(r"(?i)\b(?:in )?plain english\b")  # a way of asking, not a language
_NAME_POSSESSIVE = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+'s\b|\b(?:Mr|Mrs|Ms|Dr)\.? [A-Z][a-z]+")
INJECTION_RX = re.compile(
    r"(ignore|disregard|forget|override|bypass) (all |any |the |your |my |these |those )*(previous |prior |"
    r"above |earlier |preceding |system |safety )*(instructions?|prompts?|rules|guidelines|directions|"
    r"policies|policy|constraints|messages?)|you are now|you're now|act as|pretend (to be|you are|you're)|"
    r"role ?play|jailbreak|developer mode|\bdan\b|do anything now|system prompt|your (instructions|prompt|"
    r"rules)|initial prompt|repeat (the|everything|all) (text |words )?(above|before)|print (your|the) "
    r"(prompt|instructions)|new instructions|\binst\b|im start|<\|?|\|>|<script|```|### ?instruction|"
    r"\bsudo\b|admin mode|(?<!to )(?<!would )(?<!could )(?<!can )(?<!we )(?<!it )\b(approve|accept|fund) "
    r"(this|the|my|their|his|her) (loan|application|applicant|request)|(i need|i want|you must|you should|"
    r"you will|you have to|you need to) (you to )?(approve|accept|deny|reject|change|mark|set|override)|"
    r"(change|set|mark|flip|switch|update|make) (the |this |its |it )?(decision|recommendation|outcome|"
    r"result|pd|score|status|risk class)? ?(to|as|=) ?(approved?|accept(ed)?|low risk|0|zero)|"
    r"override (the|this) (decision|recommendation)|mark (it|this) (as )?approved")

_NUMBER = r"\$?\s?(\d[\d,]*(?:\.\d+)?)\s?(k|thousand)?"
_AMOUNT_RX = re.compile(r"(?:loan amount|amount|borrow(?:ed|ing|s)?|loan of|loan for|asked for|requested|"
                        r"principal|loan)\D{0,25}?" + _NUMBER + r"(?![\d,.])(?!\s?(?:months?|mo|years?|yrs?|%|percent|less|more|fewer))|"
                        + _NUMBER.replace("(", "(?P<a>", 1).replace("(k|", "(?P<s>k|", 1) + r" (?:loan|amount)\b")
_TERM_RX = re.compile(r"(\d{1,3})\s?(months?|mo|years?|yrs?)\b")
_DOWN_RX = re.compile(_NUMBER + r"\s?(%|percent)?\s?(?:down|as a down|as down|deposit)|down ?payment\D{0,25}?"
                      + _NUMBER + r"\s?(%|percent)?")
_AUTOPAY_RX = re.compile(r"(enrol+(?:ed|s)?|sign(?:ed)? up|signs up|join(?:ed)?|used?|with|turn(?:ed)? on|"
                         r"set up) (in |for |to |up for )?(auto ?pay|automatic payments?)")
_FIRST_PAY_RX = re.compile(r"(\d{1,3})\s?days? (to|until|before) (the )?first payment|first payment (in|after) "
                           r"(\d{1,3})\s?days?")


_INCOME_RX = re.compile(r"(?:earn(?:ed|s)?|made|makes|making|income (?:of|were|was|is|at|to)|salary (?:of|were|was))"
                        r"\D{0,12}?" + _NUMBER + r"(?!\s?(?:months?|%|percent))")
_ZERO_RX = re.compile(r"\b(?:no|zero|none of the|0) (delinquenc\w*|late payments?|collections?|inquir\w*|"
                      r"bankruptcy|overdrafts?)")
_PAYDOWN_RX = re.compile(r"pa(?:y|id|ys|ying) (?:off|down)\s?" + _NUMBER + r"(?: of| in| on)? (?:their |the |his |her )?"
                         r"(?:credit )?(?:card|revolving|balance)")
_SEARCHABLE = (*MUTABLE_FEATURES, "annual_income", "revolving_balance", "revolving_utilization")
_HYPOTHETICAL_RX = re.compile(r"\b(if|were|suppose|supposing|assum\w*|pretend|say|would|try|rerun|re run)\b")
_DEFINE_RX = re.compile(r"^(what('s| is| are| does| do|s)|define|explain|meaning|how is)\b|\bmean\b|stands? for")
#: Kinds of feature a what-if may set from a number in the question (numeric, integer; never protected).
_NUMERIC = ("numeric", "integer")
PUBLIC_INTENTS = ("why", "what_if", "counterfactual", "compare", "definition", "refused", "out_of_scope", "help")
REFUSAL_KINDS = ("protected", "other_applicant", "instruction")


@dataclass(frozen=True)
class Intent:
    name: str  # one of PUBLIC_INTENTS
    refusal: str | None = None  # protected | other_applicant | instruction | too_long
    features: tuple[str, ...] = ()
    changes: tuple[tuple[str, float], ...] = ()
    label: str = ""  # the classifier's label ("" when a rule decided)
    margin: float = 0.0


def normalise(text: str) -> str:
    t = unicodedata.normalize("NFKC", text)
    t = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in t).casefold()
    t = re.sub(r"[_\-\u2010-\u2015]+", " ", t).replace("\u2019", "'")
    t = re.sub(r"[?!.;:,]+(\s|$)", r" \1", t)
    return re.sub(r"\s+", " ", t).strip()


def _catalog_names() -> list[tuple[str, str]]:
    pairs = [(a, f) for a, f in ALIASES.items()]
    for f in FEATURES:
        pairs.append((f.name.replace("_", " "), f.name))
        pairs.append((f.description.casefold().replace("-", " "), f.name))
    return sorted(set(pairs), key=lambda p: -len(p[0]))


_NAMES = _catalog_names()


def mentioned_features(text: str) -> tuple[str, ...]:
    """Features named in a normalised question, in reading order (longest name wins an overlap)."""
    first: dict[str, int] = {}
    taken: list[tuple[int, int]] = []
    for alias, name in _NAMES:
        for m in re.finditer(r"\b" + re.escape(alias) + r"\b", text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            first[name] = min(first.get(name, m.start()), m.start())
    return tuple(sorted(first, key=first.__getitem__))


def _number(digits: str, scale: str | None) -> float:
    v = float(digits.replace(",", ""))
    return v * 1000 if scale else v


def _feature_value(name: str, digits: str, scale: str | None, pct: str | None) -> float:
    v = _number(digits, scale)
    feat = FEATURES_BY_NAME[name]
    if feat.unit == "ratio" and (pct or v > 1.5):
        return v / 100
    return v


def parse_changes(text: str) -> tuple[tuple[str, float], ...]:
    """Values stated in a normalised question: the loan levers (amount, term, down payment, autopay,
    first payment) and any numeric, non-protected feature named next to a number ("income were
    $80,000", "credit score 700", "DTI of 30%", "no delinquencies")."""
    out = dict(_lever_changes(text))
    m = _INCOME_RX.search(text)
    if m:
        out["annual_income"] = _number(m.group(1), m.group(2))
    for m in _ZERO_RX.finditer(text):
        named = mentioned_features(m.group(1))
        if named:
            out.setdefault(named[0], 0.0)
    m = _PAYDOWN_RX.search(text)
    if m:
        out["revolving_paydown"] = _number(m.group(1), m.group(2))
        out.pop("revolving_balance", None)
        text = text[:m.start()] + " " + text[m.end():]
    for name, start, end in _mentions(text):
        rel = _relative(text, start, end)
        if rel is not None and name not in PROTECTED and FEATURES_BY_NAME[name].kind in _NUMERIC:
            out[f"{name}@{rel[0]}"] = rel[1]
            continue
        feat = FEATURES_BY_NAME[name]
        if name in out or (name == "revolving_balance" and "revolving_paydown" in out) or name in PROTECTED or feat.kind not in _NUMERIC or name in MUTABLE_FEATURES:
            continue
        after = re.match(r"\D{0,22}?" + _NUMBER + r"\s?(%|percent)?", text[end:])
        if after and not re.search(r"[a-z]{3,} (?:of|is|were|was) ", text[end:end + after.start(1)][6:]):
            out[name] = _feature_value(name, after.group(1), after.group(2), after.group(3))
            continue
        before = re.search(_NUMBER + r"\s?(%|percent)?\s?(?:of |in )?(?:their |the )?$", text[max(0, start - 20):start])
        if before:
            out[name] = _feature_value(name, before.group(1), before.group(2), before.group(3))
    return tuple(out.items())


def _relative(text: str, start: int, end: int) -> tuple[str, float] | None:
    """A change relative to the applicant's value named around a feature mention: ``("mul", 2.0)`` for
    "income doubled", ``("add", -2.0)`` for "2 fewer inquiries", ``("mul", 0.9)`` for "10% less loan"."""
    after = re.match(r"\s?(?:were |was |is |got |gets )?(doubled|halved|tripled|cut in half)", text[end:])
    before = re.search(r"(double|half|halve|triple)(?:d)? (?:the |their |his |her )?$", text[max(0, start - 20):start])
    word = (after.group(1) if after else None) or (before.group(1) if before else None)
    if word:
        return "mul", {"doubled": 2.0, "double": 2.0, "tripled": 3.0, "triple": 3.0}.get(word, 0.5)
    m = re.search(_NUMBER + r"\s?(%|percent)? (more|less|fewer|higher|lower|extra|additional) (?:of )?(?:the |their )?$",
                  text[max(0, start - 40):start]) or re.match(
        r"\s?" + _NUMBER + r"\s?(%|percent)? (more|less|fewer|higher|lower)\b", text[end:])
    if not m:
        return None
    v = _number(m.group(1), m.group(2))
    sign = -1.0 if m.group(4) in ("less", "fewer", "lower") else 1.0
    return ("mul", 1 + sign * v / 100) if m.group(3) else ("add", sign * v)


def resolve(changes: dict[str, float], features: dict[str, Any]) -> dict[str, float]:
    """Relative changes (``name@mul``, ``name@add``) made absolute from the applicant's values."""
    out: dict[str, float] = {}
    for key, v in changes.items():
        name, _, op = key.partition("@")
        base = features.get(name)
        if not op:
            out[name] = v
        elif isinstance(base, int | float) and not isinstance(base, bool):
            new = float(base) * v if op == "mul" else float(base) + v
            out[name] = max(round(new, 4), 0.0) if FEATURES_BY_NAME[name].kind != "integer" else max(round(new), 0)
    return out


def _mentions(text: str) -> list[tuple[str, int, int]]:
    """(feature, start, end) of each feature named in ``text`` (longest name wins an overlap)."""
    taken: list[tuple[str, int, int]] = []
    for alias, name in _NAMES:
        for m in re.finditer(r"\b" + re.escape(alias) + r"\b", text):
            if not any(m.start() < e and s < m.end() for _, s, e in taken):
                taken.append((name, m.start(), m.end()))
    return sorted(taken, key=lambda t: t[1])


def _lever_changes(text: str) -> tuple[tuple[str, float], ...]:
    out: dict[str, float] = {}
    work = text
    m = _DOWN_RX.search(work)
    if m:
        digits, scale, pct = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
        value = _number(digits, scale)
        out["down_payment_pct" if pct else "down_payment"] = value
        work = work[:m.start()] + " " + work[m.end():]
    m = _FIRST_PAY_RX.search(work)
    if m:
        out["days_to_first_payment"] = float(m.group(1) or m.group(5))
        work = work[:m.start()] + " " + work[m.end():]
    m = _TERM_RX.search(work)
    if m and re.search(r"term|month|year|over|longer|shorter|stretch|extend", work):
        n = float(m.group(1))
        out["loan_term_months"] = n * 12 if m.group(2).startswith(("y", "yr")) else n
        work = work[:m.start()] + " " + work[m.end():]
    m = _AMOUNT_RX.search(work)
    if m:
        out["loan_amount"] = _number(m.group(1), m.group(2)) if m.group(1) else _number(m.group("a"), m.group("s"))
    if _AUTOPAY_RX.search(text) and not re.search(r"\b(without|no|not|cancel|unenrol)", text):
        out["autopay_enrolled"] = 1.0
    return tuple(out.items())


def refusal(question: str) -> str | None:
    """The refusal kind of a question by rule, or ``None`` when no rule refuses it."""
    if len(question) > MAX_QUESTION_CHARS:
        return "too_long"
    text = normalise(question)
    if INJECTION_RX.search(text) or INJECTION_RX.search(question.casefold()):
        return "instruction"
    if _PERSONAL_DATA_RX.search(text):  # an identifier is personal data, before "social security" as income
        return "other_applicant"
    if find_protected(_IDIOMS.sub(" ", words_to_numbers(skeleton(question))), skip=("gendered_reference",)):
        return "protected"  # the shared vocabulary (backend.domain.protected_terms), look-alikes folded
    if OTHER_APPLICANT_RX.search(text) or _NAME_POSSESSIVE.search(question):
        return "other_applicant"
    return None


def classify(question: str) -> Intent:
    """The intent of one question (see the module docstring for the order)."""
    from backend.explanations.qa_classifier import ranked

    why_not = refusal(question)
    if why_not:
        return Intent("refused", refusal=why_not)
    text = normalise(question)
    ranks = ranked(text)
    label, margin = ranks[0]
    if label.startswith("refused_") and margin >= 0:
        return Intent("refused", refusal=label.removeprefix("refused_"), label=label, margin=margin)
    if label.startswith("refused_"):  # an unsure refusal without a rule behind it: the best answerable intent
        label, margin = next(r for r in ranks if not r[0].startswith("refused_"))
    feats = mentioned_features(text)
    changes = parse_changes(text)
    name = label
    if changes and (label not in ("definition", "compare") or _HYPOTHETICAL_RX.search(text)):
        name = "what_if"
    elif label == "what_if" and any(f not in _SEARCHABLE for f in feats):
        name = "what_if"  # a what-if on a feature the search does not move, without a value: ask for one
    elif label == "what_if":
        name = "counterfactual"
    elif label in ("out_of_scope", "help") and feats and _DEFINE_RX.search(text):
        name = "definition"  # a question about one of the model's features is not out of scope
    return Intent(name, features=feats, changes=changes if name == "what_if" else (), label=label, margin=margin)
