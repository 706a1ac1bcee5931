"""The decision conversation with an LLM that answers through tools (:mod:`qa_tools`), checked sentence by
sentence, with the offline engine answering any turn the LLM cannot.

One turn: refusals are decided by the rules and the classifier first (a refused question never reaches
the LLM); otherwise the LLM gets the system rules, this conversation's earlier questions and shown
answers, and the question, and may call tools for up to :data:`MAX_ROUNDS` rounds. Its final text is
split into sentences; **every** sentence must either be one of the sentences a tool returned in this
turn (the offline engine wrote it from the record, a re-score or the book), or pass the explanation
fact-check (:func:`fact_check`) against the decision's record. The LLM thus never computes a figure:
a number that is in neither fails. A provider failure, an unknown tool, malformed arguments, too many
rounds, an empty answer or one failed sentence → the offline engine answers the turn, and ``engine``
says so (``offline (fallback from openai:gpt-4o: fact-check failed)``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from backend.explanations.factcheck import fact_check, sentences, verdict
from backend.explanations.providers import LLMUsage, classify_error, cost_usd
from backend.explanations.qa_tools import TOOLS, ToolBox, ToolError
from backend.explanations.questions import Answer, DecisionQA
from backend.explanations.questions_compare import ComparisonStats
from backend.explanations.questions_intents import classify
from backend.explanations.record import DecisionRecord
from backend.scoring import ScoreResult

MAX_ROUNDS = 4
TRANSCRIPT_TURNS = 6
SYSTEM = """You answer a loan officer's questions about ONE credit decision, in at most 120 words.
Rules:
- Get every fact from the tools. Never compute, estimate or round a number yourself: copy sentences from the \
tool results word for word when they carry figures.
- Use rescore for "what if" questions (pass every change so far in this conversation), nearest_approvals for \
"what would it take", compare_with_approved, define_feature, policy, application_history, decision_record.
- Never mention sex, gender, age, race, ethnicity, religion, national origin, marital status, disability, \
where someone lives, or any other applicant. Never promise an outcome; a what-if is hypothetical.
- Plain sentences, no headings, no links, no instructions to anyone."""


@dataclass
class ToolTurn:
    """One LLM response: its text and the tool calls it asked for ``(id, name, raw JSON arguments)``."""

    text: str
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None


class ToolChat(Protocol):
    provider: str
    model: str
    prices: Any

    def chat_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
                   ) -> ToolTurn: ...


class Fallback(Exception):
    """This turn goes to the offline engine; the message says why (shown in ``engine``)."""


def _norm(sentence: str) -> str:
    return re.sub(r"\s+", " ", sentence).strip().rstrip(".").casefold()


def check_answer(text: str, quoted: list[str], record: DecisionRecord) -> dict[str, Any]:
    """The verdict on every sentence: quoted from a tool result, or passing the fact-check on the record."""
    allowed = {_norm(s) for t in quoted for s in sentences(t)}
    parts = sentences(text)
    failures = []
    n_quoted = 0
    for s in parts:
        if _norm(s) in allowed:
            n_quoted += 1
            continue
        failures += fact_check(s, record).failures
    v = verdict(failures, len(parts))
    return {"checked": True, **v, "quoted": n_quoted, "passed": bool(parts) and not failures,
            "failures": [{"claim": f.claim, "kind": f.kind, "detail": f.detail} for f in failures]}


class LLMQA:
    """Answers with the LLM through tools when it can, else with ``offline`` (see the module docstring)."""

    def __init__(self, offline: DecisionQA, chat: ToolChat, *, max_rounds: int = MAX_ROUNDS) -> None:
        self.offline = offline
        self.chat = chat
        self.max_rounds = max_rounds
        self.label = f"{chat.provider}:{chat.model}"

    def ask(self, question: str, *, result: ScoreResult, comparison: ComparisonStats | None = None,
            state: dict[str, Any] | None = None, history: Callable[[], dict[str, Any]] | None = None) -> Answer:
        state = dict(state or {})
        intent = classify(question or "")
        if intent.name == "refused":  # the rules decide refusals; the LLM never sees a refused question
            return self._remember(self.offline.ask(question, result=result, comparison=comparison, state=state),
                                  question, state)
        box = ToolBox(self.offline, result, comparison, history)
        usage: list[LLMUsage] = []
        try:
            text = self._converse(question, state, box, usage)
            check = check_answer(text, box.texts(), DecisionRecord.from_score(result))
            if not check["passed"]:
                usage[-1].fact_check = "failed"
                usage[-1].failed_claims = tuple(f"{f['kind']}: {f['claim']}" for f in check["failures"])
                raise Fallback(f"fact-check failed on {check['claims_failed']} claim(s)", check)
            usage[-1].fact_check = "passed"
        except Fallback as exc:
            off = self.offline.ask(question, result=result, comparison=comparison, state=state)
            check = exc.args[1] if len(exc.args) > 1 else {"checked": False, "passed": False}
            return self._remember(replace(off, engine=f"offline (fallback from {self.label}: {exc.args[0]})",
                                          tool_calls=box.calls, fact_check=check, usage=usage), question, state)
        memory = {"intent": intent.name, "features": list(intent.features), "changes": self._changes(box, state)}
        answer = Answer(text, intent.name, facts={"tools": [c["result"]["data"] for c in box.calls]},
                        state=memory, engine=self.label, tool_calls=box.calls, fact_check=check, usage=usage)
        return self._remember(answer, question, state)

    @staticmethod
    def _changes(box: ToolBox, state: dict[str, Any]) -> dict[str, Any]:
        for call in reversed(box.calls):
            if call["name"] == "rescore":
                return dict(call["arguments"].get("changes") or {})
        return dict(state.get("changes") or {})

    @staticmethod
    def _remember(answer: Answer, question: str, state: dict[str, Any]) -> Answer:
        transcript = [*state.get("transcript", []), {"q": question[:1000], "a": answer.text[:2000]}]
        return replace(answer, state={**answer.state, "transcript": transcript[-TRANSCRIPT_TURNS:]})

    def _converse(self, question: str, state: dict[str, Any], box: ToolBox, usage: list[LLMUsage]) -> str:
        messages: list[dict[str, Any]] = []
        for turn in state.get("transcript", []):
            messages += [{"role": "user", "text": turn["q"]}, {"role": "assistant", "text": turn["a"], "calls": []}]
        messages.append({"role": "user", "text": question})
        for _ in range(self.max_rounds):
            started = time.perf_counter()
            try:
                turn = self.chat.chat_tools(SYSTEM, messages, TOOLS)
            except Exception as exc:  # noqa: BLE001 - every provider failure falls back, and says which
                err = classify_error(exc)
                usage.append(self._usage(None, started, error=str(err)))
                raise Fallback(f"provider error ({err.kind})") from exc
            usage.append(self._usage(turn, started))
            if not turn.calls:
                if not turn.text.strip():
                    raise Fallback("empty answer")
                return turn.text.strip()
            messages.append({"role": "assistant", "text": turn.text, "calls": turn.calls})
            for call_id, name, raw in turn.calls:
                try:
                    out = box.call(name, raw)
                except ToolError as exc:
                    raise Fallback(f"bad tool call ({exc})") from exc
                messages.append({"role": "tool", "id": call_id, "name": name,
                                 "content": json.dumps(out, default=str, allow_nan=False)})
        raise Fallback(f"no answer after {self.max_rounds} tool rounds")

    def _usage(self, turn: ToolTurn | None, started: float, *, error: str | None = None) -> LLMUsage:
        tin = turn.input_tokens if turn else None
        tout = turn.output_tokens if turn else None
        prices = getattr(self.chat, "prices", None) or {}
        return LLMUsage(provider=self.chat.provider, model=self.chat.model, input_tokens=tin, output_tokens=tout,
                        cost_usd=cost_usd(prices, self.chat.model, tin, tout),
                        latency_ms=(time.perf_counter() - started) * 1000, fallback_used=False,
                        fact_check="not_checked", error=error)
