"""What every LLM explainer shares: the prompt, usage and cost accounting, the one SDK error classifier,
streaming, and the base class the SDK adapters (:mod:`.adapters.openai`, :mod:`.adapters.anthropic`) fill in.

The prompt is built only from the :class:`DecisionRecord` (system: the rules; user: the record's
JSON). Each adapter takes its provider settings (model, base_url, key, timeout, bounded retries,
temperature, max tokens) and may be given a ready SDK client or an ``httpx.Client`` so tests drive
the real SDK code against a loopback fake. SDK errors become :class:`ProviderError` with a kind
(``ERROR_KINDS``); the engine decides what to do next. Text from here is *unchecked*: only the
engine (after the fact-check) may hand it to an officer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.explanations.config import DEFAULT_LLM_PRICES, LLMProviderSettings, ModelPrice
from backend.explanations.record import DecisionRecord, Explanation
from backend.platform import sdk_errors

SYSTEM_PROMPT = """You explain one credit decision to a loan officer in plain language.
Rules:
- Use ONLY the facts in the JSON decision record in the user message. Never add a factor, number or reason.
- State the recommendation and the probability-of-default band.
- For each principal reason, name the feature as written in the record, give the applicant's value exactly \
as written, and say that it raised the risk. Other factors may be mentioned with their effect_on_risk \
("raises" or "lowers") exactly as given.
- Never mention sex, gender, age, race, ethnicity, religion, national origin, marital status, disability, \
zip code or any proxy for them.
- Never promise or guarantee approval or any other outcome.
- At most 120 words of plain sentences; no headings."""
DEFAULT_MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}
MISSING_SDK = "provider {provider!r} needs the {package!r} package (pip install {package})"
TIMEOUT, RATE_LIMITED, SERVER_ERROR, CONNECTION, BAD_RESPONSE, EMPTY_ANSWER, SDK_MISSING = (
    "timeout", "rate_limited", "server_error", "connection", "bad_response", "empty_answer", "sdk_missing")
ERROR_KINDS = (TIMEOUT, RATE_LIMITED, SERVER_ERROR, CONNECTION, BAD_RESPONSE, EMPTY_ANSWER, SDK_MISSING)


class ProviderError(RuntimeError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


@dataclass
class LLMUsage:
    """One LLM call, for the cost pages (the caller stores it)."""

    provider: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    latency_ms: float
    fallback_used: bool
    fact_check: str  # passed | failed | not_checked (the call failed)
    error: str | None = None
    failed_claims: tuple[str, ...] = ()
    streamed: bool = False
    created_at: datetime | None = None


@dataclass
class Completion:
    text: str
    provider: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: float
    cost_usd: float | None


def cost_usd(prices: dict[str, ModelPrice], model: str, input_tokens: int | None,
             output_tokens: int | None) -> float | None:
    """Cost from the price table (USD per 1M tokens); ``None`` when the model or the counts are unknown."""
    price = prices.get(model)
    if price is None or input_tokens is None or output_tokens is None:
        return None
    return round((input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1e6, 8)


#: What an SDK failure (:func:`backend.platform.sdk_errors.classify_sdk_error`) is for the explanation engine.
_KIND_OF = {sdk_errors.SDK_MISSING: SDK_MISSING, sdk_errors.TIMEOUT: TIMEOUT, sdk_errors.THROTTLED: RATE_LIMITED,
            sdk_errors.SERVER_ERROR: SERVER_ERROR, sdk_errors.CONNECTION: CONNECTION,
            sdk_errors.CREDENTIALS: CONNECTION,  # no credentials or region: the provider cannot be reached
            sdk_errors.REFUSED: BAD_RESPONSE, sdk_errors.UNKNOWN: BAD_RESPONSE}


def classify_error(exc: Exception) -> ProviderError:
    """Any SDK failure (openai, anthropic, botocore for the Lambda explainer) as a :class:`ProviderError`
    whose ``kind`` is one of :data:`ERROR_KINDS`, through the platform's one SDK error classifier."""
    if isinstance(exc, ProviderError):
        return exc
    failure = sdk_errors.classify_sdk_error(exc)
    if failure.kind == sdk_errors.SDK_MISSING:  # our own message: which package to install
        return ProviderError(SDK_MISSING, failure.message)
    return ProviderError(_KIND_OF[failure.kind], failure.detail)


class ProviderStream:
    """Iterate for text chunks as they arrive; afterwards ``completion`` holds the whole answer."""

    def __init__(self, chunks: Iterator[str], finish: Callable[[str], Completion]) -> None:
        self._chunks = chunks
        self._finish = finish
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        parts: list[str] = []
        try:
            for chunk in self._chunks:
                parts.append(chunk)
                yield chunk
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise classify_error(exc) from exc
        self.completion = self._finish("".join(parts))

    def close(self) -> None:
        """Stop reading (the SDK stream and its HTTP response are closed)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    @property
    def explanation(self) -> Explanation | None:
        c = self.completion
        return None if c is None else Explanation(text=c.text, provider=c.provider, model=c.model)


class SDKExplainer:
    """One provider through its official SDK; subclasses (the adapters) make the client and the request."""

    provider = ""
    package = ""

    def __init__(self, settings: LLMProviderSettings, *, prices: dict[str, ModelPrice] | None = None,
                 client: Any = None, http_client: Any = None) -> None:
        self.settings = settings
        self.model = settings.model or DEFAULT_MODELS[self.provider]
        self.prices = DEFAULT_LLM_PRICES if prices is None else prices
        self._client = client
        self._http_client = http_client

    @property
    def client(self) -> Any:
        if self._client is None:
            kwargs: dict[str, Any] = {"api_key": self.settings.api_key.get_secret_value() or "unset",
                                      "timeout": self.settings.timeout, "max_retries": self.settings.max_retries}
            if self.settings.base_url:
                kwargs["base_url"] = self.settings.base_url
            if self._http_client is not None:
                kwargs["http_client"] = self._http_client
            self._client = self._make_client(kwargs)
        return self._client

    def _make_client(self, kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _completion(self, text: str, tin: int | None, tout: int | None, started: float, *,
                    require_text: bool = True) -> Completion:
        """The call's text, tokens, latency and cost; an empty text is an error unless ``require_text`` is False
        (a tool-calling round of the decision conversation may have no text)."""
        if require_text and not text.strip():
            raise ProviderError(EMPTY_ANSWER, "the model returned no text")
        return Completion(text=text.strip(), provider=self.provider, model=self.model, input_tokens=tin,
                          output_tokens=tout, latency_ms=(time.perf_counter() - started) * 1000,
                          cost_usd=cost_usd(self.prices, self.model, tin, tout))

    def generate(self, record: DecisionRecord) -> Completion:
        """One blocking call; raises :class:`ProviderError`."""
        started = time.perf_counter()
        try:
            text, tin, tout = self._call(record)
        except Exception as exc:  # noqa: BLE001
            raise classify_error(exc) from exc
        return self._completion(text, tin, tout, started)

    def explain(self, record: DecisionRecord) -> Explanation:
        """Unchecked explanation (use :class:`ExplanationEngine` for anything shown to a person)."""
        c = self.generate(record)
        return Explanation(text=c.text, provider=c.provider, model=c.model)

    def stream(self, record: DecisionRecord) -> ProviderStream:
        started = time.perf_counter()
        usage: dict[str, int | None] = {"in": None, "out": None}
        return ProviderStream(self._stream(record, usage),
                              lambda text: self._completion(text, usage["in"], usage["out"], started))

    def _call(self, record: DecisionRecord) -> tuple[str, int | None, int | None]:
        raise NotImplementedError

    def _stream(self, record: DecisionRecord, usage: dict[str, int | None]) -> Iterator[str]:
        raise NotImplementedError
