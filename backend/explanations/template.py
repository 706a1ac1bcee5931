"""The offline, deterministic explainer (the default): plain language built from the record only.

It states the recommendation, the PD and its band, the principal reasons with the applicant's
values (units and humanised categories from :func:`record.format_value`), and the largest factor
that lowered the risk. It never names a protected attribute and never promises an outcome.
"""

from __future__ import annotations

from backend.explanations.record import RECOMMENDATION_WORDS, DecisionRecord, Explanation, FeatureFact

MAX_REASONS_SHOWN = 4
MAX_HELPING_SHOWN = 2
CLOSING = "This is the model's assessment for the loan officer; the final decision rests with the lender."


def _phrase(f: FeatureFact) -> str:
    return f"{f.description} ({f.display})"


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


class TemplateExplainer:
    name = "template"

    def explain(self, record: DecisionRecord) -> Explanation:
        return Explanation(text=self.render(record), provider=self.name, model="template-v1")

    def render(self, record: DecisionRecord) -> str:
        rec = RECOMMENDATION_WORDS.get(record.recommendation, record.recommendation.replace("_", " "))
        lines = [
            f"Recommendation: {rec}.",
            (f"The estimated probability of default is {record.pd_percent:.1f}%, which is {record.pd_band}."
             if record.band_agrees else f"The estimated probability of default is {record.pd_percent:.1f}%; the model "
                                        f"classes the application as {record.risk_words}."),
        ]
        if record.reasons:
            lines.append("The main reasons:")
            for r in record.reasons[:MAX_REASONS_SHOWN]:
                facts = [record.facts[n] for n in r.features]
                if facts:
                    lines.append(f"- {r.text}: {_join([_phrase(f) for f in facts])} raised the estimated risk.")
                else:
                    lines.append(f"- {r.text}.")
        else:
            lines.append("No factor raised the estimated risk enough to be a principal reason.")
        helping = record.helping()[:MAX_HELPING_SHOWN]
        if helping:
            lines.append(f"In the applicant's favour, {_join([_phrase(f) for f in helping])} lowered the estimated risk.")
        lines.append(CLOSING)
        return "\n".join(lines)
