"""The decision record: the only facts an explanation of one decision may use.

Built from a :class:`backend.services.scoring.ScoreResult`. It keeps the recommendation, the
probability of default (PD) as a percentage and a band, the principal reasons with their
features, and a few more of the largest attributions (features that raised or lowered the risk),
each with the applicant's value formatted for a reader. Protected attributes never enter it.
The LLM prompt is ``to_prompt_json()``; the fact-check compares generated text with this record.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from backend.training.features import FEATURES_BY_NAME, PROTECTED

#: PD bands: (upper bound exclusive, label). The label's numbers are part of the record.
PD_BANDS: tuple[tuple[float, str], ...] = (
    (0.02, "very low (under 2%)"),
    (0.05, "low (under 5%)"),
    (0.15, "moderate (5% to 15%)"),
    (0.30, "high (15% to 30%)"),
    (math.inf, "very high (30% or more)"),
)
#: How many attributions beyond the reasons' features the record keeps (largest |contribution|).
EXTRA_ATTRIBUTIONS = 4
RECOMMENDATION_WORDS = {"approve": "approve", "deny": "deny", "manual_review": "refer for manual review"}
RAISES, LOWERS = "raises", "lowers"


def pd_band(pd: float) -> str:
    """The band label of a probability of default (0-1)."""
    for upper, label in PD_BANDS:
        if pd < upper:
            return label
    return PD_BANDS[-1][1]


def humanise(code: str) -> str:
    """A category code for a reader: ``self_employed`` → ``self-employed``, ``debt_consolidation``
    → ``debt consolidation``."""
    special = {"self_employed": "self-employed", "full_time": "full-time", "part_time": "part-time",
               "real_estate": "real estate"}
    return special.get(code, code.replace("_", " "))


def format_value(name: str, value: Any) -> str:
    """The applicant's value with its unit: USD → ``$1,250``, ratio → ``35%``, months → ``18 months``,
    binary → ``yes``/``no``, categories humanised. ``None`` → ``not available``."""
    feat = FEATURES_BY_NAME.get(name)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not available"
    if feat is None:
        return str(value)
    if feat.kind == "categorical":
        return humanise(str(value))
    if feat.kind == "binary":
        return "yes" if float(value) >= 0.5 else "no"
    v = float(value)
    unit = feat.unit
    if unit == "USD":
        sign = "-" if v < 0 else ""
        return f"{sign}${abs(v):,.0f}"
    if unit == "ratio":
        return f"{v * 100:.0f}%"
    if unit == "%":
        return f"{v:.0f}%"
    if unit in ("months", "days"):
        n = round(v)
        return f"{n} {unit[:-1] if n == 1 else unit}"
    if unit == "years":
        return f"{v:.1f} years"
    return f"{v:,.0f}"


@dataclass(frozen=True)
class FeatureFact:
    name: str
    description: str
    unit: str | None
    kind: str
    value: Any
    display: str
    contribution: float
    reason_code: str

    @property
    def direction(self) -> str:
        return RAISES if self.contribution > 0 else LOWERS


@dataclass(frozen=True)
class ReasonFact:
    code: str
    text: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class DecisionRecord:
    recommendation: str
    pd: float
    confidence: float
    risk_class: str
    model_version: str
    reasons: tuple[ReasonFact, ...]
    facts: dict[str, FeatureFact]
    policy_reasons: tuple[str, ...] = ()
    application_id: str | None = None

    @property
    def pd_percent(self) -> float:
        return round(self.pd * 100, 1)

    @property
    def pd_band(self) -> str:
        return pd_band(self.pd)

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def helping(self) -> list[FeatureFact]:
        """Facts that lowered the risk, largest effect first."""
        return sorted((f for f in self.facts.values() if f.contribution < 0), key=lambda f: f.contribution)

    @classmethod
    def from_score(cls, result: Any, *, extra: int = EXTRA_ATTRIBUTIONS) -> DecisionRecord:
        """Build from a ScoreResult (or anything with the same attributes)."""
        values: dict[str, Any] = dict(result.features)
        attributions: dict[str, float] = {k: float(v) for k, v in result.attributions.items()}
        facts: dict[str, FeatureFact] = {}
        reasons = []
        for r in result.reasons:
            names = []
            for f in r["features"]:
                name = f["name"]
                if name in PROTECTED or name not in FEATURES_BY_NAME:
                    continue
                names.append(name)
                facts[name] = _fact(name, f.get("value", values.get(name)), float(f["contribution"]))
            reasons.append(ReasonFact(r["code"], r["text"], tuple(names)))
        ranked = sorted(((n, c) for n, c in attributions.items()
                         if n in FEATURES_BY_NAME and n not in PROTECTED and n not in facts and c != 0),
                        key=lambda nc: -abs(nc[1]))
        for name, c in ranked[:extra]:
            facts[name] = _fact(name, values.get(name), c)
        return cls(recommendation=result.recommendation, pd=float(result.pd), confidence=float(result.confidence),
                   risk_class=result.risk_class, model_version=str(result.model_version), reasons=tuple(reasons),
                   facts=facts, policy_reasons=tuple(result.policy_reasons),
                   application_id=getattr(result, "application_id", None))

    def to_prompt_dict(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation,
            "probability_of_default_percent": self.pd_percent,
            "probability_of_default_band": self.pd_band,
            "principal_reasons": [
                {"reason": r.text, "features": [self._fact_json(self.facts[n]) for n in r.features]}
                for r in self.reasons
            ],
            "other_factors": [self._fact_json(f) for n, f in self.facts.items()
                              if not any(n in r.features for r in self.reasons)],
        }

    @staticmethod
    def _fact_json(f: FeatureFact) -> dict[str, Any]:
        return {"feature": f.description, "applicant_value": f.display, "effect_on_risk": f.direction}

    def to_prompt_json(self) -> str:
        """The record as compact JSON for the LLM's user message (no ids, no protected attributes)."""
        return json.dumps(self.to_prompt_dict(), ensure_ascii=False, separators=(",", ":"))


def _fact(name: str, value: Any, contribution: float) -> FeatureFact:
    feat = FEATURES_BY_NAME[name]
    return FeatureFact(name=name, description=feat.description, unit=feat.unit, kind=feat.kind, value=value,
                       display=format_value(name, value), contribution=contribution, reason_code=feat.reason_code)


@dataclass
class Explanation:
    """Text shown to the officer and what produced it."""

    text: str
    provider: str
    model: str = ""
    fallback_used: bool = False
    failures: list[Any] = field(default_factory=list)
