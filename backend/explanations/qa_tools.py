"""The tools an LLM may call in a decision conversation: the project's own grounded engines.

Each tool returns ``{"text": <sentences written by the offline engine>, "data": <its figures>}``; the
LLM may quote those sentences or restate the decision record, and the fact-check
(:mod:`qa_llm`) holds it to exactly that. An unknown tool or malformed arguments raise
:class:`ToolError` (the turn then falls back to the offline engine).

* ``decision_record`` — the recommendation, PD, band, risk class, policy reasons and principal reasons;
* ``rescore`` — a what-if: ``changes`` maps non-protected features to values (derived features recomputed);
* ``nearest_approvals`` — "what would it take?" over the actionable levers, with costs;
* ``compare_with_approved`` — one feature against approved applications in the book;
* ``define_feature`` — what a feature means and this applicant's value;
* ``policy`` — the policy that applied (cutoff, confidence threshold, amount cap);
* ``application_history`` — earlier decisions and overrides of this application, and this conversation's turns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.domain import FEATURES_BY_NAME, PROTECTED
from backend.explanations.questions import DecisionQA
from backend.explanations.questions_compare import ComparisonStats
from backend.explanations.questions_intents import Intent
from backend.scoring import ScoreResult

_FEATURE = {"type": "string", "description": "A feature name from the model's catalog, e.g. debt_to_income"}
TOOLS: dict[str, dict[str, Any]] = {
    "decision_record": {"description": "The recorded decision: recommendation, probability of default, band, risk "
                                       "class, policy reasons and principal reasons with the applicant's values.",
                        "parameters": {"type": "object", "properties": {}, "additionalProperties": False}},
    "rescore": {"description": "Re-score a hypothetical version of this application with the model that decided "
                               "it. Derived features (payment, ratios, residual income) are recomputed. Protected "
                               "characteristics cannot be changed. Use revolving_paydown (dollars) to pay down cards.",
                "parameters": {"type": "object", "properties": {"changes": {
                    "type": "object", "description": "feature name -> new numeric value",
                    "additionalProperties": {"type": "number"}}}, "required": ["changes"],
                    "additionalProperties": False}},
    "nearest_approvals": {"description": "The smallest changes to amount, term, down payment, autopay, revolving "
                                         "balances or documented income that the model would approve, with costs.",
                          "parameters": {"type": "object", "properties": {"levers": {
                              "type": "array", "items": {"type": "string"}}}, "additionalProperties": False}},
    "compare_with_approved": {"description": "Where this applicant's value of one feature sits among approved "
                                             "applications in the book.",
                              "parameters": {"type": "object", "properties": {"feature": _FEATURE},
                                             "required": ["feature"], "additionalProperties": False}},
    "define_feature": {"description": "What a feature means, and this applicant's value.",
                       "parameters": {"type": "object", "properties": {"feature": _FEATURE},
                                      "required": ["feature"], "additionalProperties": False}},
    "policy": {"description": "The decision policy that applied: score cutoff, confidence threshold, amount cap.",
               "parameters": {"type": "object", "properties": {}, "additionalProperties": False}},
    "application_history": {"description": "Earlier decisions, overrides and questions about this application.",
                            "parameters": {"type": "object", "properties": {}, "additionalProperties": False}},
}


class ToolError(ValueError):
    """An unknown tool, or arguments that are not what its schema says."""


@dataclass
class ToolBox:
    """Runs tools for one decision; ``calls`` records every call (name, arguments, result)."""

    qa: DecisionQA
    result: ScoreResult
    comparison: ComparisonStats | None = None
    history: Callable[[], dict[str, Any]] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def call(self, name: str, raw_args: str | Mapping[str, Any] | None) -> dict[str, Any]:
        if name not in TOOLS:
            raise ToolError(f"unknown tool {name[:60]!r}")
        args = _args(raw_args)
        out = getattr(self, "_" + name)(args)
        self.calls.append({"name": name, "arguments": args, "result": out})
        return out

    def texts(self) -> list[str]:
        return [c["result"]["text"] for c in self.calls if c["result"].get("text")]

    # -- the tools ---------------------------------------------------------------------------------
    def _decision_record(self, args: dict[str, Any]) -> dict[str, Any]:
        _only(args, set())
        a = self.qa.ask("why was this decided", result=self.result)
        return {"text": a.text, "data": a.facts}

    def _rescore(self, args: dict[str, Any]) -> dict[str, Any]:
        _only(args, {"changes"})
        changes = args.get("changes")
        if not isinstance(changes, dict) or not changes:
            raise ToolError("rescore needs changes: {feature: number}")
        clean: dict[str, float] = {}
        for k, v in changes.items():
            if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float):
                raise ToolError("rescore changes must map feature names to numbers")
            clean[k] = float(v)
        a = self.qa._what_if(Intent("what_if", changes=tuple(clean.items())), self.result)
        return {"text": a.text, "data": a.facts}

    def _nearest_approvals(self, args: dict[str, Any]) -> dict[str, Any]:
        _only(args, {"levers"})
        levers = args.get("levers") or []
        if not isinstance(levers, list) or not all(isinstance(x, str) for x in levers):
            raise ToolError("levers must be a list of names")
        a = self.qa._counterfactual(Intent("counterfactual", features=tuple(levers)), self.result)
        return {"text": a.text, "data": a.facts}

    def _compare_with_approved(self, args: dict[str, Any]) -> dict[str, Any]:
        a = self.qa._compare(Intent("compare", features=(_feature(args),)), self.result, self.comparison)
        return {"text": a.text, "data": a.facts}

    def _define_feature(self, args: dict[str, Any]) -> dict[str, Any]:
        a = self.qa._define(Intent("definition", features=(_feature(args),)), self.result)
        return {"text": a.text, "data": a.facts}

    def _policy(self, args: dict[str, Any]) -> dict[str, Any]:
        _only(args, set())
        model = self.qa.scoring.models.get(self.result.model_version)
        p = self.qa.scoring.policy_for(model, self.qa.scoring.phase_at(self.qa.scoring.clock.now()))
        text = (f"The policy in force: a risk score at or above {p.score_cutoff:.2f} is high risk; a confidence "
                f"below {p.confidence_threshold:.2f} or a loan amount above ${p.loan_amount_cap:,.0f} is sent to "
                f"manual review.")
        return {"text": text, "data": p.as_dict()}

    def _application_history(self, args: dict[str, Any]) -> dict[str, Any]:
        _only(args, set())
        data = self.history() if self.history is not None else {"decisions": []}
        rows = data.get("decisions", [])
        if not rows:
            text = "No decision has been recorded on this application yet."
        else:
            text = " ".join(f"{r['at']}: {r['outcome'].replace('_', ' ')} ({r['status'].replace('_', ' ')}"
                            + (", an override" if r.get("override") else "") + ")." for r in rows)
        return {"text": text, "data": data}


def _args(raw: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ToolError("the arguments are not JSON") from None
    else:
        parsed = dict(raw)
    if not isinstance(parsed, dict):
        raise ToolError("the arguments are not a JSON object")
    return parsed


def _only(args: dict[str, Any], allowed: set[str]) -> None:
    extra = set(args) - allowed
    if extra:
        raise ToolError(f"unexpected arguments: {', '.join(sorted(extra))[:80]}")


def _feature(args: dict[str, Any]) -> str:
    _only(args, {"feature"})
    name = args.get("feature")
    if not isinstance(name, str) or name not in FEATURES_BY_NAME or name in PROTECTED:
        raise ToolError("feature must be a non-protected catalog feature")
    return name
