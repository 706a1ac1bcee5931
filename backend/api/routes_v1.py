"""/v1: score, read a decision, explain it, decide it — the console's services behind a token.

Routes only translate: the scoring, workspace and decision services apply every rule (validation,
rollout arm, who may see what, override reasons, four-eyes); their errors become problems in
:mod:`backend.api.problems`. ``{decision_id}`` is the id ``/v1/score`` returns (the scored
decision: one prediction of one application). A missing id and another officer's id both
answer 404. No ``from __future__ import annotations`` here: FastAPI reads these annotations.
"""

import hashlib
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from backend.api.deps import ApiContext, Principal, authorize, charge, get_ctx
from backend.api.idempotency import HEADER, REPLAYED_HEADER, Finish, Work, request_hash
from backend.api.jsonbody import StrictJSONRoute
from backend.api.schemas import (
    AnswerOut,
    BatchOut,
    CaseOut,
    DecisionOut,
    DecisionViewOut,
    ExplanationOut,
    OverrideIn,
    ProblemOut,
    QuestionIn,
    ReasonOut,
    ScoreOut,
    score_request,
)
from backend.decisioning import AIHidden
from backend.domain import KEY_RE, REASONS, Perm, allowed
from backend.explanations import record_scores, verdict
from backend.scoring import ScoreResult

HIDDEN_NOTICE = ("Decided without the AI ({why}): the model's score is recorded for measurement only and is not "
                 "shown; open the decision to decide it manually.")
KEY_DOC = "Optional: a retry with the same key and body returns the first answer; another body gets 409."
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "Missing, invalid or expired token"},
    403: {"model": ProblemOut, "description": "The token lacks the scope, or the role the permission"},
    413: {"model": ProblemOut, "description": "Body larger than max_body_bytes"},
    415: {"model": ProblemOut, "description": "Body is not application/json"},
    422: {"model": ProblemOut, "description": "Malformed JSON or invalid fields (values are never echoed)"},
    429: {"model": ProblemOut, "description": "Over the per-client rate limit (see Retry-After)"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ProblemOut, "description": "No such decision, or not one of yours"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ProblemOut, "description": "Idempotency-Key reused with another body, or state conflict"}}

def _key_schema(schema: dict[str, Any]) -> None:
    """The header's schema: a string with the key pattern (not "string or null": a null header cannot be sent)."""
    schema.pop("anyOf", None)
    schema.update(type="string", pattern=KEY_RE.pattern)


# the pattern is documented here and checked by the idempotency store (after trimming whitespace, RFC 9110);
# absent: no key; sent but blank or malformed: 422, never silently "no key"
IdempotencyKey = Annotated[str | None, Header(alias=HEADER, description=KEY_DOC,
                                              json_schema_extra=_key_schema)]  # type: ignore[arg-type]
DecisionId = Annotated[str, Path(description="The decision_id returned by /v1/score", max_length=64)]


class PingOut(BaseModel):
    subject: str
    role: str
    scopes: list[str]


def hidden(decision_id: str | None, application_id: str | None, arm: str | None, phase: str | None) -> ScoreOut:
    """What the scorer sees of an application decided without the AI (as on the console)."""
    why = "shadow mode" if phase == "shadow" else f"{arm or 'control'} arm"
    return ScoreOut(decision_id=decision_id, application_id=application_id, ai_visible=False, arm=arm, phase=phase,
                    notice=HIDDEN_NOTICE.format(why=why))


def score_out(r: ScoreResult, *, reveal: bool = False) -> dict[str, Any]:
    """``reveal``: a manager reading a decision made without the AI sees the model output (flagged)."""
    if not r.ai_visible and not reveal:
        return hidden(r.prediction_id, r.application_id, r.arm, r.phase).model_dump(mode="json")
    base = {"decision_id": r.prediction_id, "application_id": r.application_id, "ai_visible": r.ai_visible,
            "arm": r.arm, "phase": r.phase}
    return ScoreOut(**base, model_name=r.model_name, model_version=r.model_version, model_role=r.model_role,
                    pd=r.pd, risk_class=r.risk_class, confidence=r.confidence, recommendation=r.recommendation,
                    policy_reasons=r.policy_reasons, reasons=r.reasons, cache_hit=r.cache_hit).model_dump(mode="json")


async def _respond(ctx: ApiContext, request: Request, principal: Principal, key: str | None, body: Callable[[], Any],
                   work: Work) -> JSONResponse:
    """The blocking part (idempotency store and ``work``) in one trip to the thread pool; the request
    fingerprint (canonical JSON of ``body()``) only when the caller sent an Idempotency-Key."""
    fingerprint = request_hash(request.method, request.url.path, body()) if key is not None else ""
    stored, replayed = await run_in_threadpool(ctx.idempotency.run, principal.sub, key, fingerprint, work)
    headers = {REPLAYED_HEADER: "true"} if replayed else {}
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)


def service_key(principal: Principal, key: str | None) -> str:
    """The decision service's idempotency key: the caller's key scoped to the caller, else a fresh one."""
    key = (key or "").strip(" \t\r\n")
    if not key:
        return uuid.uuid4().hex
    return "api-" + hashlib.sha256(f"{principal.sub}|{key}".encode()).hexdigest()[:40]


def build_router(max_batch: int) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["v1"], route_class=StrictJSONRoute)
    ScoreRequest = score_request(max_batch)  # noqa: N806 - a type

    @router.get("/ping", response_model=PingOut, summary="Check a token (any scope); does nothing else",
                responses={k: v for k, v in _ERRORS.items() if k in (401, 403, 429)})
    async def ping(principal: Annotated[Principal, Security(authorize)]) -> PingOut:
        """The cheapest authenticated call: the token is verified, the caller's standing checked and the
        request counted against its rate limit, as for every /v1 operation. Answers who the token is for."""
        return PingOut(subject=principal.sub, role=principal.role, scopes=sorted(principal.scopes))

    @router.get("/reasons", response_model=list[ReasonOut], summary="The Reg B C-1 reasons a denial's notice can state",
                responses={k: v for k, v in _ERRORS.items() if k in (401, 403, 429)})
    async def reasons(_principal: Annotated[Principal, Security(authorize)]) -> list[ReasonOut]:
        """The keys ``notice_reasons`` takes on ``/decisions/{id}/override``, with the words the notice prints;
        ``other`` is chosen as ``other:<the reason in words>``."""
        return [ReasonOut(key=k, text=t) for k, t in REASONS.items()]

    @router.post("/score", response_model=ScoreOut | BatchOut, summary="Score one application or a batch",
                 responses={**_ERRORS, **_CONFLICT,
                            503: {"model": ProblemOut, "description": "No model can serve"}})
    async def score(request: Request, body: ScoreRequest,  # type: ignore[valid-type]
                    principal: Annotated[Principal, Security(authorize, scopes=["score"])],
                    idempotency_key: IdempotencyKey = None) -> JSONResponse:
        """Validates, scores and records the application(s) (one transaction, with audit rows), as the
        console does. A batch holds 1 to ``max_batch`` applications; a larger one is refused with 422
        (and any body over ``max_body_bytes`` with 413). Invalid batches record nothing."""
        ctx = get_ctx(request)
        svc = ctx.services
        engine = ctx.settings.model.engine

        parsed: BaseModel = body
        single = "applications" not in type(parsed).model_fields
        if not single:  # a batch counts as its applications against the rate limit
            await charge(ctx, principal, len(getattr(parsed, "applications")) - 1)  # noqa: B009
        if single and idempotency_key is None:  # the common case: the API's scoring thread, group commit
            r = await ctx.scorer.submit((parsed.model_dump(exclude_unset=True), principal.submitter(), engine))
            record_scores(svc.metrics, [r])
            return JSONResponse(score_out(r))

        def answer(results: list[ScoreResult]) -> dict[str, Any]:
            return {"results": [score_out(r) for r in results]} if not single else score_out(results[0])

        def work(finish: Finish | None) -> tuple[int, dict[str, Any]]:
            # the idempotent answer is stored in the scoring transaction: it commits exactly when the scores do
            also = None if finish is None else (lambda s, saved: finish(s, 200, answer(saved)))
            if not single:
                raws = [a.model_dump(exclude_unset=True) for a in getattr(parsed, "applications")]  # noqa: B009
                results = svc.scoring.score_many(raws, submitter=principal.submitter(), engine=engine, source="api",
                                                 also=also)
            else:
                job = svc.scoring.prepare(parsed.model_dump(exclude_unset=True), submitter=principal.submitter(),
                                          engine=engine)
                results = svc.scoring.record([job], source="api", also=also)
            record_scores(svc.metrics, results)
            return 200, answer(results)

        return await _respond(ctx, request, principal, idempotency_key,
                              lambda: parsed.model_dump(mode="json", exclude_unset=True), work)

    @router.get("/decisions/{decision_id}", response_model=DecisionOut, summary="A scored decision",
                responses={**_ERRORS, **_NOT_FOUND})
    def get_decision(request: Request, decision_id: DecisionId,
                     principal: Annotated[Principal, Security(authorize, scopes=["decisions:read"])]) -> DecisionOut:
        """The stored score (never re-scored), the application and the latest human decision. For an
        application decided without the AI, an officer gets the application without the model's output."""
        svc = get_ctx(request).services
        actor = principal.actor()
        case = svc.workspace.case(decision_id, actor=actor)
        try:
            result = svc.workspace.result(decision_id, actor=actor)
            score, attributions = ScoreOut.model_validate(score_out(result, reveal=True)), result.attributions
        except AIHidden:
            score, attributions = hidden(case.prediction_id, case.application_id, case.arm, case.phase), None
        current = svc.decisions.current(case.application_id, actor=actor) if principal.kind == "user" else None
        return DecisionOut(
            decision_id=case.prediction_id, score=score, attributions=attributions,
            application=CaseOut(features=case.features, loan_amount=case.loan_amount, applied_at=case.applied_at,
                                applicant_masked=svc.pii.summary(case.application_id,
                                                                            actor=actor).applicant_masked),
            decision=DecisionViewOut.model_validate(current, from_attributes=True) if current else None)

    @router.post("/decisions/{decision_id}/explanation", response_model=ExplanationOut, status_code=201,
                 summary="Explain a decision (stored with its audit row)",
                 responses={**_ERRORS, **_NOT_FOUND, **_CONFLICT})
    async def explain(request: Request, decision_id: DecisionId,
                      principal: Annotated[Principal, Security(authorize, scopes=["explain"])],
                      idempotency_key: IdempotencyKey = None) -> JSONResponse:
        ctx = get_ctx(request)

        def work(_finish: Finish | None) -> tuple[int, dict[str, Any]]:
            e = ctx.services.workspace.explain(decision_id, actor=principal.actor())
            reviewer = allowed(principal.role, Perm.REVIEW_MODEL_OUTPUT)  # the rejected text: reviewers only
            return 201, ExplanationOut(id=e.id, decision_id=decision_id, text=e.text, provider=e.provider,
                                       model=e.model, fact_check_ok=e.fact_check_ok, fallback_used=e.fallback_used,
                                       verdict=verdict(e.failures), failures=e.failures if reviewer else [],
                                       created_at=e.created_at).model_dump(mode="json")

        return await _respond(ctx, request, principal, idempotency_key, lambda: None, work)

    @router.post("/decisions/{decision_id}/questions", response_model=AnswerOut, status_code=201,
                 summary="Ask a question about a decision (stored with its audit row)",
                 responses={**_ERRORS, **_NOT_FOUND, **_CONFLICT})
    async def ask(request: Request, decision_id: DecisionId, body: QuestionIn,
                  principal: Annotated[Principal, Security(authorize, scopes=["explain"])],
                  idempotency_key: IdempotencyKey = None) -> JSONResponse:
        """The same conversation as the console and ``creditrisk ask``: the answer, its intent, refusal kind,
        conversation id (pass it back for a follow-up), the facts used, who answered and the fact-check verdict.
        An over-long question, or a conversation id that is unknown or another decision's, answers 422."""
        ctx = get_ctx(request)

        def work(_finish: Finish | None) -> tuple[int, dict[str, Any]]:
            a = ctx.services.workspace.ask(decision_id, body.question, actor=principal.actor(),
                                           conversation_id=body.conversation_id)
            data = a.as_json()
            out = AnswerOut(id=a.id, decision_id=decision_id, conversation_id=a.conversation_id or "",
                            question=a.question, answer=a.text, intent=data["intent"], refusal=a.refusal,
                            facts=data["facts"], engine=a.engine, fact_check=data["fact_check"],
                            tool_calls=data["tool_calls"], at=a.at)
            return 201, out.model_dump(mode="json")

        return await _respond(ctx, request, principal, idempotency_key, lambda: body.model_dump(mode="json"), work)

    @router.post("/decisions/{decision_id}/override", response_model=DecisionViewOut, status_code=201,
                 summary="Accept or override the recommendation (people only)",
                 responses={**_ERRORS, **_NOT_FOUND, **_CONFLICT})
    async def decide(request: Request, decision_id: DecisionId, body: OverrideIn,
                     principal: Annotated[Principal, Security(authorize, scopes=["override"])],
                     idempotency_key: IdempotencyKey = None) -> JSONResponse:
        """The outcome equal to the recommendation accepts it; a different one is an override and needs a
        reason code and text. A material override waits for a second person (``pending_approval``)."""
        ctx = get_ctx(request)

        def work(_finish: Finish | None) -> tuple[int, dict[str, Any]]:
            # the decision service is idempotent on this key: a retry after an outage gets the committed decision
            v = ctx.services.decisions.decide(
                decision_id, actor=principal.actor(), outcome=body.outcome, reason_code=body.reason_code,
                reason_text=body.reason_text, started_at=body.started_at, notice_reasons=body.notice_reasons,
                idempotency_key=service_key(principal, idempotency_key))
            out = DecisionViewOut.model_validate(v, from_attributes=True).model_dump(mode="json")
            return (200 if v.replayed else 201), out

        return await _respond(ctx, request, principal, idempotency_key, lambda: body.model_dump(mode="json"), work)

    return router
