"""The decision Q&A's stored answer, its JSON form, its stream and conversation messages (used by :mod:`workspace`)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from backend.compliance import AuditRepository
from backend.explanations import Answer, ExplainRepository, QAStream, StreamEvent

if TYPE_CHECKING:
    from backend.platform.db.engine import Database
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


class AnswerStream:
    """Iterate for :class:`StreamEvent` (``text``: a checked sentence, ``reset``: withdraw what was shown, its text
    the engine that answers instead, ``final``: the answer). When iteration ends the exchange is stored as
    :meth:`WorkspaceService.ask` stores it (one transaction, one audit row) and ``stored`` is set; abandoned
    mid-way, nothing is stored (the officer saw only checked sentences)."""

    def __init__(self, events: QAStream, store: Callable[[Answer], StoredAnswer]) -> None:
        self._events, self._store = events, store
        self.stored: StoredAnswer | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        yield from self._events
        assert self._events.answer is not None  # set when the turn is over
        self.stored = self._store(self._events.answer)


def offline_turn(answer: Answer) -> Generator[StreamEvent, None, Answer]:
    """The offline engine's answer as a stream: it is not streamed (it is fast), only its final event."""
    yield StreamEvent("final", answer.text)
    return answer


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def store_exchange(db: Database, now: datetime, ctx: tuple[Any, ...], question: str, answer: Answer) -> StoredAnswer:
    """The exchange, its LLM usage rows and ONE audit row (``qa_exchange``), in one transaction."""
    pred, app, role, actor, cid = ctx
    facts = {**jsonable(answer.facts), "state": jsonable(answer.state)}
    tool_calls = jsonable(answer.tool_calls)
    check = jsonable(answer.fact_check or OFFLINE_CHECK)
    with db.transaction() as s:
        repo = ExplainRepository(s)
        row = repo.add_exchange(
            prediction_id=pred.id, at=now, turn=repo.next_turn(pred.id), actor=actor.username[:64],
            role=role, question=question, answer=answer.text, intent=answer.intent[:32],
            refused=answer.refused, counterfactuals=jsonable(answer.counterfactuals), conversation_id=cid,
            refusal=answer.refusal, engine=answer.engine[:160], facts=facts, tool_calls=tool_calls,
            fact_check=check)
        repo.add_usage(answer.usage, prediction_id=pred.id, at=now, purpose="qa")
        AuditRepository(s).append(
            actor=actor.username, role=role, action="qa_exchange", entity_type="qa_exchange",
            entity_id=str(row.id), at=now,
            payload={"prediction_id": str(pred.id), "application_id": str(app.id), "question": question,
                     "intent": answer.intent, "refused": answer.refused, "refusal": answer.refusal,
                     "conversation_id": cid, "engine": answer.engine, "answer_sha256": sha(answer.text),
                     "counterfactuals": len(answer.counterfactuals), "tool_calls": tool_calls,
                     "fact_check": check})
        return stored_answer(row)
