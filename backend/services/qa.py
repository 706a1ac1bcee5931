"""Decision Q&A: an officer's questions about one decision, answered offline and deterministically.

``DecisionQA(scoring).ask(question, result=score_result, comparison=stats)`` returns an
:class:`Answer`. Intents (rules in :mod:`backend.services.qa_intents`): ``why``, ``what_if``
(counterfactual search), ``explicit_what_if``, ``compare``, ``explain_feature``, ``help``; refusals
(protected characteristics and proxies, other applicants, prompt injection) get :data:`REFUSAL`.

Grounding: every number in an answer comes from the decision record (``result``), from re-scoring
with the model that decided (:mod:`backend.services.counterfactuals`), or from the comparison
statistics; ``facts`` carries those numbers for a fact-check. A question never changes the
decision: ``result`` is read, never mutated, and nothing is persisted here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from backend.services.counterfactuals import LEVERS, Rescore, WhatIfEngine, WhatIfInvalid
from backend.services.explain.record import RECOMMENDATION_WORDS, format_value, pd_band
from backend.services.qa_compare import ComparisonStats, FrameComparisonStats
from backend.services.qa_intents import Intent, classify
from backend.services.scoring import ScoreResult, ScoringService
from backend.training.features import FEATURES_BY_NAME, PROTECTED

__all__ = ["Answer", "ComparisonStats", "DecisionQA", "FrameComparisonStats", "HELP", "REFUSAL"]

REFUSAL = ("I can only answer questions about this decision's own record: why it was made, what-if changes "
           "to the loan terms, how a feature compares with approved applications, and what a feature means. "
           "I can't discuss protected characteristics (such as sex, age, race, religion, national origin or "
           "marital status) or their proxies, other applicants or applications, or follow instructions to "
           "change the decision. Questions never change a decision; to record a different decision, use the "
           "override form.")
HELP = ("You can ask: \"Why was this denied?\" (the reasons with the applicant's values); \"What would change "
        "the outcome?\" (the smallest changes to the loan amount, term, down payment or autopay that the "
        "model would approve); \"What if the loan amount were $15,000?\" or \"with a 60-month term?\" "
        "(re-scored with the model); \"How does the DTI compare with approved applicants?\"; and \"What is "
        "revolving utilization?\".")
NO_COMPARISON = "No statistics of approved applications are available to compare with."
ALREADY_APPROVED = "This application is already recommended for approval ({pd} probability of default); no change is needed."
NONE_FOUND = ("No change within bounds turns this into an approval or brings the risk below the cutoff: "
              "tried the loan amount down to 10% of the request, every offered term, larger down payments "
              "(purchase loans) and autopay, alone and in pairs.")

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


def _pct(p: float) -> str:
    return f"{p * 100:.1f}%"


def _rec(rec: str) -> str:
    return RECOMMENDATION_WORDS.get(rec, rec.replace("_", " "))


def _label(name: str) -> str:
    f = FEATURES_BY_NAME.get(name)
    return f.description if f is not None else name.replace("_", " ")


class DecisionQA:
    """Answers questions about one scored decision (see the module docstring)."""

    def __init__(self, scoring: ScoringService) -> None:
        self.scoring = scoring
        self.engine = WhatIfEngine(scoring)

    def ask(self, question: str, *, result: ScoreResult, comparison: ComparisonStats | None = None) -> Answer:
        intent = classify(question or "")
        if intent.name == "refused":
            return Answer(REFUSAL, "refused", refused=True, facts={"refusal": intent.refusal})
        handler = {"why": self._why, "what_if": self._what_if, "explicit_what_if": self._explicit,
                   "explain_feature": self._explain}.get(intent.name)
        if intent.name == "compare":
            return self._compare(intent, result, comparison)
        if handler is None:
            return Answer(HELP, "help")
        return handler(intent, result)

    # -- why --------------------------------------------------------------------------------------
    def _why(self, intent: Intent, r: ScoreResult) -> Answer:
        lines = [f"The model recommends to {_rec(r.recommendation)}: probability of default {_pct(r.pd)}, "
                 f"{pd_band(r.pd)}, risk class {r.risk_class.replace('_', ' ')}."]
        if r.policy_reasons:
            lines.append("Sent to manual review because: " + "; ".join(r.policy_reasons) + ".")
        facts: dict[str, Any] = {"recommendation": r.recommendation, "pd": r.pd, "risk_class": r.risk_class,
                                 "policy_reasons": list(r.policy_reasons), "reasons": []}
        if r.reasons:
            lines.append("Principal reasons, most important first:")
            for i, reason in enumerate(r.reasons, 1):
                feats = [f for f in reason.get("features", []) if f.get("name") not in PROTECTED]
                shown = ", ".join(f"{f['description']} {format_value(f['name'], f.get('value'))}" for f in feats)
                lines.append(f"{i}. {reason['text']}" + (f" ({shown})" if shown else ""))
                facts["reasons"].append({"code": reason["code"], "features": {
                    f["name"]: f.get("value") for f in feats}})
        else:
            lines.append("No feature raised the risk enough to be a principal reason.")
        return Answer("\n".join(lines), "why", facts=facts)

    # -- counterfactual search ---------------------------------------------------------------------
    def _what_if(self, intent: Intent, r: ScoreResult) -> Answer:
        facts: dict[str, Any] = {"recommendation": r.recommendation, "pd": r.pd}
        if r.recommendation == "approve":
            return Answer(ALREADY_APPROVED.format(pd=_pct(r.pd)), "what_if", facts=facts)
        asked = [f for f in intent.features if f in LEVERS]
        options, reached = self.engine.search(r, levers=asked or LEVERS)
        facts["reached"] = reached
        if not options:
            scope = f" (searched: {', '.join(_label(f) for f in asked)})" if asked else ""
            return Answer(NONE_FOUND + scope, "what_if", facts=facts)
        head = ("Smallest changes the model would approve" if reached == "approve" else
                "No change within bounds reaches an approval; smallest changes that bring the risk "
                "below the cutoff")
        lines = [f"Currently: {_rec(r.recommendation)}, probability of default {_pct(r.pd)}. {head} "
                 "(re-scored with the same model):"]
        for opt in options:
            lines.append(f"- {self._change_text(opt)} → {_rec(opt.recommendation)}, "
                         f"probability of default {_pct(opt.pd)}" + self._review_note(opt))
        return Answer("\n".join(lines), "what_if", facts=facts, counterfactuals=[o.as_dict() for o in options])

    # -- explicit what-if --------------------------------------------------------------------------
    def _explicit(self, intent: Intent, r: ScoreResult) -> Answer:
        changes = {name: value for name, value in intent.changes}
        try:
            out = self.engine.what_if(r, changes)
        except WhatIfInvalid as exc:
            return Answer(f"Can't re-score that: {exc}.", "explicit_what_if", facts={"error": str(exc)})
        text = (f"{self._change_text(out)}: the model would {_rec(out.recommendation)}, probability of "
                f"default {_pct(out.pd)} (now {_pct(r.pd)}, {_rec(r.recommendation)})" + self._review_note(out)
                + ". The recorded decision is unchanged.")
        facts = {"recommendation": r.recommendation, "pd": r.pd, "new_recommendation": out.recommendation,
                 "new_pd": out.pd}
        return Answer(text, "explicit_what_if", facts=facts, counterfactuals=[out.as_dict()])

    @staticmethod
    def _change_text(opt: Rescore) -> str:
        parts = [f"{_label(k)} {format_value(k, old)} → {format_value(k, new)}" for k, (old, new) in opt.changes.items()]
        moved = [k for k in ("loan_amount", "estimated_monthly_payment") if k in opt.derived]
        parts += [f"{_label(k)} {format_value(k, opt.derived[k][0])} → {format_value(k, opt.derived[k][1])}"
                  for k in moved]
        text = "; ".join(parts) if parts else "no change"
        return text[:1].upper() + text[1:]

    @staticmethod
    def _review_note(opt: Rescore) -> str:
        return f" (manual review: {'; '.join(opt.policy_reasons)})" if opt.policy_reasons else ""

    # -- compare -----------------------------------------------------------------------------------
    def _compare(self, intent: Intent, r: ScoreResult, stats: ComparisonStats | None) -> Answer:
        if stats is None:
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
        return Answer("\n".join(lines), "compare", facts=facts)

    # -- definitions -------------------------------------------------------------------------------
    def _explain(self, intent: Intent, r: ScoreResult) -> Answer:
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
        return Answer("\n".join(lines), "explain_feature", facts=facts)

