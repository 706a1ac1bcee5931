"""The decision record: the only facts an explanation of one decision may use.

Built from a :class:`backend.scoring.service.ScoreResult`. It keeps the recommendation, the
probability of default (PD) as a percentage and a band, the principal reasons with their
features, and a few more of the largest attributions (features that raised or lowered the risk),
each with the applicant's value formatted for a reader. Protected attributes never enter it.
The LLM prompt is ``to_prompt_json()``; the fact-check compares generated text with this record.
``to_dict()``/``from_dict()`` carry it as plain JSON (the Lambda explainer's event), losslessly and
validated.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from backend.domain import FEATURES_BY_NAME, PROTECTED

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
#: Field names of the JSON form (``DecisionRecord.to_dict``); ``from_dict`` wants exactly these.
RECORD_FIELDS = ("recommendation", "pd", "confidence", "risk_class", "model_version", "reasons", "facts",
                 "policy_reasons", "application_id")
REASON_FIELDS = ("code", "text", "features")
FACT_FIELDS = ("name", "description", "unit", "kind", "value", "display", "contribution", "reason_code")
#: A non-finite feature value (a missing value read as NaN) has no JSON literal: ``{"nonfinite": "nan"}``.
NONFINITE = "nonfinite"
_NONFINITE_VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
#: Messages name the field, never its value (the event may hold an applicant's data).
NOT_AN_OBJECT = "{where}: must be a JSON object"
WRONG_FIELDS = "{where}: expected exactly the fields {fields}"
NOT_A_STRING = "{where}: must be a string"
NOT_A_LIST = "{where}: must be a list"
NOT_A_NUMBER = "{where}: must be a finite number"
OUT_OF_RANGE = "{where}: must be between 0 and 1"
BAD_VALUE = "{where}: must be null, a boolean, a number, a string or {{\"nonfinite\": \"nan\" | \"inf\" | \"-inf\"}}"
BAD_RECOMMENDATION = "{where}: must be one of approve, deny, manual_review"
BAD_FEATURE = "{where}: must name a catalog feature that is not a protected attribute"
KEY_NOT_NAME = "{where}: the key must equal the fact's name"
UNKNOWN_REASON_FEATURE = "{where}: must name one of the record's facts"


class RecordError(ValueError):
    """A decision record in JSON form is malformed; the message names the field, never its value."""


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
    def band_agrees(self) -> bool:
        """Whether the PD band's word agrees with the risk class on the card (high, very high ⇔ high risk):
        a calibrated PD of 10% ("moderate") can sit beside a high-risk class and a denial."""
        return (self.risk_class == "high_risk") == (self.pd_band.split(" (")[0] in ("high", "very high"))

    @property
    def risk_words(self) -> str:
        """How the risk may be described: the PD band when it agrees with the risk class, else the class."""
        return self.pd_band if self.band_agrees else ("high risk" if self.risk_class == "high_risk" else "low risk")

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

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON types (``from_dict`` gives an equal record back)."""
        return {
            "recommendation": self.recommendation, "pd": float(self.pd), "confidence": float(self.confidence),
            "risk_class": self.risk_class, "model_version": self.model_version,
            "reasons": [{"code": r.code, "text": r.text, "features": list(r.features)} for r in self.reasons],
            "facts": {key: {"name": f.name, "description": f.description, "unit": f.unit, "kind": f.kind,
                            "value": _value_to_json(f.value), "display": f.display,
                            "contribution": float(f.contribution), "reason_code": f.reason_code}
                      for key, f in self.facts.items()},
            "policy_reasons": list(self.policy_reasons), "application_id": self.application_id,
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "record") -> DecisionRecord:
        """Validate and rebuild a record from :meth:`to_dict`'s form; raises :class:`RecordError`."""
        d = _object(data, where, RECORD_FIELDS)
        rec = d["recommendation"]
        if rec not in RECOMMENDATION_WORDS:
            raise RecordError(BAD_RECOMMENDATION.format(where=f"{where}.recommendation"))
        facts: dict[str, FeatureFact] = {}
        raw_facts = d["facts"]
        if not isinstance(raw_facts, dict):
            raise RecordError(NOT_AN_OBJECT.format(where=f"{where}.facts"))
        for i, (key, raw) in enumerate(raw_facts.items()):
            facts[key] = fact = _fact_from_dict(raw, f"{where}.facts[{i}]")
            if key != fact.name:
                raise RecordError(KEY_NOT_NAME.format(where=f"{where}.facts[{i}]"))
        reasons = []
        for i, raw in enumerate(_list(d["reasons"], f"{where}.reasons")):
            at = f"{where}.reasons[{i}]"
            r = _object(raw, at, REASON_FIELDS)
            names = tuple(_str(n, f"{at}.features[{j}]") for j, n in enumerate(_list(r["features"], f"{at}.features")))
            for j, n in enumerate(names):
                if n not in facts:
                    raise RecordError(UNKNOWN_REASON_FEATURE.format(where=f"{at}.features[{j}]"))
            reasons.append(ReasonFact(_str(r["code"], f"{at}.code"), _str(r["text"], f"{at}.text"), names))
        app_id = d["application_id"]
        return cls(recommendation=rec, pd=_unit_interval(d["pd"], f"{where}.pd"),
                   confidence=_unit_interval(d["confidence"], f"{where}.confidence"),
                   risk_class=_str(d["risk_class"], f"{where}.risk_class"),
                   model_version=_str(d["model_version"], f"{where}.model_version"), reasons=tuple(reasons),
                   facts=facts, policy_reasons=tuple(_str(p, f"{where}.policy_reasons[{i}]") for i, p in
                                                     enumerate(_list(d["policy_reasons"], f"{where}.policy_reasons"))),
                   application_id=None if app_id is None else _str(app_id, f"{where}.application_id"))

    def to_prompt_dict(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation,
            "probability_of_default_percent": self.pd_percent,
            "probability_of_default_band": self.risk_words,  # the band only where it agrees with the card
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


def _value_to_json(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {NONFINITE: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return value


def _object(data: Any, where: str, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RecordError(NOT_AN_OBJECT.format(where=where))
    if set(data) != set(fields):
        raise RecordError(WRONG_FIELDS.format(where=where, fields=", ".join(fields)))
    return data


def _list(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise RecordError(NOT_A_LIST.format(where=where))
    return data


def _str(data: Any, where: str) -> str:
    if not isinstance(data, str):
        raise RecordError(NOT_A_STRING.format(where=where))
    return data


def _finite(data: Any) -> bool:
    """A JSON number a float can hold (an int too large for a float is refused, not overflowed later)."""
    if isinstance(data, bool) or not isinstance(data, int | float):
        return False
    try:
        return math.isfinite(float(data))
    except OverflowError:
        return False


def _number(data: Any, where: str) -> float:
    if not _finite(data):
        raise RecordError(NOT_A_NUMBER.format(where=where))
    return float(data)


def _unit_interval(data: Any, where: str) -> float:
    x = _number(data, where)
    if not 0.0 <= x <= 1.0:
        raise RecordError(OUT_OF_RANGE.format(where=where))
    return x


def _value_from_json(data: Any, where: str) -> Any:
    if data is None or isinstance(data, bool | str) or _finite(data):
        return data
    if isinstance(data, dict) and set(data) == {NONFINITE} and data[NONFINITE] in _NONFINITE_VALUES:
        return _NONFINITE_VALUES[data[NONFINITE]]
    raise RecordError(BAD_VALUE.format(where=where))


def _fact_from_dict(data: Any, where: str) -> FeatureFact:
    d = _object(data, where, FACT_FIELDS)
    name = _str(d["name"], f"{where}.name")
    if name not in FEATURES_BY_NAME or name in PROTECTED:
        raise RecordError(BAD_FEATURE.format(where=f"{where}.name"))
    unit = d["unit"]
    return FeatureFact(name=name, description=_str(d["description"], f"{where}.description"),
                       unit=None if unit is None else _str(unit, f"{where}.unit"), kind=_str(d["kind"], f"{where}.kind"),
                       value=_value_from_json(d["value"], f"{where}.value"),
                       display=_str(d["display"], f"{where}.display"),
                       contribution=_number(d["contribution"], f"{where}.contribution"),
                       reason_code=_str(d["reason_code"], f"{where}.reason_code"))


@dataclass
class Explanation:
    """Text shown to the officer and what produced it."""

    text: str
    provider: str
    model: str = ""
    fallback_used: bool = False
    failures: list[Any] = field(default_factory=list)
