"""Decision Q&A: an officer's questions about one decision, answered offline and deterministically.

``DecisionQA(scoring).ask(question, result=score_result, comparison=stats, state=previous)`` returns an
:class:`Answer`. Intents (:mod:`backend.explanations.questions_intents`): ``why``, ``what_if`` (stated
values, any non-protected feature, re-scored and labelled hypothetical), ``counterfactual`` ("what
would it take?", :mod:`qa_search`), ``compare``, ``definition``, ``out_of_scope``, ``help``; refusals
name their kind (``protected``, ``other_applicant``, ``instruction``). ``state`` is the conversation's
memory (the previous turn's intent, the what-if changes so far and the features it named): a follow-up
("and with a 48-month term as well?") adds to the earlier what-if.

Grounding: every number in an answer comes from the decision record (``result``), from re-scoring
with the model that decided (:mod:`qa_whatif`), or from the comparison statistics; ``facts`` carries
those numbers. A question never changes the decision: ``result`` is read, never mutated, and nothing
is persisted here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from backend.domain import FEATURES_BY_NAME, MUTABLE_FEATURES, PROTECTED, screen_reason
from backend.explanations.counterfactuals import Rescore, WhatIfInvalid
from backend.explanations.qa_search import LEVER_WORDS, SEARCH_LEVERS, cost_text, search
from backend.explanations.qa_whatif import PAYDOWN, QAWhatIf
from backend.explanations.questions_compare import ComparisonStats, FrameComparisonStats
from backend.explanations.questions_intents import Intent, classify, normalise, resolve
from backend.explanations.record import RECOMMENDATION_WORDS, format_value
from backend.scoring import ScoreResult, ScoringService, risk_band

__all__ = ["Answer", "ComparisonStats", "DecisionQA", "FrameComparisonStats", "HELP", "OUT_OF_SCOPE", "REFUSALS"]

ENGINE = "offline"
REFUSALS = {
    "protected": "I can't discuss protected characteristics (such as sex, age, race, religion, national origin, "
                 "marital status, disability or receipt of public assistance) or their proxies such as where "
                 "someone lives: the model does not use them and a credit decision may not. Ask about this "
                 "decision's own reasons instead.",
    "other_applicant": "I can only discuss this decision. Questions about other applicants or applications (their "
                       "names, ids, decisions or personal data) are refused here; open that application and ask "
                       "there, if your role may see it.",
    "instruction": "Questions never change a decision or how I answer. To record a different decision, use the "
                   "override form (it needs a reason, and an approval override needs a second person).",
    "too_long": "That question is too long; ask one short question about this decision.",
}
HELP = ("You can ask about this decision:\n"
        "- Why: \"Why was this denied?\" (the reasons with the applicant's values)\n"
        "- What would it take: \"What would change the outcome?\" (the nearest approvals and their cost)\n"
        "- What if: \"What if their income were $80,000?\", \"with a 48-month term?\", \"credit score 700?\" "
        "(re-scored with the model, hypothetical)\n"
        "- Compare: \"How does the DTI compare with approved applicants?\"\n"
        "- Define: \"What is revolving utilization?\"")
OUT_OF_SCOPE = ("That is outside what I can answer here. I answer questions about this decision only: why it was "
                "made, what-ifs, what would change it, how a value compares with approved applications, and "
                "what a feature means.")
NO_COMPARISON = "No statistics of approved applications are available to compare with."
ALREADY_APPROVED = "This application is already recommended for approval ({pd} probability of default); no change is needed."
NONE_FOUND = ("No change within bounds turns this into an approval or brings the risk below the cutoff.\n\n"
              "Tried, alone and in pairs ({n} re-scored variants): {levers}.")
NO_VALUE = ("Which value should I try? For example \"What if the loan amount were $15,000?\" or \"What if their "
            "income were $80,000?\".")
_FOLLOW_UP = re.compile(r"^(and|also|plus|what about|how about|then|ok and|same but)\b|as well|\btoo\b|\balso\b|"
                        r"on top|in addition|additionally")

FEATURE_NOTES: dict[str, str] = {
    "revolving_utilization": "the share of the applicant's revolving credit limits (credit cards, lines) "
                             "currently in use: balances divided by limits",
    "debt_to_income": "monthly housing and other debt payments divided by gross monthly income",
    "payment_to_income": "the new loan's estimated monthly payment divided by gross monthly income",
    "loan_to_income": "the requested amount divided by annual gross income",
    "loan_to_value": "what is owed on the collateral, including this loan, divided by the collateral's value",
    "residual_income_monthly": "gross monthly income left after housing, other debts and the new payment",
    "credit_score": "the credit bureau's score summarising the applicant's credit file (300 to 850)",
    "estimated_monthly_payment": "the new loan's amortized monthly payment at the product's fixed rate "
                                 "for the purpose, over the requested term",
    "housing_to_income": "monthly rent or mortgage payment divided by gross monthly income",
}  # fmt: skip


@dataclass(frozen=True)
class Answer:
    text: str
    intent: str
    refused: bool = False
    facts: dict[str, Any] = field(default_factory=dict)
    counterfactuals: list[dict[str, Any]] = field(default_factory=list)
    refusal: str | None = None
    state: dict[str, Any] = field(default_factory=dict)  # the conversation's memory after this turn
    engine: str = ENGINE
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # an LLM turn's calls (name, args, result)
    fact_check: dict[str, Any] | None = None  # an LLM turn's verdict (None: the offline engine, grounded)
    usage: list[Any] = field(default_factory=list)  # LLMUsage of an LLM turn's calls


def _pct(p: float) -> str:
    return f"{p * 100:.1f}%"


def _rec(rec: str) -> str:
    return RECOMMENDATION_WORDS.get(rec, rec.replace("_", " "))


def _label(name: str) -> str:
    if name == PAYDOWN:
        return "revolving balance paid down"
    f = FEATURES_BY_NAME.get(name)
    return f.description if f is not None else name.replace("_", " ")


def _value(name: str, v: Any) -> str:
    return f"${float(v):,.0f}" if name == PAYDOWN else format_value(name, v)


class DecisionQA:
    """Answers questions about one scored decision (see the module docstring)."""

    def __init__(self, scoring: ScoringService) -> None:
        self.scoring = scoring
        self.engine = QAWhatIf(scoring)

    def ask(self, question: str, *, result: ScoreResult, comparison: ComparisonStats | None = None,
            state: dict[str, Any] | None = None) -> Answer:
        intent = self._with_memory(classify(question or ""), normalise(question or ""), state or {})
        if intent.name == "refused":
            kind = intent.refusal or "instruction"
            return Answer(REFUSALS.get(kind, REFUSALS["instruction"]), "refused", refused=True,
                          facts={"refusal": kind}, refusal=kind if kind != "too_long" else "instruction",
                          state=dict(state or {}))
        if intent.name == "compare":
            answer = self._compare(intent, result, comparison)
        elif intent.name == "what_if":
            answer = self._what_if(intent, result)
        elif intent.name == "counterfactual":
            answer = self._counterfactual(intent, result)
        elif intent.name == "definition" and intent.features:
            answer = self._define(intent, result)
        elif intent.name == "why":
            answer = self._why(intent, result)
        elif intent.name == "out_of_scope":
            answer = Answer(OUT_OF_SCOPE, "out_of_scope")
        else:
            answer = Answer(HELP, "help" if intent.name != "definition" else "definition")
        memory = {"intent": answer.intent, "features": list(intent.features),
                  "changes": dict(intent.changes) if answer.intent == "what_if" else {}}
        return Answer(answer.text, answer.intent, answer.refused, answer.facts, answer.counterfactuals,
                      answer.refusal, memory)

    @staticmethod
    def _with_memory(intent: Intent, text: str, state: dict[str, Any]) -> Intent:
        """A follow-up adds to the previous what-if, or asks the previous compare/definition of new features."""
        prev = state.get("intent")
        follow = bool(_FOLLOW_UP.search(text)) or len(text.split()) <= 4
        if not prev or not follow or intent.name == "refused":
            return intent
        if prev == "what_if" and intent.name == "what_if":
            merged = {**{k: float(v) for k, v in (state.get("changes") or {}).items()}, **dict(intent.changes)}
            return replace(intent, changes=tuple(merged.items()))
        if prev in ("compare", "definition") and intent.features and not intent.changes and intent.name not in (
                "what_if", "counterfactual", "compare", "definition"):
            return replace(intent, name=prev)
        return intent

    # -- why --------------------------------------------------------------------------------------
    def _why(self, intent: Intent, r: ScoreResult) -> Answer:
        # the card's risk words (one function): a PD band such as "moderate (5% to 15%)" beside a denial misleads
        parts = [f"Recommendation: {_rec(r.recommendation)}. Probability of default {_pct(r.pd)}: "
                 f"{risk_band(r.recommendation, r.risk_class).lower()}."]
        if r.policy_reasons:
            parts.append("Sent to manual review because: " + "; ".join(r.policy_reasons) + ".")
        facts: dict[str, Any] = {"recommendation": r.recommendation, "pd": r.pd, "risk_class": r.risk_class,
                                 "policy_reasons": list(r.policy_reasons), "reasons": []}
        if r.reasons:
            lines = ["Principal reasons, most important first:"]
            for reason in r.reasons:
                feats = [f for f in reason.get("features", []) if f.get("name") not in PROTECTED]
                shown = ", ".join(f"{f['description']} {format_value(f['name'], f.get('value'))}" for f in feats)
                lines.append(f"- {screen_reason(reason['text'])}" + (f" ({shown})" if shown else ""))
                facts["reasons"].append({"code": reason["code"], "features": {
                    f["name"]: f.get("value") for f in feats}})
            parts.append("\n".join(lines))
        else:
            parts.append("No feature raised the risk enough to be a principal reason.")
        return Answer("\n\n".join(parts), "why", facts=facts)

    # -- what would it take ------------------------------------------------------------------------
    def _counterfactual(self, intent: Intent, r: ScoreResult) -> Answer:
        facts: dict[str, Any] = {"recommendation": r.recommendation, "pd": r.pd}
        if r.recommendation == "approve":
            return Answer(ALREADY_APPROVED.format(pd=_pct(r.pd)), "counterfactual", facts=facts)
        asked = [f for f in intent.features if f in SEARCH_LEVERS]
        if "revolving_balance" in intent.features or "revolving_utilization" in intent.features:
            asked.append(PAYDOWN)
        levers = asked or list(SEARCH_LEVERS)
        options, reached, n = search(self.engine, r, levers=levers)
        facts.update(reached=reached, evaluated=n)
        if not options:
            tried = ", ".join(LEVER_WORDS[lv] for lv in SEARCH_LEVERS if lv in levers)
            return Answer(NONE_FOUND.format(n=n, levers=tried), "counterfactual", facts=facts)
        head = ("Nearest approvals (re-scored with the same model; hypothetical until the applicant agrees "
                "and it is verified):" if reached == "approve" else
                "No change within bounds reaches an approval. These bring the risk below the cutoff, but the "
                "policy still sends them to manual review:")
        lines = [head]
        for opt in options:
            lines.append(f"- {self._change_text(opt)}: {_rec(opt.recommendation)}, probability of default "
                         f"{_pct(opt.pd)}{self._review_note(opt)}. Cost: {cost_text(opt, r.features)}.")
        text = (f"Currently: {_rec(r.recommendation)}, probability of default {_pct(r.pd)}.\n\n"
                + "\n".join(lines))
        return Answer(text, "counterfactual", facts=facts, counterfactuals=[o.as_dict() for o in options])

    # -- what if -----------------------------------------------------------------------------------
    def _what_if(self, intent: Intent, r: ScoreResult) -> Answer:
        changes = resolve(dict(intent.changes), r.features)
        if not changes:
            return Answer(NO_VALUE, "what_if")
        try:
            out = self.engine.what_if(r, changes)
        except WhatIfInvalid as exc:
            return Answer(f"Can't re-score that: {exc}.", "what_if", facts={"error": str(exc)})
        stated = "; ".join(f"{_label(k)} {_value(k, v)}" for k, v in changes.items())
        verified = [k for k in changes if k not in MUTABLE_FEATURES]
        label = ("Hypothetical, if verified" if verified else "Hypothetical, if the applicant chose it")
        parts = [f"{label}: {stated}.",
                 f"The model would {_rec(out.recommendation)}: probability of default {_pct(out.pd)} "
                 f"(recorded: {_pct(r.pd)}, {_rec(r.recommendation)}){self._review_note(out)}."]
        moved = [k for k in out.derived if k in FEATURES_BY_NAME and k not in PROTECTED][:5]
        if moved:
            parts.append("Recomputed with it: " + "; ".join(
                f"{_label(k)} {format_value(k, out.derived[k][0])} → {format_value(k, out.derived[k][1])}"
                for k in moved) + ".")
        parts.append("The recorded decision is unchanged.")
        facts = {"recommendation": r.recommendation, "pd": r.pd, "new_recommendation": out.recommendation,
                 "new_pd": out.pd, "changes": changes}
        return Answer("\n\n".join(parts), "what_if", facts=facts, counterfactuals=[out.as_dict()])

    @staticmethod
    def _change_text(opt: Rescore) -> str:
        parts = [f"pay down ${float(new):,.0f} of revolving balances" if k == PAYDOWN else
                 f"{_label(k)} {format_value(k, old)} → {format_value(k, new)}" for k, (old, new) in opt.changes.items()]
        moved = [k for k in ("loan_amount", "revolving_balance", "estimated_monthly_payment") if k in opt.derived]
        parts += [f"{_label(k)} {format_value(k, opt.derived[k][0])} → {format_value(k, opt.derived[k][1])}"
                  for k in moved]
        text = "; ".join(parts) if parts else "no change"
        return text[:1].upper() + text[1:]

    @staticmethod
    def _review_note(opt: Rescore) -> str:
        return f" (manual review: {'; '.join(opt.policy_reasons)})" if opt.policy_reasons else ""

    # -- compare -----------------------------------------------------------------------------------
    def _compare(self, intent: Intent, r: ScoreResult, stats: ComparisonStats | None) -> Answer:
        if stats is None or not getattr(stats, "available", lambda: True)():
            return Answer(NO_COMPARISON, "compare")
        names = [f for f in intent.features if f in r.features] or [
            f["name"] for reason in r.reasons for f in reason.get("features", [])][:3]
        lines, facts = [], {}
        for name in names:
            value = r.features.get(name)
            row = stats.describe(name, value)
            if row is None:
                lines.append(f"{_label(name).capitalize()}: not enough approved applications to compare.")
                continue
            facts[name] = {"value": value, **row}
            if "share_same" in row:
                lines.append(f"{_label(name).capitalize()} is {format_value(name, value)}; "
                             f"{row['share_same'] * 100:.0f}% of {row['count']:,} approved applications have the same.")
                continue
            q = row["quantiles"]
            lines.append(f"{_label(name).capitalize()} is {format_value(name, value)}, higher than "
                         f"{row['percentile']:.0f}% of {row['count']:,} approved applications (approved median "
                         f"{format_value(name, q[0.5])}, middle half {format_value(name, q[0.25])} to "
                         f"{format_value(name, q[0.75])}).")
        if not lines:
            return Answer("Name a feature to compare, e.g. \"How does the DTI compare with approved applicants?\"",
                          "compare")
        return Answer("\n\n".join(lines), "compare", facts=facts)

    # -- definitions -------------------------------------------------------------------------------
    def _define(self, intent: Intent, r: ScoreResult) -> Answer:
        lines, facts = [], {}
        for name in intent.features[:2]:
            feat = FEATURES_BY_NAME[name]
            note = FEATURE_NOTES.get(name, feat.description)
            line = f"{feat.description.capitalize()}: {note}."
            if name in r.features:
                value = r.features.get(name)
                line += f" This applicant's value is {format_value(name, value)}."
                contribution = r.attributions.get(name)
                if contribution is not None and isinstance(contribution, float) and math.isfinite(contribution):
                    if contribution != 0:
                        line += f" In this decision it {'raised' if contribution > 0 else 'lowered'} the risk."
                facts[name] = {"value": value, "contribution": contribution}
            if feat.mutable:
                line += " The applicant can change it (it is a loan term)."
            lines.append(line)
        return Answer("\n\n".join(lines), "definition", facts=facts)

