"""Adverse action notices: Regulation B section 1002.9(a)(2) and the FCRA section 615(a) score block.

:func:`build_notice` turns a denial into an :class:`AdverseActionNotice` holding every element of the
letter; :func:`render_text` writes the console preview and :func:`render_pdf`
(``backend.decisioning.letters_pdf``) the download.

* **Reasons** are exactly the decision's reason codes, in the model's order, at most four (the model
  lists only *material* reasons: see ``backend/models/reasons.py``). When an officer's decision differs
  from the model's recommendation, or the officer decided without the AI, the officer's recorded reasons
  are used instead and are required: keys of ``REASONS`` (the C-1 list), with free text only as
  ``other:<text>`` ("Other, specify"), so an officer's internal note never reaches the consumer by
  accident. An "Other, specify: X" reason prints as X (:func:`backend.domain.printed_reason`).
* **Credit score disclosure** appears only when the bureau score (feature ``credit_score``) was used.
  Its key factors are the **bureau's** key-factor codes carried on the application
  (``bureau_key_factors``, :mod:`backend.domain.bureau_factors`), never the model's reasons; when the
  bureau sent none, the notice says so.
* **A notice follows the final decision** (:func:`notice_outcome`): none while an override waits for
  its second person, none once an approval is final, none before a decision is recorded.
* **User text** (applicant name, officer reasons) is normalised: control, format and private-use
  characters become spaces, whitespace collapses (no forged lines), lengths are capped. Renderers
  never interpret markup, so HTML or Markdown stays literal text.
* Protected attributes never appear: only reason texts, the bureau score and the amount requested
  are read from the record, and an officer reason naming a prohibited basis is refused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from backend.decisioning.config import EXAMPLE_ORGANIZATION_ADDRESS, EXAMPLE_ORGANIZATION_NAME, NoticeSettings
from backend.domain import REASONS, key_factor_texts, parse_key_factors, printed_reason

MAX_REASONS = 4
MAX_NAME_CHARS = 200
MAX_REASON_CHARS = 2000
ELLIPSIS = "..."
DEFAULT_SALUTATION = "Applicant"
CREDIT_SCORE_FEATURE = "credit_score"
OTHER_CODE = "other"
OTHER_ENTRY = "other:"  # an officer's "Other, specify" reason: ``other:<the reason in their words>``
NO_KEY_FACTORS = ("The consumer reporting agency did not send key factors with your credit score; "
                  "you may ask it for them.")
ADVERSE_OUTCOMES = ("deny",)

NOTICE_NOT_REQUIRED = "no adverse action notice is needed: the decision is {outcome!r}, not a denial"
NOT_FINAL = "no adverse action notice yet: the decision is {outcome!r}; notify once credit is denied"
UNKNOWN_OUTCOME = "unknown decision outcome {outcome!r}; expected approve, deny or manual_review"
HUMAN_REASONS_REQUIRED = ("the officer's decision ({outcome!r}) differs from the model's recommendation "
                          "({recommendation!r}): record the officer's reasons for the notice")
TOO_MANY_REASONS = "at most {max} principal reasons may be stated (got {n})"
NO_REASONS = "a denial needs at least one specific principal reason; none was recorded"
EMPTY_REASON = "officer reason {i} is empty after removing control characters"
PROHIBITED_BASIS = "officer reason {i} refers to a prohibited basis ({word!r}); state a lawful reason"
NOT_A_FORM_REASON = ("officer reason {i} is not a reason of the notice's list; choose one, or \"Other, specify\" "
                     "with the reason in words (free text goes to the consumer only that way)")
# notice_outcome: why no notice is offered
NO_DECISION_YET = "The notice is prepared once the decision is recorded and final."
AWAITING_APPROVAL = ("The decision is awaiting a manager's approval: no notice until it is final "
                     "(an approved override means no adverse action).")
RETURNED = "A manager returned the decision; the notice follows the new decision."
NOT_ADVERSE = "An adverse action notice is needed only for a denial. This decision is {outcome}."

#: Regulation B section 1002.9(b)(1), word for word; ``{agency}`` is the name and address of Appendix A.
ECOA_NOTICE = (
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against credit "
    "applicants on the basis of race, color, religion, national origin, sex, marital status, age (provided "
    "the applicant has the capacity to enter into a binding contract); because all or part of the "
    "applicant's income derives from any public assistance program; or because the applicant has in good "
    "faith exercised any right under the Consumer Credit Protection Act. The Federal agency that "
    "administers compliance with this law concerning this creditor is {agency}."
)
#: FCRA section 615(a) statements, in the words of Regulation B sample form C-1 (Part II).
FCRA_REPORT_USED = (
    "Our credit decision was based in whole or in part on information obtained in a report from the "
    "consumer reporting agency listed below. You have a right under the Fair Credit Reporting Act to know "
    "the information contained in your credit file at the consumer reporting agency. The reporting agency "
    "played no part in our decision and is unable to supply specific reasons why we have denied credit to "
    "you. You have a right to a free copy of your report from the reporting agency, if you request it no "
    "later than 60 days after you receive this notice. In addition, if you find that any information "
    "contained in the report you receive is inaccurate or incomplete, you have the right to dispute the "
    "matter with the reporting agency."
)
FCRA_SCORE_USED = (
    "We also obtained your credit score from this consumer reporting agency and used it in making our "
    "credit decision. Your credit score is a number that reflects the information in your consumer report. "
    "Your credit score can change, depending on how the information in your consumer report changes."
)
SPECIMEN_NOTE = "SPECIMEN - example settings in use ({fields}); configure them before sending this notice."

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_PROHIBITED = re.compile(
    r"\b(?:race|racial|colou?r of (?:skin|the applicant)|religio\w*|national origin|nationality|sex|gender|"
    r"marital|married|unmarried|divorced|widowed|pregnan\w*|age|aged|too (?:old|young)|ethnic\w*|"
    r"public assistance|welfare)\b", re.IGNORECASE)


class NoticeNotRequired(ValueError):
    """The decision is not an adverse action (approved, or not final yet)."""


def clean_text(value: object, *, limit: int) -> str:
    """User text made safe to print: NFC, control/format/private-use characters and line breaks become
    spaces, whitespace collapses, and text over ``limit`` characters is cut with ``...``."""
    text = unicodedata.normalize("NFC", str(value))
    text = "".join(" " if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


@dataclass(frozen=True)
class CreditScoreDisclosure:
    score: int
    score_date: date
    range_low: int
    range_high: int
    key_factors: tuple[str, ...]
    bureau_name: str
    bureau_address: str
    bureau_phone: str


@dataclass(frozen=True)
class AdverseActionNotice:
    notice_date: date
    applicant_name: str
    application_id: str | None
    creditor_name: str
    creditor_address: str
    action_taken: str
    reasons: tuple[str, ...]
    reason_codes: tuple[str, ...]  # REASONS keys; "officer" for a free-text officer reason
    reasons_source: str  # model | officer
    agency_name: str
    agency_address: str
    ecoa_notice: str
    credit_score: CreditScoreDisclosure | None
    specimen_fields: tuple[str, ...] = ()

    @property
    def is_specimen(self) -> bool:
        return bool(self.specimen_fields)


def _field(record: object, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def _model_reasons(record: object) -> list[dict[str, Any]]:
    return [dict(r) for r in (_field(record, "reasons") or []) if isinstance(r, Mapping) and r.get("code")]


def _officer_reasons(human_reasons: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if len(human_reasons) > MAX_REASONS:
        raise ValueError(TOO_MANY_REASONS.format(max=MAX_REASONS, n=len(human_reasons)))
    texts: list[str] = []
    codes: list[str] = []
    for i, raw in enumerate(human_reasons, start=1):
        key = str(raw).strip()
        if key in REASONS and key != OTHER_CODE:
            codes.append(key)
            texts.append(printed_reason(REASONS[key]))
            continue
        if not key.startswith(OTHER_ENTRY):
            raise ValueError(NOT_A_FORM_REASON.format(i=i))
        text = clean_text(key[len(OTHER_ENTRY):], limit=MAX_REASON_CHARS)
        if not text:
            raise ValueError(EMPTY_REASON.format(i=i))
        hit = _PROHIBITED.search(text)
        if hit:
            raise ValueError(PROHIBITED_BASIS.format(i=i, word=hit.group(0)))
        codes.append(OTHER_CODE)
        texts.append(text)
    return tuple(codes), tuple(texts)


def _credit_score(record: object, key_factors: Sequence[str] | str | None, settings: NoticeSettings,
                  score_date: date) -> CreditScoreDisclosure | None:
    features = _field(record, "features") or {}
    value = features.get(CREDIT_SCORE_FEATURE) if isinstance(features, Mapping) else None
    if value is None or isinstance(value, bool):
        return None
    try:
        score = int(round(float(value)))
    except (TypeError, ValueError):
        return None
    cfg = settings.letters
    return CreditScoreDisclosure(
        score=score, score_date=score_date, range_low=cfg.score_low, range_high=cfg.score_high,
        key_factors=key_factor_texts(parse_key_factors(key_factors)),
        bureau_name=clean_text(cfg.bureau_name, limit=200),
        bureau_address=clean_text(cfg.bureau_address, limit=300), bureau_phone=clean_text(cfg.bureau_phone, limit=40))


def _specimen_fields(settings: NoticeSettings, with_bureau: bool) -> tuple[str, ...]:
    examples = {"organization_name": EXAMPLE_ORGANIZATION_NAME, "organization_address": EXAMPLE_ORGANIZATION_ADDRESS}
    out = [k for k, v in examples.items() if getattr(settings, k) == v]
    out += [f for f in settings.letters.example_fields() if with_bureau or f.startswith("agency_")]
    return tuple(out)


def _action_taken(record: object) -> str:
    features = _field(record, "features") or {}
    amount = features.get("loan_amount") if isinstance(features, Mapping) else None
    try:
        what = f"a loan of ${float(amount):,.0f}" if amount is not None else "credit"
    except (TypeError, ValueError):
        what = "credit"
    return f"We are unable to approve your application for {what}. Your application has been denied."


def build_notice(result_or_record: object, *, applicant_name: str | None, decision_outcome: str,
                 human_reasons: Sequence[str] | None, settings: NoticeSettings, today: date,
                 score_date: date | None = None,
                 bureau_key_factors: Sequence[str] | str | None = None) -> AdverseActionNotice:
    """The adverse action notice for a denied application.

    ``result_or_record``: a :class:`~backend.scoring.service.ScoreResult` or a mapping with the same
    keys (``recommendation``, ``reasons``, ``features``, optionally ``application_id``).
    ``decision_outcome``: the final decision (``deny``; ``approve`` and ``manual_review`` raise
    :class:`NoticeNotRequired`). ``human_reasons``: the officer's recorded reasons (``REASONS`` keys, or
    ``other:<text>`` for "Other, specify"; at most four), required when the outcome differs from the
    model's recommendation. ``score_date``: when the bureau score was obtained (default ``today``).
    ``bureau_key_factors``: the bureau's key-factor codes sent with the score (None/empty: none sent).
    """
    outcome = str(decision_outcome)
    if outcome == "approve":
        raise NoticeNotRequired(NOTICE_NOT_REQUIRED.format(outcome=outcome))
    if outcome == "manual_review":
        raise NoticeNotRequired(NOT_FINAL.format(outcome=outcome))
    if outcome not in ADVERSE_OUTCOMES:
        raise ValueError(UNKNOWN_OUTCOME.format(outcome=outcome))
    model = _model_reasons(result_or_record)
    recommendation = str(_field(result_or_record, "recommendation", ""))
    if human_reasons is not None:
        codes, texts = _officer_reasons(human_reasons)
        source = "officer"
    elif recommendation != outcome:
        raise ValueError(HUMAN_REASONS_REQUIRED.format(outcome=outcome, recommendation=recommendation))
    else:
        picked = model[:MAX_REASONS]
        codes = tuple(str(r["code"]) for r in picked)
        texts = tuple(printed_reason(REASONS.get(c, clean_text(r.get("text", ""), limit=MAX_REASON_CHARS)))
                      for c, r in zip(codes, picked, strict=True))
        source = "model"
    if not texts:
        raise ValueError(NO_REASONS)
    cfg = settings.letters
    agency_name = clean_text(cfg.agency_name, limit=200)
    agency_address = clean_text(cfg.agency_address, limit=300)
    score = _credit_score(result_or_record, bureau_key_factors, settings, score_date or today)
    app_id = _field(result_or_record, "application_id")
    return AdverseActionNotice(
        notice_date=today,
        applicant_name=clean_text(applicant_name, limit=MAX_NAME_CHARS) if applicant_name else "",
        application_id=clean_text(app_id, limit=64) if app_id else None,
        creditor_name=clean_text(settings.organization_name, limit=200),
        creditor_address=clean_text(settings.organization_address, limit=300),
        action_taken=_action_taken(result_or_record), reasons=texts, reason_codes=codes,
        reasons_source=source, agency_name=agency_name, agency_address=agency_address,
        ecoa_notice=ECOA_NOTICE.format(agency=f"{agency_name}, {agency_address}"), credit_score=score,
        specimen_fields=_specimen_fields(settings, score is not None))


def notice_outcome(current: object) -> tuple[str | None, str]:
    """Whether a notice follows ``current`` (the application's current decision, or None):
    ``("deny", "")`` for a final denial, else ``(None, why no notice is offered)``."""
    if current is None:
        return None, NO_DECISION_YET
    status, outcome = str(_field(current, "status", "")), str(_field(current, "outcome", ""))
    if status == "pending_approval":
        return None, AWAITING_APPROVAL
    if status == "rejected":
        return None, RETURNED
    if status != "final":
        return None, NO_DECISION_YET
    if outcome not in ADVERSE_OUTCOMES:
        return None, NOT_ADVERSE.format(outcome={"approve": "an approval", "manual_review": "a referral to manual "
                                                "review"}.get(outcome, outcome))
    return outcome, ""


def long_date(d: date) -> str:
    """``March 5, 2026``."""
    return f"{d:%B} {d.day}, {d.year}"


def notice_sections(notice: AdverseActionNotice) -> list[tuple[str, list[str]]]:
    """The letter as ``(heading, paragraphs)`` in reading order; both renderers lay this out."""
    head = [long_date(notice.notice_date), notice.creditor_name, notice.creditor_address]
    if notice.application_id:
        head.append(f"Application reference: {notice.application_id}")
    head.append(f"Dear {notice.applicant_name or DEFAULT_SALUTATION}:")
    sections: list[tuple[str, list[str]]] = []
    if notice.is_specimen:
        sections.append(("", [SPECIMEN_NOTE.format(fields=", ".join(notice.specimen_fields))]))
    sections += [
        ("", head),
        ("Notice of action taken", [notice.action_taken]),
        ("Statement of specific principal reasons",
         ["The principal reason(s) for our decision:"]
         + [f"{i}. {text}" for i, text in enumerate(notice.reasons, start=1)]),
    ]
    cs = notice.credit_score
    if cs is not None:
        factors = [f"{i}. {t}" for i, t in enumerate(cs.key_factors, start=1)] or [NO_KEY_FACTORS]
        sections.append(("Your credit score and the consumer reporting agency", [
            FCRA_REPORT_USED,
            f"Consumer reporting agency: {cs.bureau_name}, {cs.bureau_address}. "
            f"Telephone (toll-free): {cs.bureau_phone}.",
            FCRA_SCORE_USED,
            f"Your credit score: {cs.score}    Date: {long_date(cs.score_date)}",
            f"Scores range from a low of {cs.range_low} to a high of {cs.range_high}.",
            "Key factors that adversely affected your credit score:", *factors]))
    sections += [
        ("Your rights under the Equal Credit Opportunity Act", [notice.ecoa_notice]),
        ("", [f"Creditor: {notice.creditor_name}, {notice.creditor_address}"]),
    ]
    return sections


def render_text(notice: AdverseActionNotice, *, width: int = 88) -> str:
    """The letter as plain text (console preview). Show it as text, never as Markdown or HTML."""
    import textwrap

    lines: list[str] = []
    for heading, paragraphs in notice_sections(notice):
        if heading:
            lines += [heading.upper(), "-" * min(width, len(heading))]
        for para in paragraphs:
            lines += textwrap.wrap(para, width=width, break_long_words=True, break_on_hyphens=False) or [""]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
