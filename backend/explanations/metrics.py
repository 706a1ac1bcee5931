"""Domain events → metrics: scored applications and explanations (with their LLM calls).

Each helper never raises: a metrics failure is logged and the caller's work goes on. Labels come
from bounded values only (model role and version, configured provider and model names, fixed
enumerations), never from an applicant's data or an id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from backend.platform.metrics_catalog import (
    ERRORS,
    EXPLANATION_FALLBACKS,
    EXPLANATIONS,
    LLM_CALLS,
    LLM_COST,
    LLM_TOKENS,
    MODEL_FALLBACKS,
    SCORES,
    label_value,
)
from backend.platform.ports import Metrics

log = logging.getLogger("creditrisk.metrics")
#: ``LLMUsage.fact_check`` → ``llm_calls`` result label.
CALL_RESULTS = {"passed": "passed", "failed": "failed_check", "not_checked": "error"}


def record_scores(metrics: Metrics | None, results: Iterable[Any]) -> None:
    """Count scored applications by the model that served them, and fallbacks by model version."""
    if metrics is None:
        return
    try:
        for r in results:
            role = "fallback" if r.model_role == "fallback" else "primary"
            metrics.inc(SCORES, {"model_role": role})
            if role == "fallback":
                metrics.inc(MODEL_FALLBACKS, {"model_version": label_value(r.model_version)})
    except Exception:  # noqa: BLE001 - metrics never fail scoring
        log.exception("could not record scoring metrics")


def _error_kind(error: str) -> str:
    from backend.explanations.providers import ERROR_KINDS

    kind = error.split(":", 1)[0].strip()
    return kind if kind in ERROR_KINDS else "other"


def record_explanation(metrics: Metrics | None, outcome: Any, *, llm_configured: bool) -> None:
    """Count one explanation (``ExplanationOutcome``): what wrote it, whether it fell back and why, and
    every LLM call's result, tokens and cost (the same ``LLMUsage`` list the ``llm_usage`` rows hold)."""
    if metrics is None:
        return
    try:
        exp = outcome.explanation
        served_by = "template" if exp.provider == "template" else ("fallback" if exp.fallback_used else "primary")
        metrics.inc(EXPLANATIONS, {"served_by": served_by})
        if llm_configured and served_by != "primary":
            first = outcome.usage[0] if outcome.usage else None
            reason = ("error" if first is not None and first.error
                      else "fact_check" if first is not None and first.fact_check == "failed" else "other")
            metrics.inc(EXPLANATION_FALLBACKS, {"to": "template" if served_by == "template" else "fallback_llm",
                                                "reason": reason})
        for u in outcome.usage:
            provider, model = label_value(u.provider), label_value(u.model or "(default)")
            metrics.inc(LLM_CALLS, {"provider": provider, "model": model,
                                    "result": CALL_RESULTS.get(u.fact_check, "error")})
            if u.error:
                metrics.inc(ERRORS, {"component": "llm", "kind": _error_kind(u.error)})
            if u.input_tokens:
                metrics.inc(LLM_TOKENS, {"provider": provider, "model": model, "direction": "input"},
                            float(u.input_tokens))
            if u.output_tokens:
                metrics.inc(LLM_TOKENS, {"provider": provider, "model": model, "direction": "output"},
                            float(u.output_tokens))
            if u.cost_usd:
                metrics.inc(LLM_COST, {"provider": provider, "model": model}, float(u.cost_usd))
    except Exception:  # noqa: BLE001 - metrics never fail an explanation
        log.exception("could not record explanation metrics")
