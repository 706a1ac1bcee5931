"""The fact-check's vocabulary: what a sentence may say without a record fact behind it, and the patterns
that tie the rest (features, numbers, directions, outcomes, risk levels) to the decision record.

:data:`SAFE_WORDS` is an allow-list of words that carry no claim of their own (articles, prepositions,
"applicant", "model", "estimated", ...). It holds no outcome word, no modal verb, no comparison with
anyone or anything outside the record, no adjective of quality, no direction verb (those are accounted
only when bound to a feature, see :mod:`factcheck_rules`), no number word and no protected term.
"""

from __future__ import annotations

import re

from backend.domain import FEATURES, REASONS

#: Hand-written paraphrases of catalog features; an alias shared by several features covers all of them.
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "debt_to_income": ("dti", "dti ratio", "debt to income", "debt ratio", "debt", "debts", "debt load", "income"),
    "housing_to_income": ("housing costs", "housing cost", "housing cost ratio", "income",
                          "housing costs relative to income", "housing cost relative to income"),
    "payment_to_income": ("payment to income", "payment to income ratio", "income",
                          "payment as a share of monthly income", "payment as a share of income"),
    "num_income_sources": ("income sources", "income source", "sources of income"),
    "loan_to_income": ("income", "loan to income", "loan to income ratio"),
    "credit_score": ("credit score", "fico score", "bureau score", "score"),
    "revolving_utilization": ("credit utilization", "utilization", "credit card utilization", "card utilization",
                              "revolving credit usage", "revolving utilization", "utilization ratio",
                              "utilization rate"),
    "max_card_utilization": ("utilization", "card utilization", "highest card utilization"),
    "annual_income": ("income", "annual income", "gross income", "yearly income", "salary", "gross annual income"),
    "other_income": ("income", "other income"),
    "monthly_debt_payments": ("debt payments", "monthly debt payments", "other debt payments", "debts"),
    "total_debt_balance": ("debt", "total debt", "debt balance", "debts"),
    "num_inquiries_6m": ("inquiries", "credit inquiries", "recent inquiries", "recent credit inquiries",
                         "inquiries in the last 6 months"),
    "num_inquiries_12m": ("inquiries", "credit inquiries", "recent inquiries", "recent credit inquiries",
                          "inquiries in the last 12 months"),
    "num_delinquencies_2y": ("delinquencies", "recent delinquencies", "late payments"),
    "num_30dpd_12m": ("late payments", "delinquencies", "payments 30 days late", "30 day late payments"),
    "num_60dpd_24m": ("late payments", "delinquencies", "payments 60 days late", "60 day late payments"),
    "num_90dpd_ever": ("late payments", "delinquencies", "payments 90 days late", "90 day late payments"),
    "credit_history_months": ("credit history", "credit history length", "length of credit history", "credit age"),
    "avg_account_age_months": ("credit history", "account age", "average account age", "age of your accounts",
                               "age of accounts", "age of the credit accounts", "credit age"),
    "collateral_age_years": ("collateral age", "age of the vehicle", "vehicle age", "age of the collateral"),
    "months_employed": ("employment", "time at the job", "job tenure", "time with the employer",
                        "time at current job", "employment length", "length of employment", "tenure"),
    "loan_amount": ("loan amount", "amount requested", "requested amount", "loan size"),
    "loan_term_months": ("loan term", "term of the loan", "term"),
    "num_overdrafts_12m": ("overdrafts", "recent overdrafts"),
    "savings_balance": ("savings", "savings balance"),
    "avg_monthly_balance": ("checking balance", "account balance", "average balance"),
    "months_as_customer": ("banking relationship", "relationship with us", "time as a customer",
                           "relationship with the bank", "banking relationship with us", "time as a customer with us",
                           "customer relationship", "tenure with us", "tenure with the bank"),
    "deposit_to_income_ratio": ("deposits relative to income", "deposits relative to stated income",
                                "deposits as a share of income", "deposit to income", "deposit to income ratio"),
    "avg_monthly_deposits": ("monthly deposits", "average monthly deposits", "deposits"),
    "has_bankruptcy": ("bankruptcy",),
    "residual_income_monthly": ("residual income", "income left over", "leftover income", "income"),
    "loan_to_value": ("ltv", "loan to value"),
    "num_collections": ("collections", "collection accounts"),
    "num_currently_past_due": ("past due accounts",),
}
_DROP = (r"^number of ", r"^has an? ", r"^has ", r" in the last \d+ (?:months|years)$", r" with us$",
         r" on file$", r" \(.*\)$", r"^open ", r" on the new loan$", r"^estimated ", r"(?<=^number of )open ")


def norm(text: str) -> str:
    """Spelling variants as one (the text is already a skeleton: lower case, ASCII look-alikes)."""
    text = re.sub(r"(?<=[a-z0-9])[-_](?=[a-z0-9])", " ", text).replace("_", " ")
    for a, b in (("utilisation", "utilization"), ("favour", "favor"), ("behaviour", "behavior"),
                 ("neighbour", "neighbor"), ("per cent", "percent"), ("labour", "labor")):
        text = text.replace(a, b)
    return text


def _derived(description: str) -> set[str]:
    out = {description}
    for _ in range(3):
        for d in list(out):
            for pat in _DROP:
                short = re.sub(pat, "", d)
                if short != d and len(short) > 3:
                    out.add(short)
    return out


def alias_table() -> list[tuple[re.Pattern[str], frozenset[str], str | None, tuple[str, ...]]]:
    """(pattern, feature names, reason code, words) longest first: reason texts, then feature aliases. ``words``:
    the alias's words, each of which a match holds verbatim (the pattern is those words, escaped, with blanks and
    articles between them and an optional plural after the last): a text missing one cannot match, and the
    fact-check tries the pattern only on a text holding all of them (362 patterns a sentence; most name nothing
    in it)."""
    features: dict[str, set[str]] = {}
    for f in FEATURES:
        for alias in {f.name, *_derived(f.description), *PARAPHRASES.get(f.name, ())}:
            features.setdefault(norm(alias.lower()), set()).add(f.name)
    table: list[tuple[str, frozenset[str], str | None]]
    table = [(norm(text.lower()), frozenset(), code) for code, text in REASONS.items() if code != "other"]
    table += [(alias, frozenset(names), None) for alias, names in features.items()]
    table.sort(key=lambda t: -len(t[0]))  # stable: a reason text wins over an equal feature alias
    sep = r"\s+(?:(?:the|a|an)\s+)?"  # "number of recent inquiries on the credit bureau report"
    return [(re.compile(r"(?<![\w'])" + sep.join(map(re.escape, a.split())) + r"(?:e?s)?(?!\w)"), names, code,
             tuple(a.split())) for a, names, code in table]


SAFE_WORDS = frozenset("""
a an the this that these those its it their they them there which whose
of to in on at for with by from as into within among across onto upon
and or but while whereas although though however also both each either nor yet
is was were are be been being has had have having does did do
applicant applicant's application loan request requested borrower's
model model's assessment estimate estimated estimates probability default defaulting risk band bands
factor factors reason reasons
effect effects impact contribution contributions driver drivers value values figure record records
file's current currently overall together further additionally addition moreover meanwhile still
just exactly approximately about around roughly nearly some
ratio share rate amount balance score history level points point
percent dollars usd pd
shows showed show indicates indicated states stated notes noted lists listed reports reported recorded
measured stands stood sits sat came comes is
side note worth noting rounded rounding another first second third one
predicted calculated
rates rated rate classes classed classified considers considered places placed placing puts falls fall sits
include includes including decision recommendation based other
chance chances likelihood odds
here how what summary explanation overview assessed evaluated below follows following
somewhat slightly modestly marginally mildly number averaging
""".split())
#: Whole phrases that are safe as written (disclaimers, the template's closing, list headings).
SAFE_PHRASES = tuple(re.compile(p) for p in (
    r"\b(?:the model's|the model|its|model) confidence(?: in (?:this|the|its) (?:estimate|assessment|prediction))?"
    r"(?= (?:is|was|of|stands at|at) \d)",
    r"this is the model's assessment for the loan officer; the final decision rests with the lender",
    r"the final decision rests with (?:the lender|a loan officer|the loan officer)(?:,? not (?:with )?the model)?",
    r"(?:a|the) loan officer (?:reviews|makes|takes) the final decision",
    r"(?:this|it) is not a guarantee of (?:approval|any outcome|an outcome)", r"please note(?: that)?,?",
    r"no factor raised the estimated risk enough to be a principal reason",
    r"the main reasons:?", r"in summary,?", r"on the (?:positive|other) side,?", r"on the other hand,?",
    r"(?:but )?not enough to (?:change|move it out of|offset)", r"(?:the )?model's",
    r"\bto a (?:small|modest|lesser) (?:degree|extent)\b",
    r"\ba little\b", r"\bin this case\b", r"\bin (?:this|the) (?:model's )?(?:estimate|assessment)\b",
))
#: Safe once the features are found ("estimated monthly payment on the new loan" is a feature's description).
LATE_SAFE_PHRASES = (re.compile(r"\b(?:on|of|for) the (?:new|proposed|requested) loan\b"),)
PD_SUBJECT = re.compile(r"\b(?:(?:estimated |predicted |calculated |overall )?(?:probability|chance|likelihood|risk|odds)"
                        r" of (?:a )?default(?:ing)?|default (?:probability|risk|rate)|\bpd\b|probability)")
CONFIDENCE_SUBJECT = re.compile(r"\b(?:confidence|model confidence|agreement)\b")
LEVELS = {"very low": "very low", "low": "low", "moderate": "moderate", "medium": "moderate", "high": "high",
          "elevated": "high", "very high": "very high", "minimal": "very low"}
_LEVEL = r"(very low|very high|low|moderate|medium|high|elevated|minimal)"
_RISKWORD = r"(?:risk|band|probability|pd|default|category|tier|rating|grade|profile|range)"
LEVEL_PATTERNS = (
    re.compile(rf"\(\s*{_LEVEL}\b"),
    re.compile(rf"\b{_LEVEL}\s*(?=\(\s*(?:under|below|less than|\d))"),
    re.compile(rf"\b{_LEVEL}[ -](?:(?:estimated|predicted|credit|default|overall)\s+){{0,2}}{_RISKWORD}\b"),
    re.compile(rf"\b(?:{_RISKWORD}|which|this|it)\b(?:\s+[a-z']+){{0,4}}?\s+(?:is|was|as|at|in the|of|sits in)"
               rf"(?:\s+(?:a|an|the|considered|rated|classed|classified))?\s+{_LEVEL}\b"),
)
#: A band stated by its bounds: "(5% to 15%)", "between 5% and 15%", "under 5%", "30% or more".
BAND_RANGE = re.compile(
    r"\(?\b(?:between\s+)?(\d+(?:\.\d+)?)\s*%?\s*(?:to|and|-)\s*(\d+(?:\.\d+)?)\s*%\)?|"
    r"\(?\b(?:under|below|less than)\s+(\d+(?:\.\d+)?)\s*%\)?|\(?\b(\d+(?:\.\d+)?)\s*%\s*or\s+(?:more|higher|above)\)?|"
    r"\(?\b(?:over|above|at least)\s+(\d+(?:\.\d+)?)\s*%\)?")
NUMBER = re.compile(r"(?<![\w.])(-\s?)?(\$\s?)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(%|percent|k\b|dollars\b|usd\b|"
                    r"months?\b|years?\b|days?\b|points?\b)?")
_W = r"(?:[\w']+\s+){0,3}?"
_RISK = r"(?:risk|probability|likelihood|odds|pd\b|default)"
_APPROVAL = r"(?:chances?|approval|likelihood of approval|odds of approval|prospects)"
_UP = r"(?:rais|increas|push|driv|elevat|boost|add)\w*"
_DOWN = r"(?:lower|reduc|decreas|cut|mitigat|offset|eas|soften)\w*"
_TOWARD = r"(?:(?:count|point|push|lean|tilt|contribut)\w*\s+(?:towards?|to)\s+(?:an?\s+|the\s+)?)?"
RAISES, LOWERS = "raises", "lowers"
CUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"\b{_DOWN}\s+(?:up\s+|down\s+)?{_W}{_APPROVAL}"), RAISES),
    (re.compile(rf"\b{_UP}\s+(?:up\s+)?{_W}{_APPROVAL}"), LOWERS),
    (re.compile(rf"\b{_UP}\s+(?:up\s+)?{_W}{_RISK}(?:\s+up)?"), RAISES),
    (re.compile(rf"\b{_DOWN}\s+(?:down\s+)?{_W}{_RISK}(?:\s+down)?"), LOWERS),
    (re.compile(rf"\b(?:add\w*|contribut\w*)\s+to\s+{_W}{_RISK}"), RAISES),
    (re.compile(rf"\b{_UP}\s+(?:it|them)\b"), RAISES),
    (re.compile(rf"\b{_DOWN}\s+(?:it|them)\b"), LOWERS),
    (re.compile(rf"\b{_TOWARD}(?:higher|greater|more|elevated|increased)\s+{_W}{_RISK}"), RAISES),
    (re.compile(rf"\b{_TOWARD}(?:lower|less|reduced|smaller|decreased)\s+{_W}{_RISK}"), LOWERS),
    (re.compile(r"\b(?:hurt|hurts|harmed|harms|weigh\w*\s+(?:on|against)|count\w*\s+against|work\w*\s+against|"
                r"against\s+(?:the applicant|the application|approval)|negatively|a negative factor|a concern|"
                r"(?:a|the) (?:main |key |primary |principal |biggest |largest )?(?:weakness|drawback|red flag))\b"),
     RAISES),
    (re.compile(r"\b(?:help\w*|(?:(?:work|count)\w*\s+)?in\s+(?:the applicant's|their|its)\s+favor|work\w*\s+(?:for|in favor)|"
                r"count\w*\s+in\s+favor|positively|a positive factor|offsets?|mitigat\w*|improv\w*|supported"
                r"\s+the applicant|(?:a|the) (?:main |key |primary |biggest |largest )?strength)\b"), LOWERS),
)
NEGATION = re.compile(r"\b(?:not|never|n't|didn't|did not|does not|doesn't)\s+(?:\w+\s+)?$")
CLAUSE = re.compile(r";|:|,\s*and\b|,\s*while\b|\bbut\b|\bwhile\b|\bwhereas\b|\bhowever\b|\balthough\b|"
                    r"\bthough\b|\bon the other hand\b|\bmeanwhile\b")
OUTCOMES = {"approv": "approve", "accept": "approve", "fund": "approve", "grant": "approve", "den": "deny",
            "decl": "deny", "reject": "deny", "turned down": "deny", "refer": "manual_review",
            "manual review": "manual_review", "manual": "manual_review", "review": "manual_review"}
OUTCOME = (r"(refer(?:red)? (?:for|to) (?:a )?manual review|approv\w*|accept\w*|fund(?:ed|ing|s)?|grant\w*|den(?:ying|ial|ied|ies|y)|declin\w*|reject\w*|"
           r"turned down|referr?\w*|manual review|review)")
_FRAME_REC = rf"\b(?:recommend\w*|suggest\w*|advis\w*|propos\w*)\b(?:\s+[a-z']+){{0,4}}?\s+(?:is\s+|to\s+|for\s+|a\s+|an\s+)?{OUTCOME}"
_FRAME_CAUSE = (rf"\b(?:reasons?|factors?|drivers?|causes?|basis|grounds|contributors?)\s+(?:[a-z']+\s+){{0,2}}?"
                rf"(?:for|of|behind|in|to)\s+(?:the\s+|this\s+|a\s+)?(?:model's\s+)?(?:recommendation\s+(?:of|to)\s+)?"
                rf"{OUTCOME}|\b(?:led|leads|lead|contributed|contributes|pointed|points|drove|drives|driving|resulted|"
                rf"results|supported|supports|underpins|underpinned|justif\w*)\s+(?:[a-z']+\s+){{0,2}}?"
                rf"(?:to\s+|toward\s+|towards\s+|in\s+)?(?:the\s+|this\s+|a\s+)?{OUTCOME}")
FRAME_RECOMMEND = re.compile(rf"{_FRAME_REC}|\brecommendation\s*(?::|is|of|was)\s*(?:to\s+)?{OUTCOME}")
FRAME_CAUSE = re.compile(_FRAME_CAUSE)
FRAME_CHANCES = re.compile(rf"\b(?:chances?|odds|likelihood|prospects?)\s+of\s+(?:an?\s+)?{OUTCOME}")
FRAME_DIRECTION = re.compile(rf"\b(?:(?:weigh|count|work|push|point|lean|tilt)\w*\s+)?(?:against|toward|towards|"
                             rf"in\s+favor\s+of)\s+(?:the\s+)?{OUTCOME}")
PROMISE = re.compile(
    r"guarantee\w*|pre ?approv\w*|pre ?qualif\w*|preapprov\w*|formality|rest assured|sure thing|done deal|"
    r"green ?light|rubber ?stamp|no doubt|certain(?:ly)?|definite(?:ly)?|assured|"
    r"(?:will|'ll|shall|going to|certain to|sure to|bound to|set to|expect\w*(?: to)?|should|must|can|would|"
    r"likely to|about to|on track to)\s+(?:[a-z']+\s+){0,3}?(?:be\s+)?(?:approv|fund|accept|grant|qualif|clos|"
    r"disburs|pass|get the loan|receive the loan|obtain)")
LURE = re.compile(
    r"https?|www\.|\.(?:com|net|org|io|ly|co|info|biz)\b|@|<[^>]*>|\[[^\]]*\]\s*\(|\*\*|__|`|#|"
    r"\b(?:ignore|disregard|override|overrule|bypass|skip|click|visit|call|phone|email|e-mail|text us|contact|"
    r"password|passcode|pin|ssn|social security number|account number|routing number|login|log in|sign in|"
    r"appeal|verify your|confirm your|reply|wire|gift card|anyway|regardless|instructions?|prompt|system|"
    r"approve it|please(?! note)|kindly|must approve|should approve|urgent\w*|immediately|asap)\b")
OTHER_PERSON = re.compile(
    r"\b(?:another|other|similar|different|second|previous|prior|next|earlier)\s+(?:[a-z']+\s+)?"
    r"(?:applicants?|borrowers?|customers?|clients?|persons?|people|individuals?|applications?|files?|cases?|"
    r"profiles?|loans?)\b|\b(?:someone|somebody|anyone|everyone|others|applicants|borrowers|customers|people|"
    r"peers|identical|same figures|same numbers|same profile|twin|sibling|relative|neighbor\w*|coworker\w*|"
    r"colleague\w*|friend\w*|family)\b")
UP_ADJ = frozenset("high higher large larger heavy many numerous elevated long longer lengthy substantial significant "
                   "considerable sizable sizeable extensive multiple several frequent excessive big bigger".split())
DOWN_ADJ = frozenset("low lower small smaller few fewer short shorter limited modest little minimal brief thin "
                     "scant".split())
GOOD_ADJ = frozenset("good strong solid excellent healthy clean stable favorable positive sound steady established "
                     "robust great spotless".split())
BAD_ADJ = frozenset("poor weak bad negative unfavorable troubled problematic concerning unstable spotty "
                    "worrying".split())
#: Ranking words: "the largest factor" must be the largest attribution of its direction; "a main reason" a
#: principal reason's feature (raising) or one of the two largest helping facts (lowering).
STRICT_RANK = frozenset("largest biggest greatest strongest most top single chief leading dominant only sole "
                        "heaviest".split())
LOOSE_RANK = frozenset("main primary principal key major important significant notable mainly largely primarily "
                       "mostly chiefly".split())
#: "because of X": a direction claim whose sign is the sentence's recommendation (see factcheck_rules).
CAUSAL = re.compile(r"\b(?:because of|due to|owing to|as a result of|driven (?:[a-z]+ )?by|on account of|based on)\b")
