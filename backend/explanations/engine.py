"""The explanation engine: primary LLM → fallback LLM → template, with a fact-check on every answer.

* Providers: OpenAI and Anthropic through their SDKs, or an AWS Lambda running this same engine
  (:mod:`lambda_adapter`, whose text is checked here again like any provider's).
* Each provider call has its own timeout and bounded retries (SDK settings) and runs inside a
  :class:`ProviderGuard` (overall deadline, answer size cap, its own bounded pool, a circuit breaker per
  provider); any error moves on to the next provider, and every attempt is accounted in an :class:`LLMUsage`.
* Every LLM answer is fact-checked against the decision record. A failed check never returns LLM
  text: the template explanation is returned, with the failed claims in ``explanation.failures``
  and in the usage row (by default no further provider is tried after a failed check:
  ``retry_on_failed_check=True`` tries the fallback first).
* :meth:`ExplanationEngine.stream` passes text on sentence by sentence, each sentence fact-checked
  before it is yielded; a ``reset`` event tells the screen to clear what it showed before the
  final (possibly template) text.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from backend.explanations.factcheck import FactCheckResult, Failure, fact_check
from backend.explanations.guard import ProviderGuard
from backend.explanations.metrics import record_explanation
from backend.explanations.providers import Completion, LLMUsage, ProviderError, ProviderStream
from backend.explanations.record import DecisionRecord, Explanation
from backend.explanations.template import TemplateExplainer
from backend.platform.clock import SystemClock
from backend.platform.ports import Clock, Metrics

UNKNOWN_PROVIDER = "unknown LLM provider {provider!r}: expected template, openai, anthropic or lambda"
SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


class LLMExplainer(Protocol):
    provider: str
    model: str

    def generate(self, record: DecisionRecord) -> Completion: ...

    def stream(self, record: DecisionRecord) -> ProviderStream: ...


@dataclass
class ExplanationOutcome:
    explanation: Explanation
    usage: list[LLMUsage] = field(default_factory=list)
    checks: list[FactCheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[Failure]:
        return [f for c in self.checks for f in c.failures]


@dataclass(frozen=True)
class StreamEvent:
    kind: str  # text | reset | final
    text: str


class ExplanationEngine:
    def __init__(self, primary: LLMExplainer | None = None, fallback: LLMExplainer | None = None,
                 template: TemplateExplainer | None = None, clock: Clock | None = None, *,
                 retry_on_failed_check: bool = False, metrics: Metrics | None = None,
                 guard: ProviderGuard | None = None) -> None:
        self.providers = [p for p in (primary, fallback) if p is not None]
        self.metrics = metrics  # counts each explanation, its fallbacks and LLM tokens/cost (metrics_events)
        self.primary = primary
        self.template = template or TemplateExplainer()
        self.clock = clock or SystemClock()
        self.retry_on_failed_check = retry_on_failed_check
        self.guard = guard or ProviderGuard()  # deadline, size cap, own bounded pool, a breaker per provider

    def _usage(self, p: LLMExplainer, i: int, *, c: Completion | None = None, error: str | None = None,
               check: FactCheckResult | None = None, streamed: bool = False, latency_ms: float = 0.0) -> LLMUsage:
        verdict = "not_checked" if check is None else ("passed" if check.ok else "failed")
        claims = tuple(f"{f.kind}: {f.claim}" for f in check.failures) if check else ()
        return LLMUsage(provider=p.provider, model=p.model, input_tokens=c.input_tokens if c else None,
                        output_tokens=c.output_tokens if c else None, cost_usd=c.cost_usd if c else None,
                        latency_ms=c.latency_ms if c else latency_ms, fallback_used=i > 0, fact_check=verdict,
                        error=error, failed_claims=claims, streamed=streamed, created_at=self.clock.now())

    def _template(self, record: DecisionRecord, out: ExplanationOutcome) -> ExplanationOutcome:
        exp = self.template.explain(record)
        exp.fallback_used = bool(self.providers)
        exp.failures = out.failures
        out.explanation = exp
        return out

    def explain(self, record: DecisionRecord) -> ExplanationOutcome:
        out = ExplanationOutcome(Explanation("", "none"))
        for i, p in enumerate(self.providers):
            try:
                c = self.guard.generate(p, record)
            except Exception as exc:  # noqa: BLE001 - any failure moves on to the next provider
                out.usage.append(self._usage(p, i, error=_error(exc)))
                continue
            check = fact_check(c.text, record)
            out.checks.append(check)
            out.usage.append(self._usage(p, i, c=c, check=check))
            if check.ok:
                out.explanation = Explanation(c.text, c.provider, c.model, fallback_used=i > 0)
                return self._done(out)
            if not self.retry_on_failed_check:
                break
        return self._done(self._template(record, out))

    def _done(self, out: ExplanationOutcome) -> ExplanationOutcome:
        record_explanation(self.metrics, out, llm_configured=bool(self.providers))
        return out

    def stream(self, record: DecisionRecord) -> EngineStream:
        return EngineStream(self, record)


class EngineStream:
    """Iterate for :class:`StreamEvent`; ``outcome`` is set once iteration ends."""

    def __init__(self, engine: ExplanationEngine, record: DecisionRecord) -> None:
        self.engine = engine
        self.record = record
        self.outcome: ExplanationOutcome | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        eng, record = self.engine, self.record
        out = ExplanationOutcome(Explanation("", "none"))
        for i, p in enumerate(eng.providers):
            shown, failed = yield from self._one(p, i, out)
            if shown and (failed or out.explanation.provider == "none"):
                yield StreamEvent("reset", "")
            if out.explanation.provider != "none":
                break
            if failed and not eng.retry_on_failed_check:
                break
        if out.explanation.provider == "none":
            eng._template(record, out)
        self.outcome = eng._done(out)
        yield StreamEvent("final", out.explanation.text)

    def _one(self, p: LLMExplainer, i: int, out: ExplanationOutcome) -> Generator[StreamEvent, None, tuple[bool, bool]]:
        """Stream one provider, yielding checked sentences; returns (anything shown, check failed)."""
        record = self.record
        received, buffer, shown = "", "", False
        checked: dict[str, list[Failure]] = {}  # each sentence is checked once: as it arrives, not again at the end
        try:
            s = self.engine.guard.stream(p, record)
            for chunk in s:
                received += chunk
                buffer += chunk
                while (m := SENTENCE_END.search(buffer)) is not None:
                    piece, buffer = buffer[:m.end()], buffer[m.end():]
                    check = fact_check(piece, record, checked) if piece.strip() else None
                    if check is not None and not check.ok:  # stop reading: this answer is not shown
                        s.close()
                        self._account(p, i, out, Completion(received, p.provider, p.model, None, None, 0.0, None),
                                      check)
                        return shown, True
                    shown = True
                    yield StreamEvent("text", piece)
        except Exception as exc:  # noqa: BLE001
            out.usage.append(self.engine._usage(p, i, error=_error(exc), streamed=True))
            return shown, False
        c = s.completion
        assert c is not None  # set once the provider stream is exhausted
        check = fact_check(c.text, record, checked)
        if check.ok and buffer.strip():
            shown = True
            yield StreamEvent("text", buffer)
        self._account(p, i, out, c, check)
        return shown, not check.ok

    def _account(self, p: LLMExplainer, i: int, out: ExplanationOutcome, c: Completion,
                 check: FactCheckResult) -> None:
        out.checks.append(check)
        out.usage.append(self.engine._usage(p, i, c=c, check=check, streamed=True))
        if check.ok:
            out.explanation = Explanation(c.text, c.provider, c.model, fallback_used=i > 0)


def _error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"


__all__ = ["ExplanationEngine", "ExplanationOutcome", "EngineStream", "StreamEvent"]
