"""Adverse-action reasons: Regulation B sample form C-1 and the feature → reason mapping.

Regulation B (12 CFR 1002.9(b)(2)) requires a creditor that takes adverse action to give the
*specific principal reasons*. Appendix C, sample form C-1 ("Sample Notice of Action Taken and
Statement of Reasons") lists the standard reasons; ``FORM_C1`` holds them word for word, in
the order of the form. The form's last box is "Other, specify: ____"; ``OTHER_SPECIFIED`` holds
the few specific statements this product writes in that box, each rendered as
``"Other, specify: <statement>"`` so that a notice can tick the box and fill the blank verbatim.
``REASONS`` is the union of both and is the only table other modules should read.

Mapping rationale (one reason per model feature, see ``backend.domain.features``):

* Employment length and tenure → "Length of employment"; employment type and job changes →
  "Temporary or irregular employment"; failed verification → the matching "Unable to verify ...".
* Income level, loan-to-income, payment-to-income, residual income, requested amount →
  "Income insufficient for amount of credit requested": the applicant can fix these by asking
  for less or for a longer term, which is why the what-if tool treats loan terms as mutable.
* Existing payments, DTI, housing cost, existing balances → "Excessive obligations in
  relation to income".
* Credit age, thin files, limits → "Limited credit experience"; few (satisfactory) tradelines →
  "Insufficient number of credit references provided"; credit mix → "Unacceptable type of
  credit references provided".
* Delinquencies, past-due amounts, charge-offs → "Delinquent past or present credit obligations
  with others"; collections, judgments, public records → "Collection action or judgment";
  garnishment, foreclosure/repossession and bankruptcy each have their own line on the form.
* Inquiries and newly opened accounts → "Number of recent inquiries on credit bureau report".
* Overdrafts, returned items and late payments on loans with us → "Poor credit performance with
  us" (deposit overdrafts are credit extended by us).
* Down payment, loan-to-value, collateral type/value/age → "Value or type of collateral not
  sufficient".
* Revolving utilisation has no line on form C-1 and is not an "obligation in relation to
  income", so it uses "Other, specify" with the statement credit bureaus use. The same holds
  for the bureau score itself: Regulation B's commentary says that "failing to achieve a
  qualifying score" is not a specific reason, so the score maps to a statement that points to
  the key factors disclosed in the FCRA section of the notice; the deposit relationship, loan
  purpose and loan terms likewise get their own specific statements.

Three form reasons map to no feature ("No credit file", "Unable to verify credit references" and
the bare "Other, specify"); they are there for policy rules and for reviewers' overrides. No
reason refers to a protected characteristic: ``PROTECTED`` attributes are never features.
"""

from __future__ import annotations

from backend.domain.features import FEATURES, FEATURES_BY_NAME

OTHER_PREFIX = "Other, specify: "
UNKNOWN_FEATURE = "unknown feature {name!r}: not in backend.domain.features.FEATURES"

#: The 24 reasons of Regulation B, Appendix C, sample form C-1 (Part I), in form order.
FORM_C1: dict[str, str] = {
    "application_incomplete": "Credit application incomplete",
    "insufficient_credit_references": "Insufficient number of credit references provided",
    "unacceptable_credit_references": "Unacceptable type of credit references provided",
    "unverified_credit_references": "Unable to verify credit references",
    "temporary_employment": "Temporary or irregular employment",
    "unverified_employment": "Unable to verify employment",
    "length_of_employment": "Length of employment",
    "insufficient_income": "Income insufficient for amount of credit requested",
    "excessive_obligations": "Excessive obligations in relation to income",
    "unverified_income": "Unable to verify income",
    "length_of_residence": "Length of residence",
    "temporary_residence": "Temporary residence",
    "unverified_residence": "Unable to verify residence",
    "no_credit_file": "No credit file",
    "limited_credit_experience": "Limited credit experience",
    "poor_performance_with_us": "Poor credit performance with us",
    "delinquent_obligations": "Delinquent past or present credit obligations with others",
    "collection_or_judgment": "Collection action or judgment",
    "garnishment_or_attachment": "Garnishment or attachment",
    "foreclosure_or_repossession": "Foreclosure or repossession",
    "bankruptcy": "Bankruptcy",
    "recent_inquiries": "Number of recent inquiries on credit bureau report",
    "insufficient_collateral": "Value or type of collateral not sufficient",
    "other": "Other, specify",
}

#: Words that make sense only on the notice itself (it lists the bureau's key factors); a screen drops them.
NOTICE_ONLY = " (the key factors that affected it are listed in this notice)"

#: Specific statements written in the form's "Other, specify" box.
OTHER_SPECIFIED: dict[str, str] = {
    "other_revolving_utilization": OTHER_PREFIX
    + "Proportion of balances to credit limits on revolving accounts is too high",
    "other_credit_score": OTHER_PREFIX + "Credit bureau score" + NOTICE_ONLY,
    "other_deposit_relationship": OTHER_PREFIX + "Length or balances of deposit relationship with us",
    "other_loan_purpose": OTHER_PREFIX + "Purpose of the requested credit",
    "other_loan_terms": OTHER_PREFIX + "Requested terms of credit (term, payment schedule or structure)",
}

REASONS: dict[str, str] = {**FORM_C1, **OTHER_SPECIFIED}


def printed_reason(text: str) -> str:
    """How a reason reads on a notice or a card: an "Other, specify: X" statement prints as X (the box
    ticked and its blank filled is the reason itself); a bare "Other, specify" stays as it is."""
    return text[len(OTHER_PREFIX):].strip() if text.startswith(OTHER_PREFIX) and text[len(OTHER_PREFIX):].strip() \
        else text


def screen_reason(text: str) -> str:
    """How a reason reads on a screen (the card, the Q&A): as printed on a notice, without the words that point
    at the notice ("...listed in this notice" in a chat answer points at nothing)."""
    return printed_reason(text).replace(NOTICE_ONLY, "")


def is_form_reason(key: str) -> bool:
    """True when ``key`` is one of the verbatim form C-1 reasons (not an "Other" statement)."""
    return key in FORM_C1


def reason_for(feature_name: str) -> tuple[str, str]:
    """Return ``(reason_key, reason_text)`` for a model feature.

    Raises ``KeyError`` (message ``UNKNOWN_FEATURE``) for a name that is not a catalog feature,
    including the protected attributes, which never produce a reason.
    """
    feature = FEATURES_BY_NAME.get(feature_name)
    if feature is None:
        raise KeyError(UNKNOWN_FEATURE.format(name=feature_name))
    return feature.reason_code, REASONS[feature.reason_code]


#: ``(feature, reason key, reason text)`` for every feature, in catalog order (README table).
MAPPING_TABLE: tuple[tuple[str, str, str], ...] = tuple(
    (f.name, f.reason_code, REASONS[f.reason_code]) for f in FEATURES
)
