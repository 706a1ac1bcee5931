"""The model served by a SageMaker endpoint (``CREDITRISK_MODEL__SERVER=sagemaker``).

:class:`SageMakerModelServer` calls ``sagemaker-runtime:InvokeEndpoint`` through boto3 (imported on
first use; an injected client, e.g. one wrapped in a botocore ``Stubber``, is used as is) with:

* explicit timeouts: ``CREDITRISK_MODEL__SAGEMAKER_CONNECT_TIMEOUT`` (1 s) and ``..._READ_TIMEOUT`` (2 s);
* bounded retries done here (botocore's own are switched off so the count is exact, Stubber or not):
  ``..._MAX_ATTEMPTS`` (2) calls in all, with a short jittered backoff, on throttling, 5xx, "model not
  ready", timeouts and dropped connections; never on a 4xx (the same request would be refused again);
* response validation: JSON ``{"model_version", "predictions": [...]}`` with one item per application,
  each with a model version, ``pd`` and ``raw_score`` in [0, 1], finite attributions, members,
  margin and base value, a known risk class and recommendation. Anything else is refused.

Every failure is a :class:`SageMakerError` whose ``kind`` says what happened. The scoring path turns
it into the documented fallback (:mod:`backend.models.adapters.sagemaker_remote`).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.domain import APPROVE, DENY, HIGH_RISK, LOW_RISK, REVIEW
from backend.models.config import ModelSettings
from backend.platform import sdk_errors

CONTENT_TYPE = "application/json"
THROTTLED, SERVER, TIMEOUT, CONNECTION, BAD_RESPONSE, REFUSED, CONFIG = (
    "throttled", "server_error", "timeout", "connection", "bad_response", "refused", "config")
RETRYABLE = frozenset({THROTTLED, SERVER, TIMEOUT, CONNECTION})
MSG_NO_ENDPOINT = "CREDITRISK_MODEL__SAGEMAKER_ENDPOINT is empty: name the SageMaker endpoint to call"
MSG_NO_SDK = "the SageMaker model server needs boto3 (pip install boto3)"
MSG_FAILED = "SageMaker endpoint {endpoint!r} failed after {attempts} attempt(s): {detail}"
MSG_NOT_JSON = "the endpoint's answer is not a JSON object"
MSG_COUNT = "the endpoint answered {got} prediction(s) for {sent} application(s)"
MSG_FIELD = "prediction {index}: {field!r} is missing or invalid"
MSG_RANGE = "prediction {index}: {field!r} is outside [0, 1]"
MSG_CONTENT_TYPE = "the endpoint answered {content_type!r}, not application/json"
#: What an SDK failure (:func:`backend.platform.sdk_errors.classify_sdk_error`) is for the model server.
_KIND_OF = {sdk_errors.TIMEOUT: TIMEOUT, sdk_errors.THROTTLED: THROTTLED, sdk_errors.SERVER_ERROR: SERVER,
            sdk_errors.CONNECTION: CONNECTION, sdk_errors.REFUSED: REFUSED, sdk_errors.CREDENTIALS: CONFIG,
            sdk_errors.SDK_MISSING: CONFIG, sdk_errors.UNKNOWN: BAD_RESPONSE}


class SageMakerError(RuntimeError):
    """The endpoint could not give a valid answer; ``kind`` is one of the module's kinds."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass(frozen=True)
class RemoteScore:
    """One application's score as the serving container computed it (see :mod:`backend.serving.scorer`)."""

    model_name: str
    model_version: str
    model_role: str
    pd: float
    raw_score: float
    risk_class: str
    confidence: float
    recommendation: str
    policy_reasons: list[str]
    reasons: list[dict[str, Any]]
    attributions: dict[str, float]
    base_value: float
    margin: float
    member_spread: float
    members: list[float]
    fallback_error: str | None = None
    variant: str | None = None


def classify(exc: Exception) -> SageMakerError:
    """An SDK failure as a :class:`SageMakerError` with a kind, through the platform's one SDK error classifier."""
    if isinstance(exc, SageMakerError):
        return exc
    failure = sdk_errors.classify_sdk_error(exc)
    return SageMakerError(_KIND_OF[failure.kind], failure.detail)


def _number(item: Mapping[str, Any], field: str, index: int, *, unit: bool = False) -> float:
    v = item.get(field)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise SageMakerError(BAD_RESPONSE, MSG_FIELD.format(index=index, field=field))
    if unit and not 0.0 <= v <= 1.0:
        raise SageMakerError(BAD_RESPONSE, MSG_RANGE.format(index=index, field=field))
    return float(v)


def parse_item(item: Any, index: int, variant: str | None = None) -> RemoteScore:
    """One validated prediction, or :class:`SageMakerError` (``bad_response``)."""
    if not isinstance(item, dict):
        raise SageMakerError(BAD_RESPONSE, MSG_FIELD.format(index=index, field="prediction"))

    def text(field: str, allowed: Sequence[str] | None = None) -> str:
        v = item.get(field)
        if not isinstance(v, str) or not v or (allowed is not None and v not in allowed):
            raise SageMakerError(BAD_RESPONSE, MSG_FIELD.format(index=index, field=field))
        return v

    attributions, members = item.get("attributions"), item.get("members")
    if not isinstance(attributions, dict) or not attributions \
            or not all(isinstance(k, str) for k in attributions):
        raise SageMakerError(BAD_RESPONSE, MSG_FIELD.format(index=index, field="attributions"))
    if not isinstance(members, list) or not members:
        raise SageMakerError(BAD_RESPONSE, MSG_FIELD.format(index=index, field="members"))
    reasons, why, error = item.get("reasons"), item.get("policy_reasons"), item.get("fallback_error")
    if not isinstance(reasons, list) or not all(isinstance(r, dict) and isinstance(r.get("code"), str) for r in reasons):
        raise SageMakerError(BAD_RESPONSE, MSG_FIELD.format(index=index, field="reasons"))
    if not isinstance(why, list) or not all(isinstance(w, str) for w in why):
        raise SageMakerError(BAD_RESPONSE, MSG_FIELD.format(index=index, field="policy_reasons"))
    if error is not None and not isinstance(error, str):
        raise SageMakerError(BAD_RESPONSE, MSG_FIELD.format(index=index, field="fallback_error"))
    return RemoteScore(
        model_name=text("model_name"), model_version=text("model_version"),
        model_role=text("model_role", ("primary", "fallback")),
        pd=_number(item, "pd", index, unit=True), raw_score=_number(item, "raw_score", index, unit=True),
        risk_class=text("risk_class", (HIGH_RISK, LOW_RISK)), confidence=_number(item, "confidence", index, unit=True),
        recommendation=text("recommendation", (APPROVE, DENY, REVIEW)), policy_reasons=list(why), reasons=reasons,
        attributions={k: _number(attributions, k, index) for k in attributions},
        base_value=_number(item, "base_value", index), margin=_number(item, "margin", index),
        member_spread=_number(item, "member_spread", index),
        members=[_number({"m": m}, "m", index, unit=True) for m in members], fallback_error=error, variant=variant)


def parse_response(body: bytes, sent: int, variant: str | None = None) -> list[RemoteScore]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SageMakerError(BAD_RESPONSE, MSG_NOT_JSON) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("predictions"), list):
        raise SageMakerError(BAD_RESPONSE, MSG_NOT_JSON)
    items = doc["predictions"]
    if len(items) != sent:
        raise SageMakerError(BAD_RESPONSE, MSG_COUNT.format(got=len(items), sent=sent))
    return [parse_item(item, i, variant) for i, item in enumerate(items)]


class SageMakerModelServer:
    """Scores applications on a SageMaker endpoint (``invoke``); thread-safe."""

    backend = "sagemaker"

    def __init__(self, endpoint: str, *, region: str, endpoint_url: str = "", connect_timeout: float = 1.0,
                 read_timeout: float = 2.0, max_attempts: int = 2, max_batch: int = 100, client: Any = None,
                 sleep: Callable[[float], None] = time.sleep, backoff_seconds: float = 0.05) -> None:
        if not endpoint.strip():
            raise ValueError(MSG_NO_ENDPOINT)
        self.endpoint = endpoint.strip()
        self.region = region
        self.endpoint_url = endpoint_url
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_attempts = max(1, max_attempts)
        self.max_batch = max(1, max_batch)
        self.sleep = sleep
        self.backoff_seconds = backoff_seconds
        self._client = client
        self._lock = threading.Lock()
        self.stats = {"calls": 0, "retries": 0, "failures": 0}

    @classmethod
    def from_settings(cls, s: ModelSettings, *, client: Any = None) -> SageMakerModelServer:
        return cls(s.sagemaker_endpoint, region=s.aws_region, endpoint_url=s.sagemaker_endpoint_url,
                   connect_timeout=s.sagemaker_connect_timeout, read_timeout=s.sagemaker_read_timeout,
                   max_attempts=s.sagemaker_max_attempts, max_batch=s.sagemaker_max_batch, client=client)

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import boto3
                    from botocore.config import Config
                except ImportError as exc:
                    raise SageMakerError(CONFIG, MSG_NO_SDK) from exc
                config = Config(connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
                                retries={"total_max_attempts": 1, "mode": "standard"})  # retries are ours
                self._client = boto3.session.Session().client(
                    "sagemaker-runtime", region_name=self.region, endpoint_url=self.endpoint_url or None,
                    config=config)
            return self._client

    def invoke(self, records: Sequence[Mapping[str, Any]]) -> list[RemoteScore]:
        """Score validated applications (chunks of ``max_batch``), in order; raises :class:`SageMakerError`."""
        out: list[RemoteScore] = []
        for start in range(0, len(records), self.max_batch):
            out += self._invoke_chunk(records[start:start + self.max_batch])
        return out

    def _invoke_chunk(self, records: Sequence[Mapping[str, Any]]) -> list[RemoteScore]:
        body = json.dumps({"instances": [dict(r) for r in records]}, allow_nan=False,
                          separators=(",", ":")).encode()
        last: SageMakerError | None = None
        made = 0
        for attempt in range(self.max_attempts):
            made += 1
            if attempt:
                self.stats["retries"] += 1
                self.sleep(random.uniform(0, self.backoff_seconds * 2 ** attempt))  # noqa: S311 - jitter
            self.stats["calls"] += 1
            try:
                resp = self.client.invoke_endpoint(EndpointName=self.endpoint, Body=body, ContentType=CONTENT_TYPE,
                                                   Accept=CONTENT_TYPE)
                content_type = str(resp.get("ContentType") or CONTENT_TYPE)
                if not content_type.split(";", 1)[0].strip().lower().endswith("json"):
                    raise SageMakerError(BAD_RESPONSE, MSG_CONTENT_TYPE.format(content_type=content_type[:80]))
                payload = resp["Body"].read()
                return parse_response(payload, len(records), resp.get("InvokedProductionVariant"))
            except Exception as exc:  # noqa: BLE001 - every SDK failure is classified
                last = classify(exc)
                if not last.retryable:
                    break
        self.stats["failures"] += 1
        assert last is not None
        raise SageMakerError(last.kind, MSG_FAILED.format(endpoint=self.endpoint, attempts=made, detail=str(last)[:300]))
