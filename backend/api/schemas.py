"""Request and response bodies of the scoring API.

The application schema is generated from the feature catalogue (:mod:`backend.domain.features`):
one optional field per feature with its JSON type and inclusive bounds (categories as enums),
``loan_amount`` required (:data:`backend.domain.validation.REQUIRED`), extra fields forbidden,
numbers strict (no numeric strings, no booleans, finite only). The scoring service then runs the
model's own validation (:mod:`backend.domain.validation`) on what passed: the API schema
documents and pre-checks, the service decides.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    create_model,
)
from pydantic_core import PydanticCustomError

from backend.compliance import EMAIL_PATTERN, MAX_LENGTH, MSG_EMAIL, PHONE_PATTERN, SSN_PATTERN, valid_email
from backend.domain import (
    FEATURES,
    MAX_TEXT,
    OUTCOMES,
    OVERRIDE_REASONS,
    PROTECTED_CATEGORIES,
    REQUIRED,
    Feature,
)

ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,64}$"
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=10_000)


def _json_int(value: Any) -> Any:
    """JSON numbers only (``36`` or ``36.0``), never ``"36"`` or ``true``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _field(f: Feature) -> tuple[Any, Any]:
    bounds: dict[str, Any] = {k: v for k, v in (("ge", f.lower), ("le", f.upper)) if v is not None}
    if f.kind == "categorical":
        kind: Any = Literal[tuple(f.categories or ())]  # type: ignore[valid-type]
    elif f.kind in ("integer", "binary"):
        kind = Annotated[int, Field(**bounds), BeforeValidator(_json_int)]  # this order: bounds in the schema
    else:
        kind = Annotated[float, Strict(), Field(allow_inf_nan=False, **bounds)]
    desc = f.description + (f" ({f.unit})" if f.unit else "")
    if f.name in REQUIRED:
        return kind, Field(..., description=desc)
    return kind | None, Field(None, description=desc)


def _email(value: str) -> str:
    """The console's and the CLI's rule (:func:`backend.compliance.valid_email`); the message never echoes the value."""
    if valid_email(value.strip()) is None:
        raise PydanticCustomError("value_error", MSG_EMAIL)
    return value


class ApplicantIn(BaseModel):
    """The applicant's direct personal data (every field optional). Stored only encrypted (AES-256-GCM),
    never returned by the API, never logged; shown in clear only to allowed roles, with an audit row."""

    model_config = STRICT
    name: Annotated[str, Field(max_length=MAX_LENGTH["name"])] | None = Field(None, description="Full name")
    address: Annotated[str, Field(max_length=MAX_LENGTH["address"])] | None = Field(
        None, description="Postal address")
    ssn: Annotated[str, Field(pattern=SSN_PATTERN)] | None = Field(
        None, description="Social Security number: 123-45-6789 or 123456789")
    email: Annotated[str, Field(max_length=MAX_LENGTH["email"], pattern=EMAIL_PATTERN),
                     AfterValidator(_email)] | None = Field(
        None, description="Email address (checked by the same rule as the console and the CLI)")
    phone: Annotated[str, Field(max_length=MAX_LENGTH["phone"], pattern=PHONE_PATTERN)] | None = Field(
        None, description="Phone number, 7 to 15 digits")


@lru_cache(maxsize=1)
def application_model() -> type[BaseModel]:
    """The ``Application`` body (built on first use, from the catalogue)."""
    fields: dict[str, Any] = {
        "application_id": (Annotated[str, Field(pattern=ID_PATTERN)] | None,
                           Field(None, description="Your id for the application (a retry with the same id and "
                                               "features re-scores it; different features are refused)")),
        "applicant_id": (Annotated[str, Field(pattern=ID_PATTERN)] | None,
                         Field(None, description="Your id for the applicant (assigns the rollout arm); stored "
                                                 "encrypted, returned only masked")),
        "applicant": (ApplicantIn | None, Field(None, description="Optional personal data, stored encrypted")),
        "bureau_key_factors": (list[Annotated[str, Field(pattern=r"^[0-9]{1,2}$")]] | None,
                               Field(None, max_length=5, description="The credit bureau's key-factor codes sent "
                                     "with the score, in its order (printed on an adverse action notice)")),
    }
    for name, choices in PROTECTED_CATEGORIES.items():
        fields[name] = (Literal[choices] | None,  # type: ignore[valid-type]
                        Field(None, description="Protected attribute: stored for fairness monitoring only, "
                                                "never a model input"))
    for f in FEATURES:
        fields[f.name] = _field(f)
    return create_model("Application", __config__=STRICT, **fields)


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "batch" if "applications" in value else "one"
    return None


def score_request(max_batch: int) -> Any:
    """One application, or ``{"applications": [...]}`` with 1..``max_batch`` of them."""
    app = application_model()
    batch = create_model("ApplicationBatch", __config__=STRICT,
                         applications=(Annotated[list[app], Field(min_length=1, max_length=max_batch)],  # type: ignore[valid-type, arg-type]
                                       Field(..., description=f"1 to {max_batch} applications")))
    return Annotated[Annotated[app, Tag("one")] | Annotated[batch, Tag("batch")],  # type: ignore[valid-type]
                     Discriminator(_kind, custom_error_type="body_type",
                                   custom_error_message="The body must be a JSON object")]


# -- requests ---------------------------------------------------------------------------------------
class OverrideIn(BaseModel):
    model_config = STRICT
    outcome: Literal[OUTCOMES] = Field(..., description="approve, deny or review")  # type: ignore[valid-type]
    reason_code: Literal[tuple(OVERRIDE_REASONS)] | None = Field(  # type: ignore[valid-type]
        None, description="Required when the outcome differs from the recommendation")
    reason_text: Annotated[str, Field(max_length=MAX_TEXT)] | None = Field(
        None, description="Why (stored verbatim; required with a reason code)")
    started_at: AwareDatetime | None = Field(None, description="When the officer opened the case (for timing)")
    notice_reasons: Annotated[list[Annotated[str, Field(max_length=220)]], Field(min_length=1, max_length=4)] | None = \
        Field(None, description="A denial's adverse action notice reasons from the Reg B C-1 list: reason keys "
                                "(GET /v1/reasons), or 'other:<the reason in words>' (5-200 characters); 1-4, "
                                "denials only. Without them a manual denial's notice states the model's reasons.")


QUESTION_PATTERN = "[^\\s\\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"


class QuestionIn(BaseModel):
    model_config = STRICT
    # a character that is not a space to any engine (Python's str.strip also strips \x1c-\x1f; Rust's \s is Unicode)
    question: str = Field(..., min_length=1, max_length=1000, pattern=QUESTION_PATTERN,
                          description="The officer's question about this decision (1-1,000 characters, not only "
                                      "spaces; anything else gets 422 naming the rule)")
    conversation_id: str | None = Field(None, description="Continue this conversation (from an earlier answer); "
                                                          "omit to start a new one")


# -- responses --------------------------------------------------------------------------------------
class ReasonFeature(BaseModel):
    name: str
    description: str
    value: float | int | str | None
    contribution: float


class Reason(BaseModel):
    code: str
    text: str
    weight: float
    features: list[ReasonFeature]


class ScoreOut(BaseModel):
    decision_id: str | None = Field(None, description="Use it with /v1/decisions/{decision_id}")
    application_id: str | None
    ai_visible: bool = Field(..., description="False: decided without the AI (control arm or shadow mode); "
                                              "the model fields are then null")
    arm: str | None
    phase: str | None
    notice: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_role: str | None = Field(None, description="primary, or fallback when the primary model failed")
    pd: float | None = Field(None, description="Calibrated probability of default")
    risk_class: str | None = None
    confidence: float | None = None
    recommendation: str | None = None
    policy_reasons: list[str] | None = None
    reasons: list[Reason] | None = None
    cache_hit: bool | None = None


class BatchOut(BaseModel):
    results: list[ScoreOut]


class CaseOut(BaseModel):
    applicant_masked: str | None = Field(None, description="The applicant id masked (a short type code and its "
                                                           "last characters, e.g. CUS…0042); never in clear")
    features: dict[str, float | int | str | None]
    loan_amount: float
    applied_at: datetime | None


class ReasonOut(BaseModel):
    key: str = Field(..., description="What notice_reasons takes ('other' as other:<text>)")
    text: str = Field(..., description="What the notice prints")


class DecisionViewOut(BaseModel):
    id: str
    outcome: str
    status: str = Field(..., description="final, pending_approval or rejected")
    is_override: bool
    reason_code: str | None
    reason_label: str | None
    reason_text: str | None
    decided_by: str | None
    decided_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    decision_seconds: float | None
    materiality: list[str]
    notice_reasons: list[str] = Field(default_factory=list, description="A denial's notice reasons picked by the "
                                                                      "officer (C-1 keys, other:<text>)")
    replayed: bool = False


class DecisionOut(BaseModel):
    decision_id: str
    score: ScoreOut
    attributions: dict[str, float] | None = None
    application: CaseOut
    decision: DecisionViewOut | None = Field(None, description="The latest human decision, null if none "
                                                                "(always null for machine clients)")


class ExplanationOut(BaseModel):
    id: str
    decision_id: str
    text: str
    provider: str
    model: str
    fact_check_ok: bool
    fallback_used: bool
    verdict: dict[str, Any] = Field(description="How many claims of the model's answer failed the fact-check, and "
                                                "of which kind (every role; never the rejected text)")
    failures: list[dict[str, Any]] = Field(description="The rejected claims themselves (claim, kind, detail): only "
                                                       "for roles that review model behaviour (risk manager, ML "
                                                       "engineer, admin); empty for everyone else")
    created_at: datetime | None


class AnswerOut(BaseModel):
    id: str
    decision_id: str
    conversation_id: str
    question: str
    answer: str
    intent: Literal["why", "what_if", "counterfactual", "compare", "definition", "refused", "out_of_scope", "help"]
    refusal: Literal["protected", "other_applicant", "instruction"] | None
    facts: dict[str, Any] = Field(description="The figures the answer used (record, re-scores, book statistics)")
    engine: str = Field(description="Who answered: 'offline', or 'openai:<model>' / 'anthropic:<model>' when the "
                                    "LLM's checked answer was shown ('offline (fallback: …)' when it was not)")
    fact_check: dict[str, Any] = Field(description="The verdict on the LLM's sentences against this turn's tool "
                                                   "results; for the offline engine checked=false (grounded)")
    tool_calls: list[dict[str, Any]] = Field(description="The LLM's tool calls: name, arguments, result summary")
    at: datetime | None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the token type, not a secret
    expires_in: int
    scope: str


class ProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class OAuthErrorOut(BaseModel):
    error: str = Field(..., description="RFC 6749: invalid_request, invalid_client, invalid_grant, invalid_scope, "
                                        "unsupported_grant_type")
    error_description: str
    type: str
    title: str
    status: int
    request_id: str | None = None


class HealthOut(BaseModel):
    status: str
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)
