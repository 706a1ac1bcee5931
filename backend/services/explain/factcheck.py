"""Fact-check of a generated explanation against its :class:`DecisionRecord`, sentence by sentence.

Rules (each failure names the sentence and its kind, one of ``KINDS``):

* **Features** are recognised by catalog name, description, derived short forms of the
  description ("number of X in the last 12 months" → "X") and common paraphrases
  (``PARAPHRASES``); longest match wins. A feature named must be in the record (a principal
  reason's feature or one of the largest attributions); a broad word ("income", "inquiries")
  passes if any feature it covers is in the record. A Regulation B reason text must be one of the
  record's reasons (or the reason of one of its features).
* **Numbers** (digits, ``$``, ``,`` separators, ``%``, ``k``/``million``) must match, in the same
  sentence, a value of a feature the sentence names (any record fact if it names none), the
  model's output (PD, confidence), a PD band bound, or a constant of a named description ("in the
  last 12 months"). Stated rounding: a number written with *d* decimals matches a value that
  rounds to it at *d* decimals, or lies within 0.5 % (relative) of it. Ratios may be written as
  ratios or percentages (0.48 or 48 %), months also as years (18 months or 1.5 years).
* **Directions** ("raised/increased the risk", "hurt", "worked against" vs "lowered/reduced the
  risk", "helped", "in your favour"; negation flips; "reduced your chances of approval" raises
  risk) bind to the nearest feature or reason of the same clause and must match the sign of its
  attribution.
* **Protected attributes and proxies** (sex, gender, age, race, ethnicity, religion, national
  origin, marital status, disability, zip code, ...) may not be mentioned (feature descriptions
  such as "age of the collateral" are masked before this check).
* **Promises** of approval ("you will be approved", "guaranteed", "pre-approved", ...) are refused.
* A stated **recommendation** ("recommendation: approve") must be the record's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from backend.model.reason_codes import REASONS
from backend.services.explain.record import LOWERS, PD_BANDS, RAISES, DecisionRecord, humanise
from backend.training.features import FEATURES, FEATURES_BY_NAME

UNKNOWN_FEATURE = "unknown_feature"
UNKNOWN_REASON = "unknown_reason"
WRONG_NUMBER = "wrong_number"
WRONG_DIRECTION = "wrong_direction"
PROTECTED_ATTRIBUTE = "protected_attribute"
PROMISE = "promise"
WRONG_RECOMMENDATION = "wrong_recommendation"
EMPTY = "empty"
KINDS = (UNKNOWN_FEATURE, UNKNOWN_REASON, WRONG_NUMBER, WRONG_DIRECTION, PROTECTED_ATTRIBUTE, PROMISE,
         WRONG_RECOMMENDATION, EMPTY)
RELATIVE_TOLERANCE = 0.005

#: Hand-written paraphrases; an alias shared by several features covers all of them.
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "debt_to_income": ("dti", "debt to income", "debt ratio", "debt", "debts", "income"),
    "housing_to_income": ("housing costs", "housing cost", "income"),
    "loan_to_income": ("income",),
    "credit_score": ("credit score", "fico score", "bureau score"),
    "revolving_utilization": ("credit utilization", "utilization", "credit card utilization", "card utilization",
                              "revolving credit usage"),
    "max_card_utilization": ("utilization", "card utilization"),
    "annual_income": ("income", "annual income", "gross income", "yearly income", "salary"),
    "other_income": ("income", "other income"),
    "monthly_debt_payments": ("debt payments", "monthly debt payments", "other debt payments", "debts"),
    "total_debt_balance": ("debt", "total debt", "debt balance", "debts"),
    "num_inquiries_6m": ("inquiries", "credit inquiries", "recent inquiries", "recent credit inquiries"),
    "num_inquiries_12m": ("inquiries", "credit inquiries", "recent inquiries", "recent credit inquiries"),
    "num_delinquencies_2y": ("delinquencies", "recent delinquencies", "late payments"),
    "num_30dpd_12m": ("late payments", "delinquencies", "payments 30 days late", "30 day late payments"),
    "num_60dpd_24m": ("late payments", "delinquencies", "payments 60 days late", "60 day late payments"),
    "num_90dpd_ever": ("late payments", "delinquencies", "payments 90 days late", "90 day late payments"),
    "credit_history_months": ("credit history", "credit history length", "length of credit history", "credit age"),
    "avg_account_age_months": ("credit history", "account age", "average account age", "age of your accounts",
                               "age of accounts", "age of your credit accounts", "credit age"),
    "collateral_age_years": ("collateral age", "age of the vehicle", "vehicle age", "age of the collateral"),
    "months_employed": ("employment", "time at your job", "job tenure", "time with your employer",
                        "time at current job", "employment length", "length of employment"),
    "loan_amount": ("loan amount", "amount requested", "requested amount", "loan size"),
    "loan_term_months": ("loan term", "term of the loan"),
    "num_overdrafts_12m": ("overdrafts", "recent overdrafts"),
    "savings_balance": ("savings", "savings balance"),
    "avg_monthly_balance": ("checking balance", "account balance", "average balance"),
    "months_as_customer": ("banking relationship", "relationship with us", "time as a customer"),
    "residual_income_monthly": ("residual income", "income left over", "leftover income", "income"),
    "payment_to_income": ("payment to income", "payment to income ratio", "income"),
    "loan_to_value": ("ltv", "loan to value"),
    "num_collections": ("collections", "collection accounts"),
    "num_currently_past_due": ("past due accounts",),
}
_DROP = (r"^number of ", r"^has an? ", r"^has ", r" in the last \d+ (?:months|years)$", r" with us$",
         r" on file$", r" \(.*\)$")


def _norm(text: str) -> str:
    text = text.lower().replace("’", "'").replace("_", " ").replace("-", " ").replace("–", " ").replace("—", " ")
    return text.replace("utilisation", "utilization").replace("favour", "favor").replace("behaviour", "behavior")


def _derived(description: str) -> set[str]:
    out = {description}
    for _ in range(3):
        for d in list(out):
            for pat in _DROP:
                short = re.sub(pat, "", d)
                if short != d and len(short) > 3:
                    out.add(short)
    return out


def _alias_table() -> list[tuple[re.Pattern[str], frozenset[str], str | None]]:
    features: dict[str, set[str]] = {}
    for f in FEATURES:
        cats = [humanise(c) for c in f.categories or ()]
        for alias in {f.name, *_derived(f.description), *PARAPHRASES.get(f.name, ()), *cats}:
            features.setdefault(_norm(alias), set()).add(f.name)
    table: list[tuple[str, frozenset[str], str | None]]
    table = [(_norm(text), frozenset(), code) for code, text in REASONS.items() if code != "other"]
    table += [(alias, frozenset(names), None) for alias, names in features.items()]
    table.sort(key=lambda t: -len(t[0]))  # stable: a reason text wins over an equal feature alias
    return [(re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, a.split())) + r"(?:e?s)?(?!\w)"), names, code)
            for a, names, code in table]


_ALIASES = _alias_table()
_W = r"(?:[\w']+\s+){0,3}?"
_RISK = r"(?:risk|probability|likelihood|odds|pd\b|default)"
_APPROVAL = r"(?:chances?|approval|likelihood of approval|odds of approval)"
_UP = r"(?:rais|increas|push|driv|elevat|boost)\w*"
_DOWN = r"(?:lower|reduc|decreas|cut|mitigat|offset)\w*"
_CUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"\b{_DOWN}\s+(?:up\s+|down\s+)?{_W}{_APPROVAL}"), RAISES),
    (re.compile(rf"\b{_UP}\s+(?:up\s+)?{_W}{_APPROVAL}"), LOWERS),
    (re.compile(rf"\b{_UP}\s+(?:up\s+)?{_W}{_RISK}"), RAISES),
    (re.compile(rf"\b{_DOWN}\s+(?:down\s+)?{_W}{_RISK}"), LOWERS),
    (re.compile(rf"\b(?:add\w*|contribut\w*)\s+to\s+{_W}{_RISK}"), RAISES),
    (re.compile(rf"\b(?:higher|greater|more|elevated)\s+{_W}{_RISK}"), RAISES),
    (re.compile(rf"\b(?:lower|less|reduced|smaller)\s+{_W}{_RISK}"), LOWERS),
    (re.compile(r"\b(?:hurt|hurts|harmed|harms|weigh\w*\s+against|count\w*\s+against|work\w*\s+against|"
                r"against\s+(?:you|the applicant|the application|your application)|negatively)\b"), RAISES),
    (re.compile(r"\b(?:help\w*|in\s+(?:your|the applicant's|the applicant s|their|its)\s+favor|"
                r"work\w*\s+(?:for|in favor)|count\w*\s+in\s+favor|positively|offsets?|mitigat\w*|"
                r"strength\w*|improv\w*)\b"), LOWERS),
)
_NEGATION = re.compile(r"\b(?:not|never|n't|didn't|did not|does not|doesn't)\s+(?:\w+\s+)?$")
_CLAUSE = re.compile(r";|:|,\s*and\b|,\s*while\b|\bbut\b|\bwhile\b|\bwhereas\b|\bhowever\b|\balthough\b|"
                     r"\bthough\b|\bon the other hand\b")
_NUMBER = re.compile(r"(?<![\w.])\$?\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(%|percent|k\b|thousand|million)?")
_PROTECTED = re.compile(
    r"\b(?:sex|sexes|sexual orientation|gender\w*|male|female|males|females|men|women|man|woman|age|aged|ages|"
    r"years old|elderly|youth|birth|born|date of birth|race|races|racial|ethnic\w*|hispanic|latin[oax]|black|"
    r"white|asian|caucasian|african american|native american|religio\w*|church|mosque|synagogue|christian|"
    r"muslim|jewish|national origin|nationality|citizenship|citizen|immigra\w*|foreign born|marital|married|"
    r"unmarried|single|divorced|widowed|spouse|husband|wife|pregnan\w*|disabilit\w*|disabled|zip|zip codes?|"
    r"zipcode|postal code|postcode|neighborhood|neighbourhood|public assistance|welfare|familial status|"
    r"dependents|children|native language|english proficiency)\b")
_PROMISE = re.compile(
    r"\b(?:will|shall|going to|is sure to|is certain to)\s+(?:\w+\s+){0,2}?(?:be\s+)?(?:approved|accepted|funded|"
    r"qualif\w*)|(?<!not a )(?<!no )(?<!not )\bguarantee\w*|\bpre\s?approved|\bpreapproved|\bpre\s?qualified|"
    r"\b(?:certain(?:ly)?|sure|assured|definitely)\b[^.]{0,30}\b(?:approv\w*|qualif\w*)|"
    r"\b(?:will|'ll)\s+(?:get|receive|obtain)\s+(?:the|this|a|your)\s+(?:loan|credit)|"
    r"\b(?:we|the bank|the lender)\s+will\s+approve")
_RECOMMEND = re.compile(r"\brecommend\w*\W+(?:\w+\W+){0,5}?(approv\w*|den\w*|declin\w*|manual review|refer\w*)")
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.M)


@dataclass(frozen=True)
class Failure:
    claim: str
    kind: str
    detail: str


@dataclass(frozen=True)
class FactCheckResult:
    ok: bool
    failures: list[Failure] = field(default_factory=list)

    def summary(self) -> str:
        return "passed" if self.ok else "; ".join(f"{f.kind}: {f.detail} [{f.claim}]" for f in self.failures)


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    names: frozenset[str]
    code: str | None
    text: str


def sentences(text: str) -> list[str]:
    """Split on line breaks and sentence ends (list markers removed)."""
    out: list[str] = []
    for line in _LIST_MARK.sub("", text).splitlines():
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9$\"'(])", line) if s.strip()]
    return out


def _mentions(s: str) -> list[_Mention]:
    taken: list[_Mention] = []
    for pattern, names, code in _ALIASES:
        for m in pattern.finditer(s):
            if all(m.end() <= t.start or m.start() >= t.end for t in taken):
                taken.append(_Mention(m.start(), m.end(), names, code, m.group(0)))
    return sorted(taken, key=lambda t: t.start)


def _mask(s: str, mentions: list[_Mention]) -> str:
    for m in mentions:
        s = s[:m.start] + " " * (m.end - m.start) + s[m.end:]
    return s


def _signs(m: _Mention, record: DecisionRecord) -> set[str]:
    if m.code is not None:
        signs = {RAISES} if m.code in record.reason_codes else set()
        return signs | {f.direction for f in record.facts.values() if f.reason_code == m.code}
    return {record.facts[n].direction for n in m.names if n in record.facts}


def _number_candidates(record: DecisionRecord, names: set[str]) -> list[float]:
    vals = [record.pd * 100, record.pd, record.pd_percent, record.confidence * 100, record.confidence]
    vals += [b * 100 for b, _ in PD_BANDS[:-1]]
    for name in names:
        fact = record.facts[name]
        vals += [float(x) for x in re.findall(r"\d+(?:\.\d+)?", fact.description)]
        if fact.value is None or isinstance(fact.value, str):
            continue
        v = abs(float(fact.value))
        vals += [v]
        if fact.unit == "ratio":
            vals.append(v * 100)
        elif fact.unit == "%":
            vals.append(v / 100)
        elif fact.unit == "months":
            vals.append(v / 12)
    for r in record.reasons:
        vals += [float(x) for x in re.findall(r"\d+", r.text)]
    return vals


def _matches(x: float, decimals: int, candidates: list[float]) -> bool:
    return any(abs(x - c) <= max(0.5 * 10 ** -decimals, RELATIVE_TOLERANCE * abs(c)) + 1e-9 for c in candidates)


def _check_sentence(raw: str, record: DecisionRecord) -> list[Failure]:
    s = _norm(raw)
    fails: list[Failure] = []
    mentions = _mentions(s)
    masked = _mask(s, mentions)
    for m in mentions:
        if m.code is not None and m.code not in record.reason_codes and not _signs(m, record):
            fails.append(Failure(raw, UNKNOWN_REASON, f"reason {REASONS[m.code]!r} is not a reason of this decision"))
        elif m.code is None and not (m.names & record.facts.keys()):
            fails.append(Failure(raw, UNKNOWN_FEATURE, f"{m.text!r} is not among this decision's factors"))
    p = _PROTECTED.search(masked)
    if p:
        fails.append(Failure(raw, PROTECTED_ATTRIBUTE, f"mentions {p.group(0)!r}"))
    pr = _PROMISE.search(s)
    if pr:
        fails.append(Failure(raw, PROMISE, f"promise of an outcome: {pr.group(0)!r}"))
    rec = _RECOMMEND.search(s)
    if rec:
        said = {"appr": "approve", "deni": "deny", "deny": "deny", "decl": "deny", "manu": "manual_review",
                "refe": "manual_review"}.get(rec.group(1)[:4])
        if said and said != record.recommendation:
            fails.append(Failure(raw, WRONG_RECOMMENDATION, f"says {said}, the record says {record.recommendation}"))
    named = {n for m in mentions if m.code is None for n in m.names if n in record.facts}
    named |= {n for m in mentions if m.code is not None for n, f in record.facts.items() if f.reason_code == m.code}
    candidates = _number_candidates(record, named or set(record.facts))
    for n in _NUMBER.finditer(masked):
        x = float(n.group(1).replace(",", "") + (n.group(2) or ""))
        scale = {"k": 1e3, "thousand": 1e3, "million": 1e6}.get(n.group(3) or "", 1.0)
        decimals = len(n.group(2) or ".") - 1
        if not _matches(x * scale, decimals, candidates) and not _matches(x, decimals, candidates):
            fails.append(Failure(raw, WRONG_NUMBER, f"{n.group(0).strip()!r} matches no value of the record"))
    fails += _check_directions(raw, masked, mentions, record)
    return fails


def _check_directions(raw: str, s: str, mentions: list[_Mention], record: DecisionRecord) -> list[Failure]:
    fails: list[Failure] = []
    bounds = [0, *[m.end() for m in _CLAUSE.finditer(s)], len(s)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        cues: list[tuple[int, str]] = []
        for pattern, sign in _CUES:
            for c in pattern.finditer(s, lo, hi):
                if any(c.start() <= p < c.end() for p, _ in cues):
                    continue
                if _NEGATION.search(s[max(lo, c.start() - 20):c.start()]):
                    sign = LOWERS if sign == RAISES else RAISES
                cues.append((c.start(), sign))
        ents = [m for m in mentions if lo <= m.start < hi]
        if not cues:
            continue
        for m in ents:
            pos = (m.start + m.end) / 2
            _, sign = min(cues, key=lambda c: abs(c[0] - pos))
            signs = _signs(m, record)
            if signs and sign not in signs:
                fails.append(Failure(raw, WRONG_DIRECTION, f"says {m.text!r} {sign} the risk; the model says the "
                                                          f"opposite"))
    return fails


def fact_check(text: str, record: DecisionRecord) -> FactCheckResult:
    """Check ``text`` against ``record``; ``ok`` only when no sentence fails (see the module docstring)."""
    parts = sentences(text or "")
    if not parts:
        return FactCheckResult(False, [Failure("", EMPTY, "no explanation text")])
    failures = [f for part in parts for f in _check_sentence(part, record)]
    return FactCheckResult(not failures, failures)


def is_known_feature(name: str) -> bool:
    return name in FEATURES_BY_NAME
