"""One vocabulary of protected characteristics and their proxies, for every screen of free text.

The explanation fact-check (nothing an officer reads may name one), the decision Q&A (a question about
one is refused) and anything else that screens text read :data:`PROTECTED_TERMS` through
:func:`find_protected`, on text already folded by :func:`backend.domain.textnorm.skeleton` (so
look-alike letters, zero-width characters and fullwidth forms cannot hide a term) with number words as
digits (so "over sixty" is "over 60").

Each entry names its category, its legal basis and one example (tests/unit/test_protected_terms.py
checks every entry on its example, and on the example disguised). Bases:

* ``ECOA`` — Equal Credit Opportunity Act, 15 U.S.C. 1691(a), and Regulation B, 12 CFR 1002.2(z):
  the prohibited bases are race, color, religion, national origin, sex (incl. sexual orientation and
  gender identity, CFPB interpretive rule of March 2021), marital status, age, receipt of public
  assistance income, and the good-faith exercise of rights under the Consumer Credit Protection Act.
* ``RegB 1002.5(d)/1002.6(b)(3)`` — no inquiry about birth control, childbearing or child-rearing, and
  no assumption about the likelihood of having children (pregnancy, maternity leave).
* ``RegB 1002.6(b)(5)`` — income from a pension, annuity, retirement benefit or part-time work may not
  be discounted: naming retirement in an explanation is an age proxy.
* ``FHA`` — Fair Housing Act, 42 U.S.C. 3605: handicap (disability) and familial status for credit
  secured by a dwelling.
* ``FCRA`` — FCRA 604(g) and Regulation V, 12 CFR 1022.30: medical information may not be used for
  credit eligibility.
* ``proxy`` — a common proxy for a prohibited basis, named by regulators and in fair-lending
  examinations: geography (zip code, neighbourhood: redlining, ECOA/FHA disparate impact), language
  and English proficiency (national origin), immigration and citizenship (national origin), names.

The model's own features are not proxies by construction (``backend.domain.features``); a feature's
description that contains a term here ("age of the collateral", "average age of credit accounts") is
masked by the caller before screening (see :data:`BENIGN`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ProtectedTerm:
    key: str
    pattern: str  # a regular expression over skeleton text (lower case, ASCII letters, digits)
    category: str  # the protected characteristic it names or stands for
    basis: str
    example: str  # a sentence that names it (tested)


ECOA = "ECOA / Reg B 12 CFR 1002.2(z) prohibited basis"
PROXY = "common proxy (fair-lending examinations: disparate impact)"
T = ProtectedTerm
PROTECTED_TERMS: tuple[ProtectedTerm, ...] = (
    T("age", r"age|aged|ages|ageing|aging|how old|years? old|yrs? old|y/?o|date of birth|birth ?date|dob|born(?: in)?|"
             r"birthday", "age", ECOA, "The applicant's age was taken into account."),
    T("age_group", r"elderly|senior|seniors|senior citizen|older|oldest|younger|youngest|young|youth|juvenile|"
                   r"minor|teen\w*|middle[- ]aged|geriatric|boomers?|baby boomer|millennials?|gen ?z|generation|"
                   r"twenty ?something|octogenarian|septuagenarian|sexagenarian",
      "age", ECOA, "Senior applicants like this one are riskier."),
    T("age_number", r"(?:over|under|past|nearly|almost|around|about|turned|turning|aged?|approaching|pushing|"
                    r"in (?:his|her|their) (?:late |early |mid )?)\s?\d{2}s?(?!\s*(?:%|percent|months?|days?|"
                    r"accounts?|inquir|payments?|late|years?\b(?!\s+old)|\d|,|\.\d))|\b\d0s\b|\b\d{2}\+(?!\s*days)",
      "age", ECOA, "The applicant is over sixty."),
    T("retirement", r"retire\w*|retiree\w*|pension\w*|annuit\w*|social security|ssi\b|ssdi|401 ?k|ira\b|"
                    r"golden years|end of (?:his|her|their) career", "age (retirement income)",
      "Reg B 1002.6(b)(5) (retirement income may not be discounted); age proxy",
      "Being a pensioner weighed on the decision."),
    T("sex", r"sex|sexes|gender\w*|male|males|female|females|man|men|woman|women|lady|ladies|gentleman|"
             r"gentlemen|boy|girl|mother|father|mom|mum|dad|son|daughter|madam", "sex", ECOA,
      "A female applicant with this profile is typical."),
    T("gendered_reference", r"he|she|him|his|her|hers|himself|herself|mr|mrs|ms|miss|sir",
      "sex (the record holds no sex: a gendered pronoun or title states one)", ECOA,
      "She has a solid repayment history."),
    T("sexual_orientation", r"sexual orientation|gay|lesbian|bisexual|transgender|trans woman|trans man|"
                            r"nonbinary|non-binary|queer|lgbt\w*|same[- ]sex",
      "sex (sexual orientation, gender identity)", ECOA + "; CFPB interpretive rule 2021",
      "The applicant is gay."),
    T("marital", r"marital|married|marriage|unmarried|divorc\w*|separated|widow\w*|spouse\w*|husband|wife|"
                 r"wives|fiance\w*|partner's|single (?:mother|father|parent|mom|dad|applicant|woman|man)|"
                 r"is single|civil union|domestic partner|maiden name", "marital status", ECOA,
      "Being divorced raised the risk."),
    T("pregnancy", r"pregnan\w*|maternity|paternity|parental leave|expecting a (?:baby|child)|childbearing|"
                   r"birth control|newborn|baby|babies|childcare|child care|family planning|having children",
      "sex (childbearing)", "Reg B 1002.5(d)(3), 1002.6(b)(3)", "She is on maternity leave."),
    T("familial", r"familial status|children|child|kids|dependents?|dependants?|family size|household size|"
                  r"family status|number of children", "familial status", "FHA 42 U.S.C. 3605; Reg B 1002.5(d)",
      "The applicant has three children."),
    T("race", r"race|races|racial\w*|ethnic\w*|black|white|asian|hispanic|latin[oax]s?|caucasian|"
              r"african[- ]american|native american|indigenous|pacific islander|arab|minority|minorities|"
              r"skin|colou?r(?:ed)? (?:person|people|applicant)|person of colou?r|people of colou?r|bipoc",
      "race, color", ECOA, "The applicant is Hispanic."),
    T("religion", r"religio\w*|church\w*|mosque|synagogue|temple|christian\w*|catholic\w*|protestant|muslim\w*|"
                  r"islam\w*|jewish|jew|jews|judaism|hindu\w*|buddhis\w*|sikh\w*|atheis\w*|faith|worship|"
                  r"tithe\w*|clergy|pastor|priest|rabbi|imam", "religion", ECOA,
      "The applicant's church tithes reduce income."),
    T("national_origin", r"national origin|nationality|nationalities|citizen\w*|immigra\w*|migrant\w*|"
                         r"foreign\w*|alien|aliens|visa|green card|undocumented|refugee\w*|asylum|expat\w*|"
                         r"born abroad|country of (?:birth|origin)|ancestry|heritage|native[- ]born",
      "national origin", ECOA + "; immigration status: Reg B 1002.6(b)(7) allows residency only",
      "The applicant is an immigrant."),
    T("language", r"language\w*|english|spanish|accent\w*|speaks?|spoken|fluen\w*|bilingual|interpreter|"
                  r"translator|non-native|mother tongue", "national origin (language)", PROXY,
      "The applicant does not speak English well."),
    T("public_assistance", r"public assistance|welfare|food stamps|snap benefits|medicaid|tanf|benefits income|"
                           r"government assistance|housing assistance|section 8|unemployment benefits",
      "receipt of public assistance income", ECOA, "The applicant receives welfare."),
    T("disability", r"disab\w*|handicap\w*|impair\w*|wheelchair|blind|deaf|chronic\w*|illness\w*|ill|sick\w*|"
                    r"medical condition|diagnos\w*|cancer|diabet\w*|mental health|depression|injur\w*|"
                    r"health (?:condition|problem|issue)s?|hospital\w*",
      "disability, medical information", "FHA 42 U.S.C. 3605; FCRA 604(g), Reg V 12 CFR 1022.30",
      "The applicant has a disability."),
    T("geography", r"zip|zips|zip ?codes?|zipcode|postcode|postal code|neighbou?rhoods?|area|areas|district|"
                   r"inner city|inner-city|ghetto|barrio|suburb\w*|part of town|side of town|census tract|"
                   r"region|regions|community|communities|where (?:(?:does|do|did) )?(?:he|she|they|the applicant) lives?|"
                   r"home address|street|"
                   r"lives? in|address in|redlin\w*", "race, national origin (geography)",
      PROXY + " (redlining; ECOA and FHA)", "The zip code is in a high-default neighbourhood."),
    T("rights_exercise", r"complain\w*|lawsuit|sued|dispute[sd]? (?:with|against)|cfpb|consumer rights|"
                         r"exercised (?:his|her|their) rights", "good-faith exercise of consumer credit rights",
      ECOA + " (15 U.S.C. 1691(a)(3))", "The applicant filed a complaint with the CFPB."),
    T("military", r"military|veteran\w*|servicemember\w*|active duty|deployed|deployment|armed forces",
      "military status (not an ECOA basis; SCRA/MLA protections and many state laws)",
      "SCRA 50 U.S.C. 3901; state fair-lending laws", "The applicant is a veteran."),
)
#: Feature descriptions and phrases that contain a term above but name none (masked before screening).
BENIGN = re.compile(
    r"(?:credit|account|accounts|collateral|vehicle|car|equipment|file|average|oldest|newest) age\b|"
    r"\bage of (?:the |an |their |your |his |her )?(?:credit|accounts?|collateral|vehicle|car|equipment|oldest|"
    r"newest|file)\w*|\bhighest utilization on a single card|\bon a single card")
_COMPILED = tuple((t, re.compile(rf"(?<![a-z0-9])(?:{t.pattern})(?![a-z])")) for t in PROTECTED_TERMS)


def find_protected(text: str, *, skip: tuple[str, ...] = ()) -> list[tuple[ProtectedTerm, str]]:
    """Every protected term in ``text`` (already a skeleton: lower case, look-alikes folded), with the words
    found; benign feature phrases (:data:`BENIGN`) are masked first. ``skip``: entry keys not screened
    (the Q&A lets an officer write "why was she denied?")."""
    masked = BENIGN.sub(lambda m: " " * len(m.group(0)), text)
    return [(t, m.group(0)) for t, rx in _COMPILED if t.key not in skip for m in [rx.search(masked)] if m is not None]
