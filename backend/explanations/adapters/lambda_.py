"""The explainer behind ``CREDITRISK_LLM__PROVIDER=lambda``: the engine runs in an AWS Lambda function.

The function (``backend.serving.explain_lambda.handler``) receives ``{"record":
DecisionRecord.to_dict()}`` and runs its own explanation engine (its own LLM provider, fact-check and
template fallback). This adapter calls it through boto3's ``lambda`` client (``invoke``,
``RequestResponse``) with the provider settings: ``model`` is the function name (or ARN), ``base_url``
a custom endpoint, ``region`` the AWS region (else ``AWS_DEFAULT_REGION``, else ``us-east-1``),
``timeout`` the connect and read timeout, ``max_retries`` botocore's bounded retries (standard mode).
Credentials come from the usual AWS chain (``api_key`` is not used).

:meth:`LambdaExplainer.chat_tools` is the decision conversation's LLM round through the same function: it sends
``{"qa": {"system", "messages", "tools"}}`` and returns the :class:`~backend.explanations.qa_llm.ToolTurn` the
function's own provider (OpenAI or Anthropic) produced. The function only carries the LLM round: the tools run
here, in the service, against its database, and the next round sends their results. There is no
``stream_tools``: a ``RequestResponse`` invocation does not stream, so the Q&A takes its unstreamed path.

The text that comes back is still *unchecked* here: the local engine fact-checks it against the local
record like any provider's answer. Failures become :class:`ProviderError` with a kind from
``providers.ERROR_KINDS`` (SDK errors through :func:`~backend.explanations.providers.classify_error`, the
same classifier as every provider's); the engine then moves on to the fallback provider or the template.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

from backend.explanations.config import LLMProviderSettings
from backend.explanations.providers import (
    BAD_RESPONSE,
    EMPTY_ANSWER,
    ERROR_KINDS,
    MISSING_SDK,
    SERVER_ERROR,
    TIMEOUT,
    Completion,
    ProviderError,
    ProviderStream,
    classify_error,
)
from backend.explanations.qa_llm import ToolTurn
from backend.explanations.record import DecisionRecord, Explanation
from backend.platform.config import SETTINGS_ERROR, SettingsError

DEFAULT_REGION = "us-east-1"
FUNCTION_REQUIRED = SETTINGS_ERROR.format(
    env="CREDITRISK_LLM__MODEL (or CREDITRISK_LLM__FALLBACK__MODEL)",
    msg="provider 'lambda' needs the function name or ARN")
FUNCTION_FAILED = "the function failed ({function_error}, {error_type}); see its CloudWatch logs"
NOT_200 = "HTTP {status} from a RequestResponse invocation (expected 200)"
NOT_JSON = "the function's reply is not a JSON object"
BAD_FIELD = "the function's reply has no valid {field!r}"
REFUSED = "the function refused the request ({kind}): {message}"
MAX_CALLS = 32  # tool calls in one reply (the function accepts as many in each message it is sent)
MAX_CALL_CHARS = 20_000  # an id, a name or one call's raw JSON arguments
#: Each remote usage row may carry these numbers (``None`` or missing when unknown), with sanity bounds.
_USAGE_NUMBERS = (("input_tokens", int, 10**12), ("output_tokens", int, 10**12), ("cost_usd", float, 1e9))


class LambdaExplainer:
    """:class:`~backend.explanations.engine.LLMExplainer` over ``lambda:Invoke``.

    ``client`` may be a ready boto3 ``lambda`` client (e.g. wrapped in a botocore ``Stubber``).
    """

    provider = "lambda"
    prices: Any = None  # the function prices its own LLM calls: each reply carries its cost

    def __init__(self, settings: LLMProviderSettings, *, client: Any = None) -> None:
        if not settings.model.strip():
            raise SettingsError(FUNCTION_REQUIRED)
        self.settings = settings
        self.model = settings.model.strip()  # the function name or ARN
        self._client = client

    @property
    def region(self) -> str:
        return self.settings.region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as exc:
                raise ImportError(MISSING_SDK.format(provider=self.provider, package="boto3")) from exc
            s = self.settings
            # botocore's ``max_attempts`` counts retries only; ``total_max_attempts`` counts the first call too.
            config = Config(connect_timeout=s.timeout, read_timeout=s.timeout,
                            retries={"total_max_attempts": s.max_retries + 1, "mode": "standard"})
            self._client = boto3.session.Session().client(
                "lambda", region_name=self.region, endpoint_url=s.base_url or None, config=config)
        return self._client

    def generate(self, record: DecisionRecord) -> Completion:
        """One ``RequestResponse`` invocation; raises :class:`ProviderError`. The text is unchecked."""
        started = time.perf_counter()
        reply = self._invoke({"record": record.to_dict()})
        text = reply.get("text")
        if not isinstance(text, str):
            raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field="text"))
        if not text.strip():
            raise ProviderError(EMPTY_ANSWER, "the function returned no text")
        tin, tout, cost = _usage_totals(reply.get("usage", []))
        return Completion(text=text.strip(), provider=self.provider, model=self.model, input_tokens=tin,
                          output_tokens=tout, latency_ms=(time.perf_counter() - started) * 1000, cost_usd=cost)

    def chat_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]) -> ToolTurn:
        """One LLM round of the decision conversation, by the function's own provider; raises
        :class:`ProviderError`. The text is unchecked; the tool calls are for the caller to run."""
        reply = self._invoke({"qa": {"system": system, "messages": messages, "tools": tools}})
        text, calls = reply.get("text"), reply.get("calls")
        if not isinstance(text, str):
            raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field="text"))
        if not isinstance(calls, list) or len(calls) > MAX_CALLS:
            raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field="calls"))
        tin, tout, cost = _usage_totals(reply.get("usage", []))
        return ToolTurn(text, [_call(c) for c in calls], tin, tout, cost)

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """One ``RequestResponse`` invocation; the function's ``ok`` reply, else :class:`ProviderError`."""
        payload = json.dumps(event, allow_nan=False, separators=(",", ":")).encode()
        try:
            resp = self.client.invoke(FunctionName=self.model, InvocationType="RequestResponse", Payload=payload)
            body = resp["Payload"].read()
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise classify_error(exc) from exc
        return self._reply(resp, body)

    def explain(self, record: DecisionRecord) -> Explanation:
        """Unchecked explanation (use :class:`ExplanationEngine` for anything shown to a person)."""
        c = self.generate(record)
        return Explanation(text=c.text, provider=c.provider, model=c.model)

    def stream(self, record: DecisionRecord) -> ProviderStream:
        """A :class:`ProviderStream` that yields the whole text once.

        A ``RequestResponse`` invocation does not stream: nothing is shown until the function has
        answered; the engine then checks and passes the text on sentence by sentence as usual.
        """
        done: list[Completion] = []

        def chunks() -> Iterator[str]:
            done.append(self.generate(record))
            yield done[0].text

        return ProviderStream(chunks(), lambda _text: done[0])

    @staticmethod
    def _reply(resp: dict[str, Any], body: bytes) -> dict[str, Any]:
        function_error = resp.get("FunctionError")
        reply = _json_object(body)
        if function_error:  # the handler raised, or the runtime killed it (timeout, out of memory)
            info = reply or {}
            error_type, message = info.get("errorType"), info.get("errorMessage")
            error_type = error_type if isinstance(error_type, str) else "unknown"
            message = message if isinstance(message, str) else ""
            timed_out = "timedout" in error_type.lower() or "timed out" in message.lower()
            raise ProviderError(TIMEOUT if timed_out else SERVER_ERROR,
                                FUNCTION_FAILED.format(function_error=function_error, error_type=error_type[:80]))
        status = resp.get("StatusCode")
        if status != 200:
            raise ProviderError(SERVER_ERROR if isinstance(status, int) and status >= 500 else BAD_RESPONSE,
                                NOT_200.format(status=status))
        if reply is None:
            raise ProviderError(BAD_RESPONSE, NOT_JSON)
        if reply.get("ok") is False:
            error = reply.get("error")
            error = error if isinstance(error, dict) else {}
            kind, message = str(error.get("kind", "unknown"))[:40], str(error.get("message", ""))[:300]
            raise ProviderError(_refusal_kind(kind, error.get("provider_kind")),
                                REFUSED.format(kind=kind, message=message))
        if reply.get("ok") is not True:
            raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field="ok"))
        return reply


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _refusal_kind(kind: str, provider_kind: Any) -> str:
    """A refusal's error kind: a malformed request is a bad response; a failed call to the function's own LLM
    keeps that call's kind (``provider_kind``); anything else (its configuration) is a server error."""
    if kind == "bad_request":
        return BAD_RESPONSE
    if kind == "provider" and provider_kind in ERROR_KINDS:
        return str(provider_kind)
    return SERVER_ERROR


def _call(c: Any) -> tuple[str, str, str]:
    """One tool call of a reply, ``(id, name, raw JSON arguments)``; the id and the name are not empty."""
    if not isinstance(c, dict) or set(c) != {"id", "name", "arguments"}:
        raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field="calls"))
    call_id, name, args = c["id"], c["name"], c["arguments"]
    for v in (call_id, name, args):
        if not isinstance(v, str) or len(v) > MAX_CALL_CHARS:
            raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field="calls"))
    if not call_id or not name:
        raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field="calls"))
    return call_id, name, args


def _usage_totals(rows: Any) -> tuple[int | None, int | None, float | None]:
    """Tokens and cost summed over the function's own LLM calls (``None`` when none reported them)."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field="usage"))
    totals: list[Any] = []
    for key, kind, bound in _USAGE_NUMBERS:
        values = [r.get(key) for r in rows if r.get(key) is not None]
        ok_types = (int,) if kind is int else (int, float)
        if any(isinstance(v, bool) or not isinstance(v, ok_types) or not 0 <= v <= bound for v in values):
            raise ProviderError(BAD_RESPONSE, BAD_FIELD.format(field=f"usage.{key}"))
        totals.append(None if not values else (sum(values) if kind is int else round(float(sum(values)), 8)))
    return totals[0], totals[1], totals[2]
