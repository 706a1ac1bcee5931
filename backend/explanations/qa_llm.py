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

:meth:`LLMQA.stream` is the same turn with every LLM round streamed (``stream_tools``, when the adapter has
it): each completed sentence is yielded only once it passes that same per-sentence check, with the
explanation engine's :class:`StreamEvent` (``text``, ``reset``, ``final``). After a sentence fails nothing
more is shown and the round is read to its end, so the whole answer gets the same verdict as unstreamed
(text shown in a round that then calls tools is withdrawn by a ``reset`` with no reason: it is not the
answer). A fallback withdraws whatever was shown (``reset`` whose text is the engine label, which says
why); ``final`` always carries the answer that is stored.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from backend.explanations.engine import SENTENCE_END, StreamEvent
from backend.explanations.factcheck import Failure, fact_check, sentences, verdict
from backend.explanations.providers import Completion, LLMUsage, ProviderStream, classify_error, cost_usd
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
    cost_usd: float | None = None  # set by an adapter that is priced remotely (Lambda), else from the price table


class ToolStream(ProviderStream):
    """One streamed tool round: iterate for its text chunks (SDK failures become ``ProviderError``, as for an
    explanation); afterwards ``turn`` holds its text, its tool calls (the adapter joins their argument
    deltas into ``calls``: content index → ``[id, name, raw JSON]``) and its token counts."""

    def __init__(self, chunks: Iterator[str], finish: Callable[[str], Completion], calls: dict[int, list[str]]) -> None:
        super().__init__(chunks, finish)
        self._calls = calls

    @property
    def turn(self) -> ToolTurn | None:
        c = self.completion
        if c is None:
            return None
        calls = [(i, n, a) for _, (i, n, a) in sorted(self._calls.items())]
        return ToolTurn(c.text, calls, c.input_tokens, c.output_tokens)


class ToolChat(Protocol):
    provider: str
    model: str
    prices: Any

    def chat_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
                   ) -> ToolTurn: ...


class StreamingToolChat(ToolChat, Protocol):
    def stream_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
                     ) -> ToolStream: ...


class Fallback(Exception):
    """This turn goes to the offline engine; the message says why (shown in ``engine``)."""


def _norm(sentence: str) -> str:
    return re.sub(r"\s+", " ", sentence).strip().rstrip(".").casefold()


def _quotable(quoted: list[str]) -> set[str]:
    return {_norm(s) for t in quoted for s in sentences(t)}


def _failures(sentence: str, allowed: set[str], record: DecisionRecord) -> list[Failure]:
    """Nothing when the sentence is quoted from a tool result of this turn, else its fact-check failures."""
    return [] if _norm(sentence) in allowed else fact_check(sentence, record).failures


def check_answer(text: str, quoted: list[str], record: DecisionRecord) -> dict[str, Any]:
    """The verdict on every sentence: quoted from a tool result, or passing the fact-check on the record."""
    allowed = _quotable(quoted)
    parts = sentences(text)
    failures = []
    for s in parts:
        failures += _failures(s, allowed, record)
    n_quoted = sum(_norm(s) in allowed for s in parts)
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

    @property
    def streams(self) -> bool:
        """True when the adapter can stream its tool rounds (:meth:`stream` then shows sentences as they come)."""
        return callable(getattr(self.chat, "stream_tools", None))

    def ask(self, question: str, *, result: ScoreResult, comparison: ComparisonStats | None = None,
            state: dict[str, Any] | None = None, history: Callable[[], dict[str, Any]] | None = None) -> Answer:
        turn = self._turn(question, result, comparison, state, history, live=False)
        while True:  # unstreamed, the turn yields only its final event
            try:
                next(turn)
            except StopIteration as done:
                answer: Answer = done.value
                return answer

    def stream(self, question: str, *, result: ScoreResult, comparison: ComparisonStats | None = None,
               state: dict[str, Any] | None = None, history: Callable[[], dict[str, Any]] | None = None) -> QAStream:
        """The same turn as :meth:`ask`, its LLM rounds streamed when the adapter can (module docstring)."""
        return QAStream(self._turn(question, result, comparison, state, history, live=self.streams))

    def _turn(self, question: str, result: ScoreResult, comparison: ComparisonStats | None,
              state: dict[str, Any] | None, history: Callable[[], dict[str, Any]] | None,
              live: bool) -> Generator[StreamEvent, None, Answer]:
        state = dict(state or {})
        intent = classify(question or "")
        if intent.name == "refused":  # the rules decide refusals; the LLM never sees a refused question
            answer = self._remember(self.offline.ask(question, result=result, comparison=comparison, state=state),
                                    question, state)
            yield StreamEvent("final", answer.text)
            return answer
        t = _Progress(ToolBox(self.offline, result, comparison, history), DecisionRecord.from_score(result))
        try:
            text = yield from self._converse(question, state, t, live)
            check = check_answer(text, t.box.texts(), t.record)
            if not check["passed"]:
                t.usage[-1].fact_check = "failed"
                t.usage[-1].failed_claims = tuple(f"{f['kind']}: {f['claim']}" for f in check["failures"])
                raise Fallback(f"fact-check failed on {check['claims_failed']} claim(s)", check)
            t.usage[-1].fact_check = "passed"
        except Fallback as exc:
            off = self.offline.ask(question, result=result, comparison=comparison, state=state)
            check = exc.args[1] if len(exc.args) > 1 else {"checked": False, "passed": False}
            answer = self._remember(replace(off, engine=f"offline (fallback from {self.label}: {exc.args[0]})",
                                            tool_calls=t.box.calls, fact_check=check, usage=t.usage), question, state)
            if t.shown:  # withdraw the checked sentences shown so far: the offline engine answers this turn
                yield StreamEvent("reset", answer.engine)
            yield StreamEvent("final", answer.text)
            return answer
        memory = {"intent": intent.name, "features": list(intent.features), "changes": self._changes(t.box, state)}
        answer = Answer(text, intent.name, facts={"tools": [c["result"]["data"] for c in t.box.calls]},
                        state=memory, engine=self.label, tool_calls=t.box.calls, fact_check=check, usage=t.usage)
        answer = self._remember(answer, question, state)
        yield StreamEvent("final", answer.text)
        return answer

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

    def _converse(self, question: str, state: dict[str, Any], t: _Progress,
                  live: bool) -> Generator[StreamEvent, None, str]:
        messages: list[dict[str, Any]] = []
        for turn in state.get("transcript", []):
            messages += [{"role": "user", "text": turn["q"]}, {"role": "assistant", "text": turn["a"], "calls": []}]
        messages.append({"role": "user", "text": question})
        for _ in range(self.max_rounds):
            started = time.perf_counter()
            try:
                turn = (yield from self._streamed(messages, t)) if live else self.chat.chat_tools(SYSTEM, messages,
                                                                                                   TOOLS)
            except Exception as exc:  # noqa: BLE001 - every provider failure falls back, and says which
                err = classify_error(exc)
                t.usage.append(self._usage(None, started, error=str(err), streamed=live))
                raise Fallback(f"provider error ({err.kind})") from exc
            t.usage.append(self._usage(turn, started, streamed=live))
            if not turn.calls:
                if not turn.text.strip():
                    raise Fallback("empty answer")
                return turn.text.strip()
            messages.append({"role": "assistant", "text": turn.text, "calls": turn.calls})
            for call_id, name, raw in turn.calls:
                try:
                    out = t.box.call(name, raw)
                except ToolError as exc:
                    raise Fallback(f"bad tool call ({exc})") from exc
                messages.append({"role": "tool", "id": call_id, "name": name,
                                 "content": json.dumps(out, default=str, allow_nan=False)})
        raise Fallback(f"no answer after {self.max_rounds} tool rounds")

    def _streamed(self, messages: list[dict[str, Any]], t: _Progress) -> Generator[StreamEvent, None, ToolTurn]:
        """One streamed round: each completed sentence is yielded once it passes the check; after one fails
        nothing more is shown and the round is read to its end (the caller judges the whole answer)."""
        allowed = _quotable(t.box.texts())
        s = cast(StreamingToolChat, self.chat).stream_tools(SYSTEM, messages, TOOLS)  # live: it has one
        buffer, held = "", False
        try:
            for chunk in s:
                buffer += chunk
                while not held and (m := SENTENCE_END.search(buffer)) is not None:
                    piece, buffer = buffer[:m.end()], buffer[m.end():]
                    held = not (yield from self._show(piece, allowed, t))
        finally:
            s.close()  # also when the reader stops early: the SDK stream and its HTTP response are closed
        turn = s.turn
        assert turn is not None  # set once the provider stream is exhausted
        if not turn.calls and not held:
            yield from self._show(buffer, allowed, t)
        if turn.calls and t.shown:  # text before a tool call is not the answer: withdraw it
            t.shown = False
            yield StreamEvent("reset", "")
        return turn

    @staticmethod
    def _show(piece: str, allowed: set[str], t: _Progress) -> Generator[StreamEvent, None, bool]:
        """Yield ``piece`` when each of its sentences is quoted from a tool result or passes the fact-check."""
        parts = sentences(piece)
        if any(_failures(p, allowed, t.record) for p in parts):
            return False
        t.shown = t.shown or bool(parts)
        if piece:
            yield StreamEvent("text", piece)  # a bare line break too: the screen keeps the answer's lines
        return True

    def _usage(self, turn: ToolTurn | None, started: float, *, error: str | None = None,
               streamed: bool = False) -> LLMUsage:
        tin = turn.input_tokens if turn else None
        tout = turn.output_tokens if turn else None
        prices = getattr(self.chat, "prices", None) or {}
        cost = turn.cost_usd if turn is not None and turn.cost_usd is not None else cost_usd(
            prices, self.chat.model, tin, tout)
        return LLMUsage(provider=self.chat.provider, model=self.chat.model, input_tokens=tin, output_tokens=tout,
                        cost_usd=cost,
                        latency_ms=(time.perf_counter() - started) * 1000, fallback_used=False,
                        fact_check="not_checked", error=error, streamed=streamed)


@dataclass
class _Progress:
    """One turn so far: its tool calls, the LLM calls' usage, and whether checked text is on screen."""

    box: ToolBox
    record: DecisionRecord
    usage: list[LLMUsage] = field(default_factory=list)
    shown: bool = False


class QAStream:
    """Iterate for :class:`StreamEvent` (``text``: a checked sentence; ``reset``: withdraw what was shown, its
    text the engine that answers instead, empty when only a tool round's preamble is withdrawn; ``final``:
    the answer); ``answer`` is set once iteration ends."""

    def __init__(self, turn: Generator[StreamEvent, None, Answer]) -> None:
        self._turn = turn
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        self.answer = yield from self._turn
