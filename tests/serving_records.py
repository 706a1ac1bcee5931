"""Crafted serving records for the alert and latency tests: scoring requests (applications and their
predictions), explanation LLM calls and final decisions, written in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from backend.platform.db.tables_book import Application, Decision, LLMUsageRow, Prediction

Call = dict[str, Any]


def craft(db, end: datetime, n: int, *, scoring_ms: float = 5.0, calls: Callable[[int], list[Call]] | None = None,
          fallback: Callable[[int], str | None] | None = None, days: float = 6.0,
          decided: Callable[[int], bool] = lambda i: True) -> list[float]:
    """``n`` scoring requests spread over the ``days`` before ``end``, each with a final decision unless
    ``decided`` says not; returns the end-to-end ms of the decided ones."""
    apps, preds, usage, totals, decisions = [], [], [], [], []
    for i in range(n):
        t = end - timedelta(days=days) + timedelta(seconds=i * days * 86_400 / max(n, 1)) + timedelta(seconds=1)
        aid, pid = uuid.uuid4(), uuid.uuid4()
        apps.append({"id": aid, "applicant_id": f"crafted-{aid.hex[:8]}", "features": {}, "protected": {},
                     "loan_amount": 5000.0, "applied_at": t, "created_at": t, "source": "api"})
        preds.append({"id": pid, "application_id": aid, "model_name": "creditrisk", "model_version": "crafted",
                      "model_role": "primary", "engine": "compiled", "pd": 0.1, "raw_score": -2.0, "risk_class": "low",
                      "confidence": 0.9, "recommendation": "approve", "policy_reasons": [], "reasons": [],
                      "attributions": {}, "cache_hit": False, "latency_ms": scoring_ms, "created_at": t,
                      "fallback_error": fallback(i) if fallback else None})
        total = scoring_ms
        for c in calls(i) if calls else []:
            usage.append({"id": uuid.uuid4(), "at": t + timedelta(seconds=1), "purpose": "explanation",
                          "prediction_id": pid, "provider": c.get("provider", "openai"), "model": "m",
                          "input_tokens": 10, "output_tokens": 10, "cost_usd": 0.001,
                          "latency_ms": c.get("ms", 1000.0), "fallback_used": c.get("fallback", False),
                          "fact_check_ok": c.get("ok", True), "error": c.get("error")})
            total += c.get("ms", 1000.0)
        if decided(i):
            totals.append(total)
            decisions.append({"id": uuid.uuid4(), "application_id": aid, "prediction_id": pid, "outcome": "approve",
                              "status": "final", "decided_at": t + timedelta(minutes=2), "is_override": False})
    with db.transaction() as s:
        s.execute(insert(Application), apps)
        s.execute(insert(Prediction), preds)
        if usage:
            s.execute(insert(LLMUsageRow), usage)
        if decisions:
            s.execute(insert(Decision), decisions)
    return totals


