"""The decision Q&A's stored answer, its JSON form and conversation messages (used by :mod:`workspace`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.platform.db.tables_book import QAExchange

CONVERSATION_BAD = "A conversation id is a UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427 (got {value!r})."
CONVERSATION_UNKNOWN = "No conversation {cid} exists; leave the conversation id out to start a new one."
CONVERSATION_ELSEWHERE = ("Conversation {cid} belongs to another decision; ask about this decision in a new "
                          "conversation (leave the conversation id out).")
OFFLINE_CHECK = {"checked": False, "passed": True,
                 "why": "offline engine: every figure comes from the decision record, a re-score or the book"}


def jsonable(value: Any) -> Any:
    """Plain JSON values (tuples → lists, numpy scalars → numbers, NaN/inf → None), as stored and read back."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass(frozen=True)
class StoredAnswer:
    id: str
    question: str
    text: str
    intent: str
    refused: bool
    counterfactuals: list[dict[str, Any]] = field(default_factory=list)
    at: datetime | None = None
    conversation_id: str | None = None
    refusal: str | None = None
    engine: str = "offline"
    facts: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    fact_check: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The answer as the CLI (--json) and the API return it."""
        return {"id": self.id, "answer": self.text, "intent": self.intent, "refusal": self.refusal,
                "conversation_id": self.conversation_id, "facts": jsonable(self.facts), "engine": self.engine,
                "fact_check": jsonable({k: v for k, v in self.fact_check.items() if k != "failures"}), "tool_calls": jsonable(self.tool_calls),
                "counterfactuals": len(self.counterfactuals), "question": self.question,
                "at": self.at.isoformat() if self.at else None}


def stored_answer(row: QAExchange) -> StoredAnswer:
    return StoredAnswer(id=str(row.id), question=row.question, text=row.answer, intent=row.intent,
                        refused=bool(row.refused), counterfactuals=list(row.counterfactuals or []), at=row.at,
                        conversation_id=row.conversation_id, refusal=row.refusal, engine=row.engine or "offline",
                        facts=dict(row.facts or {}), tool_calls=list(row.tool_calls or []),
                        fact_check=dict(row.fact_check or {}))


class LazyStats:
    """Comparison statistics read from the book only when a question needs them (a compare)."""

    def __init__(self, load: Any) -> None:
        self._load = load
        self._stats: Any = None
        self._done = False

    def describe(self, feature: str, value: Any) -> dict[str, Any] | None:
        if not self._done:
            self._stats, self._done = self._load(), True
        return None if self._stats is None else self._stats.describe(feature, value)

    def available(self) -> bool:
        if not self._done:
            self._stats, self._done = self._load(), True
        return self._stats is not None
