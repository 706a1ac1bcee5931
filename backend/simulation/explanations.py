"""The explanations officers read on the AI cards, and the LLM usage behind them.

The text is the real template explainer's over the real decision record; the LLM calls behind it are
simulated usage rows (tokens, latency, timeouts with fallback to the second provider, fact-check
rejections, views served from the stored explanation) priced with the settings' price table. Pure: the
rows go to :func:`backend.simulation.queries.insert_explanations`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from backend.compliance import AuditEntry
from backend.domain import Actor
from backend.explanations import DecisionRecord, ModelPrice, TemplateExplainer, cost_usd
from backend.scoring import ScoreResult
from backend.simulation.config import SimConfig
from backend.simulation.decisions import Shown
from backend.simulation.draws import Draws

EXPLAIN_MODEL, FALLBACK_MODEL = ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5")
#: One explanation written: its id, the prediction, the officer's user id, when, fact-check passed, fallback
#: used, and the application's row in the draws.
Explained = tuple[uuid.UUID, uuid.UUID, uuid.UUID | None, datetime, bool, bool, int]


@dataclass
class ExplainedDay:
    rows: list[dict[str, Any]] = field(default_factory=list)  # explanations
    usage: list[dict[str, Any]] = field(default_factory=list)  # LLM usage (and cache hits)
    audits: list[AuditEntry] = field(default_factory=list)  # one explanation_shown per explanation
    explained: list[Explained] = field(default_factory=list)


class Explainer:
    def __init__(self, cfg: SimConfig, draws: Draws, prices: dict[str, ModelPrice]) -> None:
        self.cfg, self.draws, self.prices = cfg, draws, prices
        self.template = TemplateExplainer()

    def day(self, shown: list[Shown]) -> ExplainedDay:
        out = ExplainedDay()
        for res, officer, at, i in shown:
            self._one(out, res, officer, at, i)
        return out

    def _one(self, out: ExplainedDay, res: ScoreResult, officer: Actor, at: datetime, i: int) -> None:
        cfg, draws = self.cfg, self.draws
        pid = uuid.UUID(str(res.prediction_id))
        text = self.template.render(DecisionRecord.from_score(res))
        u = draws.llm[i]
        eid = uuid.uuid4()
        calls: list[dict[str, Any]] = []
        provider, model, ok, fallback = EXPLAIN_MODEL[0], EXPLAIN_MODEL[1], True, False
        failures: list[dict[str, Any]] = []
        tokens_in = int(760 + 140 * draws.noise[i] ** 2 + 90 * draws.pick[i])
        tokens_out = int(min(200, 118 + 40 * draws.pick2[i] + 12 * abs(draws.noise[i])))
        if u < cfg.timeout_rate:  # the primary timed out: the fallback provider answers
            calls.append(self._call(at, pid, EXPLAIN_MODEL, None, None, 10_000.0, False, None,
                                    "timeout: no answer within 10.0 s"))
            provider, model, fallback = FALLBACK_MODEL[0], FALLBACK_MODEL[1], True
        latency = float(np.exp(np.log(2600.0 if not fallback else 3300.0) + 0.42 * draws.time2[i]))
        if cfg.timeout_rate <= u < cfg.timeout_rate + cfg.factcheck_failure_rate:
            ok = False
            failures = [{"claim": "(simulated) an answer that changed the applicant's debt-to-income figure",
                         "kind": "number", "detail": "simulated fact-check rejection"}]
        calls.append(self._call(at, pid, (provider, model), tokens_in, tokens_out, latency, fallback, ok, None))
        out.rows.append({"id": eid, "prediction_id": pid, "created_at": at, "actor": officer.username,
                         "provider": provider if ok else "template", "model": model if ok else "template-v1",
                         "text": text, "fact_check_ok": ok, "failures": failures, "fallback_used": fallback or not ok})
        out.usage.extend(calls)
        out.audits.append(AuditEntry(actor=officer.username, role=officer.role, action="explanation_shown",
                                     entity_type="explanation", entity_id=str(eid), at=at,
                                     payload={"prediction_id": str(pid), "provider": provider if ok else "template",
                                              "model": model, "fact_check_ok": ok, "fallback_used": fallback or not ok,
                                              "llm_calls": len(calls), "simulated": True}))
        if draws.cache[i] < cfg.cache_share and cfg.happened(at + timedelta(hours=2)):  # came back: the stored text
            out.usage.append({"id": uuid.uuid4(), "at": at + timedelta(hours=2), "purpose": "explanation",
                              "prediction_id": pid, "provider": "cache", "model": "", "input_tokens": 0,
                              "output_tokens": 0, "cost_usd": 0.0,
                              "latency_ms": float(3.0 + 4.0 * draws.pick2[i]), "fallback_used": False,
                              "fact_check_ok": None, "error": None})
        out.explained.append((eid, pid, officer.id, at, ok, fallback, i))

    def _call(self, at: datetime, pid: uuid.UUID, pm: tuple[str, str], tin: int | None, tout: int | None,
              latency: float, fallback: bool, ok: bool | None, error: str | None) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "at": at, "purpose": "explanation", "prediction_id": pid, "provider": pm[0],
                "model": pm[1], "input_tokens": tin, "output_tokens": tout,
                "cost_usd": cost_usd(self.prices, pm[1], tin, tout), "latency_ms": latency, "fallback_used": fallback,
                "fact_check_ok": ok, "error": error}
