"""RFC 9457 problem details for every error the API returns, and the handlers that make them.

A problem never repeats what the caller sent: validation errors keep their location (field names
that look like identifiers) and a message from a fixed set, never the input value; service errors
are answered with their message constants (which carry no applicant data) or a fixed text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.decisioning import FEATURE_OFF, AIHidden
from backend.domain import (
    ALREADY_DECIDED,
    KEY_REUSED,
    NOT_A_MANAGER,
    NOT_ALLOWED,
    NOT_FOUND,
    NOT_PENDING,
    STALE_PREDICTION,
    ApplicationInvalid,
    DecisionError,
    DecisionNotFound,
)
from backend.models import ModelUnavailable
from backend.scoring import ApplicationConflict

log = logging.getLogger("creditrisk.api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "/problems/"
GENERIC_MSG = "Invalid value."
UNRECOGNISED = "(unrecognised field)"
MAX_ERRORS = 50
CONFLICT_DETAIL = ("This application id was already scored with different details; use a new id for a new "
                   "application (nothing was recorded).")
UNAVAILABLE_DETAIL = "No model can serve right now; try again later (the readiness probe says why)."
INTERNAL_DETAIL = "An unexpected error occurred; it has been logged with the request id."
DB_UNAVAILABLE_DETAIL = ("The database is unavailable right now; retry after the indicated seconds. A retry with the "
                         "same Idempotency-Key returns what was recorded, if anything was.")
DB_RETRY_AFTER = "5"
_LOC_OK = re.compile(r"^[A-Za-z0-9_:.\-]{1,64}$")
#: pydantic error types whose message never contains the input value
SAFE_TYPES = frozenset({
    "missing", "extra_forbidden", "float_type", "int_type", "int_from_float", "int_parsing", "float_parsing",
    "string_type", "bool_type", "dict_type", "list_type", "model_type", "model_attributes_type", "literal_error",
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number", "too_long",
    "too_short", "string_too_long", "string_too_short", "string_pattern_mismatch", "union_tag_not_found",
    "union_tag_invalid", "value_error", "timezone_aware", "datetime_type", "datetime_parsing",
    "datetime_from_date_parsing", "enum", "multiple_of",
})
_CONFLICTS = (KEY_REUSED, ALREADY_DECIDED, STALE_PREDICTION, NOT_PENDING)
_FORBIDDEN = (NOT_ALLOWED, NOT_A_MANAGER)
_FEATURE_OFF = FEATURE_OFF.split("}", 1)[1].split("{", 1)[0]  # " are switched off in the current rollout phase ("


class Problem(HTTPException):
    """An error answered as ``application/problem+json``; ``slug`` names its type."""

    def __init__(self, status: int, slug: str, title: str, detail: str | None = None, *,
                 headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=dict(headers or {}))
        self.slug, self.title, self.extra = slug, title, dict(extra or {})


def problem_body(status: int, slug: str, title: str, detail: str | None, request_id: str | None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": TYPE_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request_id:
        body["request_id"] = request_id
    body.update(extra or {})
    return body


def problem_response(request: Request | None, status: int, slug: str, title: str, detail: str | None = None, *,
                     headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None) -> JSONResponse:
    rid = None
    if request is not None:
        state = request.scope.setdefault("state", {})
        rid, state["problem"] = state.get("request_id"), slug  # the access log names the problem type
    return JSONResponse(problem_body(status, slug, title, detail, rid, extra), status_code=status,
                        headers=dict(headers or {}), media_type=PROBLEM_JSON)


def _prefix(template: str) -> str:
    return template.split("{", 1)[0]


def _loc(part: Any) -> Any:
    if isinstance(part, int):
        return part
    text = str(part)
    return text if _LOC_OK.match(text) else UNRECOGNISED


def sanitize_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Location, type and a message that never contains the input (see :data:`SAFE_TYPES`)."""
    out = []
    for e in list(errors)[:MAX_ERRORS]:
        kind = str(e.get("type", "value_error"))
        out.append({"loc": [_loc(p) for p in e.get("loc", ())], "type": kind,
                    "msg": str(e.get("msg", GENERIC_MSG))[:300] if kind in SAFE_TYPES else GENERIC_MSG})
    return out


# -- handlers -------------------------------------------------------------------------------------
async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(request, exc.status_code, exc.slug, exc.title, exc.detail, headers=exc.headers,
                            extra=exc.extra)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: ("not-found", "Not found"), 405: ("method-not-allowed", "Method not allowed")}
    slug, title = titles.get(exc.status_code, ("http-error", "Request refused"))
    return problem_response(request, exc.status_code, slug, title, headers=exc.headers)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(request, 422, "validation-error", "The request is not valid",
                            "See 'errors' for each field that was refused.",
                            extra={"errors": sanitize_errors(exc.errors())})


async def _invalid_application(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApplicationInvalid)
    errors = [{"loc": ["body", _loc(e.field)], "type": "invalid_feature", "msg": e.message}
              for e in exc.errors[:MAX_ERRORS]]
    return problem_response(request, 422, "invalid-application", "The application is not valid for the model",
                            "See 'errors' for each feature that was refused.", extra={"errors": errors})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 404, "not-found", "Not found", NOT_FOUND)


async def _ai_hidden(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 403, "ai-hidden", "Decided without the AI", str(exc))


async def _decision_error(request: Request, exc: Exception) -> JSONResponse:
    msg = str(exc)
    if any(msg.startswith(_prefix(t)) for t in _CONFLICTS):
        return problem_response(request, 409, "decision-conflict", "The decision cannot be recorded now", msg)
    if msg in _FORBIDDEN:
        return problem_response(request, 403, "forbidden", "Not allowed", msg)
    if _FEATURE_OFF in msg:
        return problem_response(request, 409, "feature-off", "Switched off in this rollout phase", msg)
    return problem_response(request, 422, "decision-invalid", "The decision request is not valid", msg)


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 409, "application-conflict", "Application id already used", CONFLICT_DETAIL)


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (connection refused or lost, pool exhausted),
    not that a statement was wrong."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    """An outage is 503 with ``Retry-After`` (a client may retry); any other database error is a 500 problem."""
    rid = request.scope.get("state", {}).get("request_id")
    if database_unavailable(exc):
        log.warning("database unavailable (%s) in %s (request %s)", type(exc).__name__, request.url.path, rid)
        return problem_response(request, 503, "database-unavailable", "Service unavailable", DB_UNAVAILABLE_DETAIL,
                                headers={"Retry-After": DB_RETRY_AFTER})
    log.error("database error %s in %s (request %s)", type(exc).__name__, request.url.path, rid, exc_info=exc)
    return problem_response(request, 500, "internal-error", "Internal error", INTERNAL_DETAIL)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("model unavailable: %s", str(exc)[:300])
    return problem_response(request, 503, "model-unavailable", "Service unavailable", UNAVAILABLE_DETAIL,
                            headers={"Retry-After": "30"})


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApplicationInvalid, _invalid_application)
    app.add_exception_handler(DecisionNotFound, _not_found)
    app.add_exception_handler(AIHidden, _ai_hidden)
    app.add_exception_handler(DecisionError, _decision_error)
    app.add_exception_handler(ApplicationConflict, _conflict)
    app.add_exception_handler(ModelUnavailable, _unavailable)
    for kind in (sa_exc.DBAPIError, sa_exc.TimeoutError, sa_exc.DisconnectionError):
        app.add_exception_handler(kind, _database)
