"""Intent recognition for the decision Q&A (keyword and regex rules, deterministic).

Order of the rules (the first that fires wins):

1. **refusals** — protected characteristics or their proxies (``protected``), other applicants or
   applications (``other_applicant``), prompt injection or requests to change the decision
   (``injection``), over-long questions (``too_long``);
2. ``explicit_what_if`` — a lever named with a value: "what if the loan amount were $15,000?",
   "with a 60-month term?", "$5k down", "if they enrolled in autopay";
3. ``what_if`` — "what would change the outcome?", "how could they get approved?", "what if they
   borrowed less?" (a named lever without a value narrows the search to it);
4. ``compare`` — "how does the DTI compare with approved applicants?", "percentile", "typical";
5. ``explain_feature`` — "what is revolving utilization?", "what does LTV mean?", "define DTI";
6. ``why`` — "why was this denied?", "why manual review?", "what were the main reasons?";
7. ``help`` — anything else: a message listing what can be asked.

Matching is on a normalised text (NFKC, case-folded, ``_``/``-`` as spaces, control characters
removed), so it is robust to case, spacing and common phrasings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from backend.training.features import FEATURES, MUTABLE_FEATURES

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
    "first payment": "days_to_first_payment",
}  # fmt: skip

_BENIGN_AGE = re.compile(r"\b(account|accounts|credit|collateral|vehicle|car|equipment|file|average|oldest|newest)"
                         r" age\b|\bage of (the |an |their |his |her )?(credit|accounts?|collateral|vehicle|car|"
                         r"equipment|oldest|newest|file)")
PROTECTED_RX = re.compile(
    r"\b(sex|sexes|gender|genders|male|female|man|woman|men|women|boy|girl|age|aged|ages|how old|years old|"
    r"older|younger|elderly|senior citizen|retiree age|birth ?date|date of birth|dob|born|race|races|racial|"
    r"ethnic|ethnicity|black|white|hispanic|latino|latina|latinx|asian|african|caucasian|native american|"
    r"religion|religious|christian|muslim|jewish|hindu|buddhist|church|mosque|synagogue|national origin|"
    r"nationality|citizen|citizenship|immigrant|immigration|foreigner|foreign born|accent|english speaker|"
    r"language|marital|married|marriage|unmarried|divorced|widowed|widow|spouse|husband|wife|single mother|"
    r"single father|single parent|pregnant|pregnancy|maternity|disability|disabled|handicap|handicapped|"
    r"zip|zip code|zipcode|postcode|postal code|neighborhood|neighbourhood|where (?:does|do) (?:he|she|they|"
    r"the applicant) live|home address|sexual orientation|gay|lesbian|transgender|skin|colour|color|"
    r"public assistance|welfare|food stamps|children|kids|dependents|family status|veteran)\b")
OTHER_APPLICANT_RX = re.compile(
    r"\b(other (?!approved\b)(?:applicants?|customers?|borrowers?|clients?|people|persons?|applications?|"
    r"loans?|files?)|another (?:applicant|customer|borrower|client|person|application|loan|file)|"
    r"(?:previous|prior|last|next|earlier|other|someone else'?s?) (?:application|applicant|customer|"
    r"borrower|client|decision|file)s?|someone else|somebody else|everyone else|"
    r"(?:applicant|application|customer|client|borrower|loan|case|file)s? ?(?:id|no|number|#)? ?#?\d+|"
    r"(?:app|appl|apl|cust|cus|id|case|ref|acct) ?#?\d{3,}|names?|named|who else|social security|ssn|phone number|email|list (?:all|every|the) "
    r"(?:applicants?|applications?|customers?|loans?))\b")
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

_WHAT_IF_RX = re.compile(
    r"what (would|could|will|can|might) (it take|change|flip|turn|make|help|improve|get)|change the "
    r"(outcome|decision|result)|(get|be|become|getting|being) approved|approval|counterfactual|what if|"
    r"what can (they|the applicant|he|she|we|i) do|how (can|could|would|might) (they|the applicant|he|she|"
    r"we|it)|what needs to change|smallest change|qualify|flip|would .* (be|get) approved|if (they|the "
    r"applicant|he|she) (borrowed|asked|took|chose|picked|put|paid|enrolled|signed)")
_COMPARE_RX = re.compile(r"compar|versus|\bvs\b|relative to|percentile|typical|average approved|median|"
                         r"approved (applicants?|applications?|borrowers?|customers?|loans?|book)|"
                         r"how (high|low|unusual|normal) is|above average|below average|in line with")
_DEFINE_RX = re.compile(r"^what('s| is| are| does| do|s) |what does .* mean|meaning of|define|definition|"
                        r"^explain (the )?(term|feature|metric)|^explain (?!(the |this )?(decision|outcome|"
                        r"result|denial|recommendation))|what do you mean by|how is .* (calculated|computed|"
                        r"measured|defined)")
_WHY_RX = re.compile(r"\bwhy\b|reason|denied|declined|rejected|refused|turned down|review|deny|decision|"
                     r"outcome|recommend|what (drove|caused|hurt|led)|main (factors?|drivers?)|explain|"
                     r"factors?|drivers?|how come|what went wrong|approved")

_NUMBER = r"\$?\s?(\d[\d,]*(?:\.\d+)?)\s?(k|thousand)?"
_AMOUNT_RX = re.compile(r"(?:loan amount|amount|borrow(?:ed|ing|s)?|loan of|loan for|asked for|requested|"
                        r"principal|loan)\D{0,25}?" + _NUMBER + r"(?!\s?(?:months?|mo|years?|yrs?|%|percent))")
_TERM_RX = re.compile(r"(\d{1,3})\s?(months?|mo|years?|yrs?)\b")
_DOWN_RX = re.compile(_NUMBER + r"\s?(%|percent)?\s?(?:down|as a down|as down|deposit)|down ?payment\D{0,25}?"
                      + _NUMBER + r"\s?(%|percent)?")
_AUTOPAY_RX = re.compile(r"(enrol+(?:ed|s)?|sign(?:ed)? up|signs up|join(?:ed)?|used?|with|turn(?:ed)? on|"
                         r"set up) (in |for |to |up for )?(auto ?pay|automatic payments?)")
_FIRST_PAY_RX = re.compile(r"(\d{1,3})\s?days? (to|until|before) (the )?first payment|first payment (in|after) "
                           r"(\d{1,3})\s?days?")


@dataclass(frozen=True)
class Intent:
    name: str  # refused | explicit_what_if | what_if | compare | explain_feature | why | help
    refusal: str | None = None  # protected | other_applicant | injection | too_long
    features: tuple[str, ...] = ()
    changes: tuple[tuple[str, float], ...] = ()


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


def parse_changes(text: str) -> tuple[tuple[str, float], ...]:
    """Lever values stated in a normalised question (amount, term, down payment, autopay, first payment)."""
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
        out["loan_amount"] = _number(m.group(1), m.group(2))
    if _AUTOPAY_RX.search(text) and not re.search(r"\b(without|no|not|cancel|unenrol)", text):
        out["autopay_enrolled"] = 1.0
    return tuple(out.items())


def refusal(question: str) -> str | None:
    """The refusal category of a question, or ``None`` when it may be answered."""
    if len(question) > MAX_QUESTION_CHARS:
        return "too_long"
    text = normalise(question)
    if INJECTION_RX.search(text) or INJECTION_RX.search(question.casefold()):
        return "injection"
    if PROTECTED_RX.search(_BENIGN_AGE.sub(" ", text)):
        return "protected"
    if OTHER_APPLICANT_RX.search(text) or _NAME_POSSESSIVE.search(question):
        return "other_applicant"
    return None


def classify(question: str) -> Intent:
    """The intent of one question (see the module docstring for the rules and their order)."""
    why_not = refusal(question)
    if why_not:
        return Intent("refused", refusal=why_not)
    text = normalise(question)
    feats = mentioned_features(text)
    changes = parse_changes(text)
    if changes and (_WHAT_IF_RX.search(text) or re.search(r"\b(if|with|at|instead|were|was|only)\b", text)):
        return Intent("explicit_what_if", features=feats, changes=changes)
    number = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    others = [f for f in feats if f not in MUTABLE_FEATURES]
    if number and others and re.search(r"what if|\b(were|was|had|if)\b", text):  # a what-if on a non-lever
        return Intent("explicit_what_if", features=feats, changes=((others[0], float(number.group().replace(",", ""))),))
    if _WHAT_IF_RX.search(text) and not _COMPARE_RX.search(text):
        return Intent("what_if", features=feats)
    if _COMPARE_RX.search(text):
        return Intent("compare", features=feats)
    if feats and _DEFINE_RX.search(text) and not re.search(r"\bwhy\b", text):
        return Intent("explain_feature", features=feats)
    if _WHY_RX.search(text):
        return Intent("why", features=feats)
    return Intent("help", features=feats)
