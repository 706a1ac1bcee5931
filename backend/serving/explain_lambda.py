"""AWS Lambda entry point running the explanation engine (``CREDITRISK_LLM__PROVIDER=lambda`` calls it).

Deploy with the handler ``backend.serving.explain_lambda.handler``. The function's own engine
comes from the function's environment: the same ``CREDITRISK_LLM__*`` variables as the console
(``PROVIDER``, ``BASE_URL``, ``API_KEY``, ``MODEL``, ``TIMEOUT``, ``MAX_RETRIES``, ``FALLBACK__...``,
``PRICES``), except that its provider may not be ``lambda`` (it would invoke itself). The engine is
built once per container, on the first event (cold start), and reused while the container is warm.

Event: ``{"record": DecisionRecord.to_dict()}``. Reply::

    {"ok": true, "text", "provider", "model", "fallback_used", "fact_check_ok", "failures",
     "usage": [LLMUsage as a dict, one per LLM call]}
    {"ok": false, "error": {"kind": "bad_request" | "config", "message": ...}}

Or ``{"qa": {"system", "messages", "tools"}}``: one LLM round of the decision conversation with tools, answered
with the function's own provider's ``chat_tools`` (:mod:`backend.serving.explain_lambda_qa`; the function never
runs a tool). Its refusals have the same shape, plus ``{"kind": "provider", "message", "provider_kind"}`` when the
function's LLM call failed (``provider_kind`` one of the explanation engine's error kinds).

The engine fact-checks every LLM answer here; the console checks the returned text again. Error
messages name the field or the setting, never a value from the event, and carry no traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.container.adapters import build_engine
from backend.explanations import (
    DecisionRecord,
    ExplanationEngine,
    LLMSettings,
    LLMUsage,
    RecordError,
    classify_error,
    fact_check,
)
from backend.platform.config import ENV_PREFIX, SETTINGS_ERROR, SettingsError
from backend.serving.explain_lambda_qa import QAEventError, answer, parse_qa

BAD_REQUEST, CONFIG, PROVIDER = "bad_request", "config", "provider"
EVENT_NOT_OBJECT = 'the event must be a JSON object {"record": {...}} or {"qa": {...}}'
EVENT_FIELDS = 'the event must have exactly one field, "record" or "qa"'
NO_TOOL_CALLING = ("the function's own CREDITRISK_LLM__PROVIDER must be openai or anthropic to answer questions "
                   "with tools (the template has no tool calling)")
LAMBDA_RECURSION = ("the function's own CREDITRISK_LLM__PROVIDER and CREDITRISK_LLM__FALLBACK__PROVIDER must be "
                    "template, openai or anthropic, not lambda (the function would invoke itself)")

log = logging.getLogger(__name__)
_ENGINE: ExplanationEngine | None = None
_LOCK = threading.Lock()


class _FunctionSettings(BaseSettings):
    """Only the LLM settings, from the function's environment (no ``.env`` file, no other backend)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")
    llm: LLMSettings = LLMSettings()


def function_settings() -> LLMSettings:
    """The function's LLM settings; raises :class:`SettingsError` naming the variable."""
    try:
        llm = _FunctionSettings().llm
    except ValidationError as exc:
        err = exc.errors()[0]
        env = ENV_PREFIX + "__".join(str(p).upper() for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        raise SettingsError(SETTINGS_ERROR.format(env=env, msg=msg)) from None
    if "lambda" in (llm.provider, llm.fallback.provider):
        raise SettingsError(LAMBDA_RECURSION)
    return llm


def engine() -> ExplanationEngine:
    """The container's engine, built on the first call (cold start) and cached while warm."""
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            settings = function_settings()
            _ENGINE = build_engine(settings)
            log.info("explanation engine built: provider=%s fallback=%s", settings.provider,
                     settings.fallback.provider)
        return _ENGINE


def parse_event(event: Any) -> DecisionRecord:
    """The decision record of an event; raises :class:`RecordError` (message without values)."""
    if not isinstance(event, dict):
        raise RecordError(EVENT_NOT_OBJECT)
    if set(event) != {"record"}:
        raise RecordError(EVENT_FIELDS)  # a "qa" event is dispatched before this (see ``handler``)
    return DecisionRecord.from_dict(event["record"])


def usage_dict(u: LLMUsage) -> dict[str, Any]:
    d = dataclasses.asdict(u)
    d["failed_claims"] = list(u.failed_claims)
    d["created_at"] = u.created_at.isoformat() if u.created_at is not None else None
    return d


def _refusal(kind: str, message: str, **extra: str) -> dict[str, Any]:
    log.warning("explanation refused (%s): %s", kind, message)
    return {"ok": False, "error": {"kind": kind, "message": message, **extra}}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Explain one decision record, or answer one round of a conversation with tools (module docstring)."""
    if isinstance(event, dict) and set(event) == {"qa"}:
        return _qa(event["qa"])
    try:
        record = parse_event(event)
    except RecordError as exc:
        return _refusal(BAD_REQUEST, str(exc))
    try:
        eng = engine()
    except SettingsError as exc:
        return _refusal(CONFIG, str(exc))
    out = eng.explain(record)
    exp = out.explanation
    shown = fact_check(exp.text, record)  # the returned text is checked too (template included)
    failures = [{"claim": f.claim, "kind": f.kind, "detail": f.detail} for f in [*out.failures, *shown.failures]]
    return {"ok": True, "text": exp.text, "provider": exp.provider, "model": exp.model,
            "fallback_used": bool(exp.fallback_used), "fact_check_ok": not failures, "failures": failures,
            "usage": [usage_dict(u) for u in out.usage]}


def _qa(body: Any) -> dict[str, Any]:
    """One LLM round with tools through the function's own provider (never a tool run here)."""
    try:
        system, messages, tools = parse_qa(body)
    except QAEventError as exc:
        return _refusal(BAD_REQUEST, str(exc))
    try:
        chat = engine().primary
    except SettingsError as exc:
        return _refusal(CONFIG, str(exc))
    if chat is None or not callable(getattr(chat, "chat_tools", None)):
        return _refusal(CONFIG, NO_TOOL_CALLING)
    try:
        return answer(chat, system, messages, tools)
    except Exception as exc:  # noqa: BLE001 - every provider failure is a reply the service falls back on
        err = classify_error(exc)
        return _refusal(PROVIDER, str(err)[:300], provider_kind=err.kind)


__all__ = ["engine", "function_settings", "handler", "parse_event", "usage_dict"]
