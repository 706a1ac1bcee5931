"""The rules of a human decision, pure and shared by the console, the API and the CLI.

* **Accept**: the outcome equals the model's recommendation; no reason is recorded.
* **Override**: the outcome differs; it needs a reason code from :data:`OVERRIDE_REASONS` and free
  text of :data:`MIN_TEXT`-:data:`MAX_TEXT` characters (the minimum counts non-blank text).
* **Materiality** (:func:`materiality`): an override that *approves* a high-risk applicant, a loan
  above the cap, or against a deny recommendation needs a second person with a manager role
  (four-eyes) before it is final.
* **Free text is data, never instructions**: it is stored verbatim (HTML, Markdown, formulas, SQL,
  control characters) and never read by any rule. Two things cannot be stored verbatim and are
  refused with a clear message instead of being altered: NUL (PostgreSQL ``text`` cannot hold it)
  and lone surrogates (not valid UTF-8).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from backend.domain.permissions import Perm, allowed
from backend.domain.policy import APPROVE, DENY, HIGH_RISK, REVIEW

OUTCOMES = (APPROVE, DENY, REVIEW)
MANAGER_ROLES = ("risk_manager", "admin")  # documentation; the check itself is Perm.APPROVE_OVERRIDES

OVERRIDE_REASONS: dict[str, str] = {
    "verified_income_higher": "Verified income is higher than the application stated",
    "compensating_factors": "Compensating factors (savings, collateral, co-signer) not in the model",
    "documentation_error": "Application data was wrong or incomplete; corrected figures support this outcome",
    "policy_exception": "Approved exception to credit policy",
    "fraud_suspected": "Suspected fraud or identity mismatch",
    "thin_file_manual_review": "Thin or unusual credit file needs a full manual underwrite",
    "customer_relationship": "Existing customer relationship and repayment history with the bank",
    "other": "Other (explained in the text)",
}

MIN_TEXT, MAX_TEXT, MAX_NOTE = 20, 2000, 2000
KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

# materiality reasons (stored in the audit row and shown in the review queue)
MAT_HIGH_RISK = "approves a high-risk applicant"
MAT_OVER_CAP = "approves a loan of ${amount:,.0f}, above the ${cap:,.0f} cap"
MAT_AGAINST_DENY = "approves against a deny recommendation"

# error messages (asserted by tests)
NOT_FOUND = "No such application or decision, or it is not one of yours."
NOT_ALLOWED = "Your role may not record decisions."
NOT_A_MANAGER = "Only a risk manager or an administrator may approve or reject an override."
SAME_PERSON = "The person who made an override cannot approve or reject it; a second manager must."
NOT_PENDING = "This decision is not awaiting approval (it is {status})."
BAD_OUTCOME = "Outcome must be one of: " + ", ".join(OUTCOMES) + "."
REASON_REQUIRED = "An override needs a reason code and an explanation of at least {min} characters."
MANUAL_DENIAL_REASON = ("A denial needs its principal reasons for the adverse action notice: pick 1 to 4 from the "
                        "notice's list (\"Other, specify\" with the reason in words when none fits).")
BAD_REASON_CODE = "Unknown reason code {code!r}; choose one of: " + ", ".join(OVERRIDE_REASONS) + "."
TEXT_TOO_SHORT = "The explanation must have at least {min} characters (it has {n})."
TEXT_TOO_LONG = "The explanation must have at most {max} characters (it has {n})."
NOTE_TOO_LONG = "The note must have at most {max} characters (it has {n})."
REJECT_NOTE_REQUIRED = "Rejecting an override needs a note of at least {min} characters for the officer."
REASON_ON_ACCEPT = ("A reason is recorded only for an override; this outcome accepts the recommendation "
                    "({outcome}), so leave the reason empty.")
TEXT_NUL = "The text contains a NUL character (\\x00), which cannot be stored; remove it and submit again."
TEXT_SURROGATE = "The text contains an invalid character (a lone UTF-16 surrogate); remove it and submit again."
BAD_KEY = "Idempotency key must be 8-128 characters of letters, digits, '.', '_', ':' or '-'."
KEY_REUSED = ("This idempotency key was already used for a different decision; nothing was recorded. "
              "Reload the page to start a new decision.")
ALREADY_DECIDED = ("This application already has a {status} decision ({outcome}); nothing was recorded. "
                   "A rejected override is the only way an application is decided again.")
STALE_PREDICTION = "This application was scored again after this result; open the latest score and decide on it."
BAD_STARTED_AT = "started_at must be a timezone-aware datetime."


NOTICE_REASONS_ONLY_FOR_DENIAL = "Notice reasons are recorded only for a denial."
NOTICE_REASONS_COUNT = "A denial's notice states 1 to {max} principal reasons (got {n})."
NOTICE_REASON_UNKNOWN = ("Notice reason {i} is not on the notice's list (form C-1); choose one, or "
                         "\"other:<the reason in words>\" for \"Other, specify\".")
NOTICE_OTHER_TEXT = "Notice reason {i} (\"Other, specify\") needs the reason in 5 to 200 characters."
MAX_NOTICE_REASONS = 4


class DecisionError(ValueError):
    """A decision or approval was refused; the message says why (nothing was recorded)."""


class DecisionNotFound(DecisionError):
    """Missing, or not the actor's to see: the two are indistinguishable on purpose."""


def check_text(value: str, *, required: bool, min_len: int = MIN_TEXT, max_len: int = MAX_TEXT,
               too_short: str = TEXT_TOO_SHORT, too_long: str = TEXT_TOO_LONG) -> None:
    """Refuse text that cannot be stored verbatim or is outside the length bounds."""
    if "\x00" in value:
        raise DecisionError(TEXT_NUL)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DecisionError(TEXT_SURROGATE) from None
    if len(value) > max_len:
        raise DecisionError(too_long.format(max=max_len, n=len(value)))
    n = len(value.strip())
    if required and n < min_len:
        raise DecisionError(too_short.format(min=min_len, n=n))


def check_request(*, outcome: str, recommendation: str, reason_code: str | None, reason_text: str | None) -> bool:
    """Validate a decision request against the recommendation; return True for an override."""
    if outcome not in OUTCOMES:
        raise DecisionError(BAD_OUTCOME)
    if outcome == recommendation:
        if reason_code is not None or reason_text is not None:
            raise DecisionError(REASON_ON_ACCEPT.format(outcome=outcome))
        return False
    if not reason_code or reason_text is None:
        raise DecisionError(REASON_REQUIRED.format(min=MIN_TEXT))
    if reason_code not in OVERRIDE_REASONS:
        raise DecisionError(BAD_REASON_CODE.format(code=reason_code[:40]))
    check_text(reason_text, required=True)
    return True


def check_manual(*, outcome: str, reason_code: str | None, reason_text: str | None,
                 notice_reasons: tuple[str, ...] | None = None) -> None:
    """A decision made without the AI (control arm, shadow mode): a denial needs its principal reasons for
    the adverse action notice (``notice_reasons`` from the C-1 list; before 0011 a code and text);
    other outcomes may carry a reason."""
    if outcome not in OUTCOMES:
        raise DecisionError(BAD_OUTCOME)
    if outcome == "deny" and not notice_reasons and (not reason_code or reason_text is None):
        raise DecisionError(MANUAL_DENIAL_REASON.format(min=MIN_TEXT))
    if reason_code is not None and reason_code not in OVERRIDE_REASONS:
        raise DecisionError(BAD_REASON_CODE.format(code=reason_code[:40]))
    if reason_text is not None:
        check_text(reason_text, required=True)
    elif reason_code is not None:
        raise DecisionError(REASON_REQUIRED.format(min=MIN_TEXT))


def check_notice_reasons(outcome: str, reasons: list[str] | None) -> tuple[str, ...] | None:
    """The C-1 reasons an officer picked for a denial's notice: keys of ``REASONS`` (not the bare
    "other"), or ``other:<text>`` ("Other, specify" with the reason in words, 5-200 characters)."""
    from backend.domain.reason_codes import REASONS

    if reasons is None:
        return None
    if outcome != DENY:
        raise DecisionError(NOTICE_REASONS_ONLY_FOR_DENIAL)
    if not 1 <= len(reasons) <= MAX_NOTICE_REASONS:
        raise DecisionError(NOTICE_REASONS_COUNT.format(max=MAX_NOTICE_REASONS, n=len(reasons)))
    out: list[str] = []
    for i, raw in enumerate(reasons, 1):
        key = str(raw)
        if key.startswith("other:"):
            text = " ".join(key[len("other:"):].split())
            check_text(text, required=True, min_len=5, max_len=200, too_short=NOTICE_OTHER_TEXT.replace("{i}", str(i)),
                       too_long=NOTICE_OTHER_TEXT.replace("{i}", str(i)))
            key = "other:" + text
        elif key not in REASONS or key == "other":
            raise DecisionError(NOTICE_REASON_UNKNOWN.format(i=i))
        if key not in out:
            out.append(key)
    return tuple(out)


@dataclass(frozen=True)
class Classified:
    """What a decision request is, by the rules above (see :func:`classify`)."""

    is_override: bool
    manual: bool  # decided without the AI (control arm, shadow mode)
    review: bool  # a review recommendation resolved the way the risk class points
    materiality: tuple[str, ...]  # why a second person is needed (overrides only)

    @property
    def keeps_reason(self) -> bool:
        """The human's reason is stored (and goes into an adverse action notice)."""
        return self.is_override or self.manual

    @property
    def action(self) -> str:
        """The audit action of the decision."""
        if self.materiality:
            return "override_submitted"
        if self.is_override:
            return "decision_overridden"
        return "decision_manual" if self.manual else "review_resolved" if self.review else "decision_accepted"


def classify(*, outcome: str, recommendation: str, risk_class: str, loan_amount: float, cap: float,
             ai_visible: bool, reason_code: str | None, reason_text: str | None,
             notice_reasons: tuple[str, ...] | None = None) -> Classified:
    """Validate a decision request and classify it: manual (the officer did not see the AI), a review
    resolution, an acceptance or an override with its materiality. Raises :class:`DecisionError`."""
    manual = not ai_visible
    review = not manual and reason_code is None and reason_text is None and resolves_review(
        outcome=outcome, recommendation=recommendation, risk_class=risk_class, loan_amount=loan_amount, cap=cap)
    if manual:
        check_manual(outcome=outcome, reason_code=reason_code, reason_text=reason_text, notice_reasons=notice_reasons)
        is_override = False
    elif review:
        is_override = False
    else:
        is_override = check_request(outcome=outcome, recommendation=recommendation, reason_code=reason_code,
                                    reason_text=reason_text)
    why = materiality(outcome=outcome, recommendation=recommendation, risk_class=risk_class,
                      loan_amount=loan_amount, cap=cap) if is_override else []
    return Classified(is_override, manual, review, tuple(why))


def parse_id(value: str | uuid.UUID) -> uuid.UUID:
    """A UUID from a caller, or :class:`DecisionNotFound` (a malformed id is just a missing one)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise DecisionNotFound(NOT_FOUND) from None


def may_see(role: str, user_id: uuid.UUID | None, officer_id: uuid.UUID | None) -> bool:
    """The access rule for one application: every one for VIEW_ALL_DECISIONS roles, else only the
    officer's own (not-yours and missing look the same to the caller)."""
    return allowed(role, Perm.VIEW_ALL_DECISIONS) or (officer_id is not None and officer_id == user_id)


def check_key(key: str) -> None:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise DecisionError(BAD_KEY)


def elapsed_seconds(started_at: datetime | None, now: datetime) -> float | None:
    if started_at is None:
        return None
    if started_at.tzinfo is None:
        raise DecisionError(BAD_STARTED_AT)
    return round(max(0.0, (now - started_at).total_seconds()), 3)


def resolves_review(*, outcome: str, recommendation: str, risk_class: str, loan_amount: float, cap: float) -> bool:
    """True when the officer resolves a manual-review recommendation the way the model's risk class
    points (approve a low-risk, deny a high-risk application) and nothing about it is material: that
    is the review the policy asked for, not an override, so it needs no reason code."""
    if recommendation != REVIEW or outcome == REVIEW:
        return False
    implied = APPROVE if risk_class != HIGH_RISK else DENY
    return outcome == implied and not materiality(outcome=outcome, recommendation=recommendation,
                                                  risk_class=risk_class, loan_amount=loan_amount, cap=cap)


def materiality(*, outcome: str, recommendation: str, risk_class: str, loan_amount: float,
                cap: float) -> list[str]:
    """Why an override needs a second person (empty: it is final at once).

    Only overrides that approve are material: an override towards deny or manual review only adds
    caution. Accepting the recommendation is never material.
    """
    if outcome == recommendation or outcome != APPROVE:
        return []
    why: list[str] = []
    if risk_class == HIGH_RISK:
        why.append(MAT_HIGH_RISK)
    if loan_amount > cap:
        why.append(MAT_OVER_CAP.format(amount=loan_amount, cap=cap))
    if recommendation == DENY:
        why.append(MAT_AGAINST_DENY)
    return why
