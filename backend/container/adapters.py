"""Every adapter, chosen from settings: the one place that knows which backend serves which port.

Cache (in-process or Redis), metrics (Prometheus, CloudWatch EMF or none), alert notifications (log or
webhook), the API's rate limiter (in-process or Redis), the model server (local registry or a SageMaker
endpoint), the LLM explainers (template, OpenAI, Anthropic or a Lambda function), the AWS clients of a
SageMaker deployment and of S3 backups. The adapters themselves live beside their port (platform) or
their feature (``<feature>/adapters``); SDKs are imported only there, and only when first used.

``None``, ``""`` or ``memory://`` give the in-process :class:`MemoryCache`; ``redis://``, ``rediss://`` and
``unix://`` give :class:`RedisCache`. Options that only one backend uses (``max_entries`` for memory,
``namespace`` and timeouts for Redis) are ignored by the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypedDict, Unpack, cast
from urllib.parse import urlsplit

import httpx

from backend.explanations import (
    UNKNOWN_PROVIDER,
    AnthropicExplainer,
    ExplanationEngine,
    LambdaExplainer,
    LLMExplainer,
    LLMProviderSettings,
    LLMSettings,
    OpenAIExplainer,
    ProviderGuard,
    TemplateExplainer,
)
from backend.models import (
    ModelKeys,
    ModelSettings,
    SageMakerModelServer,
    open_mlflow_registry,
    sagemaker_control_clients,
)
from backend.monitoring import MonitoringSettings
from backend.operations import OpsSettings, S3ClientFactory, s3_client_factory
from backend.platform.adapters.cache_memory import MemoryCache
from backend.platform.adapters.cache_sealed import SealedCache, cache_mac_key, sealed_cache
from backend.platform.adapters.metrics_cache import MeteredCache, metered_cache
from backend.platform.adapters.notify_log import LogNotifier
from backend.platform.adapters.notify_webhook import WebhookNotifier
from backend.platform.adapters.ratelimit_memory import MemoryLimiter
from backend.platform.metrics_config import MetricsSettings
from backend.platform.ports import Cache, Clock, Metrics, Notifier, RateLimiter

__all__ = ["ERR_BAD_CACHE_URL", "MSG_NO_WEBHOOK_URL", "MeteredCache", "SealedCache", "build_cache", "cache_mac_key",
           "sealed_cache", "build_engine", "build_explainer", "build_limiter",
           "build_metrics", "build_model_server", "build_notifier", "cache_scheme", "metered_cache",
           "s3_client_factory", "sagemaker_control_clients"]


# -- cache ---------------------------------------------------------------------------------------------
MEMORY_SCHEMES = frozenset({"memory"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
ERR_BAD_CACHE_URL = (
    "Unsupported cache URL scheme {scheme!r} in setting CREDITRISK_CACHE__URL; accepted: "
    "empty or memory:// (in-process cache), redis://, rediss://, unix:// (Redis)."
)

_MEMORY_OPTS = frozenset({"max_entries", "default_ttl", "clock"})
_REDIS_OPTS = frozenset(
    {"namespace", "default_ttl", "socket_timeout", "connect_timeout", "failure_cooldown", "client", "clock"}
)


class CacheOptions(TypedDict, total=False):
    """Keyword options of :func:`build_cache`; each goes to the backend that uses it."""

    default_ttl: float | None
    clock: Callable[[], float]
    max_entries: int
    namespace: str
    socket_timeout: float
    connect_timeout: float
    failure_cooldown: float
    client: Any


def cache_scheme(url: str | None) -> str:
    """Return the lower-case scheme of a cache URL (``"memory"`` for ``None``/empty)."""
    text = (url or "").strip()
    if not text:
        return "memory"
    return urlsplit(text).scheme.lower()


def build_cache(url: str | None, **opts: Unpack[CacheOptions]) -> Cache:
    """Build the cache adapter for ``url``.

    Raises
    ------
    ValueError
        If the URL scheme is not one of the accepted ones (the message names the setting; the
        URL itself is left out because it may carry a password).
    TypeError
        If an option is unknown to every backend.
    """
    unknown = set(opts) - _MEMORY_OPTS - _REDIS_OPTS
    if unknown:
        raise TypeError(f"build_cache() got unknown options: {', '.join(sorted(unknown))}")
    scheme = cache_scheme(url)
    if scheme in MEMORY_SCHEMES:
        mem_opts = {k: v for k, v in opts.items() if k in _MEMORY_OPTS}
        return MemoryCache(**cast(Any, mem_opts))
    if scheme in REDIS_SCHEMES:
        from backend.platform.adapters.cache_redis import RedisCache

        redis_opts = {k: v for k, v in opts.items() if k in _REDIS_OPTS}
        return RedisCache(cast(str, url).strip(), **cast(Any, redis_opts))
    raise ValueError(ERR_BAD_CACHE_URL.format(scheme=scheme))


# -- metrics -------------------------------------------------------------------------------------------
def build_metrics(settings: MetricsSettings) -> Metrics:
    if settings.backend == "prometheus":
        from backend.platform.adapters.metrics_prometheus import PrometheusMetrics

        return PrometheusMetrics(settings.namespace)
    if settings.backend == "emf":
        from backend.platform.adapters.metrics_emf import EmfMetrics

        return EmfMetrics(settings.namespace, stream=settings.emf_stream, flush_seconds=settings.emf_flush_seconds,
                          max_groups=settings.emf_max_groups)
    from backend.platform.adapters.metrics_noop import NoopMetrics

    return NoopMetrics()


# -- alert notifications -------------------------------------------------------------------------------
MSG_NO_WEBHOOK_URL = ("CREDITRISK_MONITORING__NOTIFIER=webhook needs CREDITRISK_MONITORING__WEBHOOK_URL "
                      "(an http:// or https:// URL of the chat or paging tool's incoming webhook).")


def build_notifier(settings: MonitoringSettings, *, transport: httpx.BaseTransport | None = None) -> Notifier:
    """The configured notifier; ``transport`` is for tests (an httpx transport for the webhook).

    A notifier has one method, ``send(event: dict) -> dict``: it delivers one alert event and returns a
    delivery record (``channel``, ``ok``, ``attempts``, ``at``, and ``status_code``/``error`` for the
    webhook), never raising. The alert service appends the record to the alert's ``notifications``."""
    if settings.notifier == "webhook":
        if not settings.webhook_url:
            raise ValueError(MSG_NO_WEBHOOK_URL)
        return WebhookNotifier(settings.webhook_url, timeout=settings.webhook_timeout, transport=transport)
    return LogNotifier()


# -- the API's rate limiter ----------------------------------------------------------------------------
def build_limiter(url: str, *, socket_timeout: float, failure_cooldown: float,
                  clock: Callable[[], float] = time.time) -> RateLimiter:
    """In-process counting when ``url`` is empty, else counters shared through Redis."""
    if not url:
        return MemoryLimiter(clock=clock)
    from backend.platform.adapters.ratelimit_redis import RedisLimiter

    return RedisLimiter(url, clock=clock, socket_timeout=socket_timeout, failure_cooldown=failure_cooldown)


# -- model server --------------------------------------------------------------------------------------
def build_model_server(settings: ModelSettings) -> SageMakerModelServer | None:
    """The SageMaker endpoint serving the primary model (``CREDITRISK_MODEL__SERVER=sagemaker``), else None: the
    local registry serves."""
    return SageMakerModelServer.from_settings(settings) if settings.server == "sagemaker" else None


# -- model registry ------------------------------------------------------------------------------------
def build_registry_factory(settings: ModelSettings) -> Callable[[ModelKeys], Any] | None:
    """The registry the services use: None (the folder ``registry_dir``, the embedded default) unless
    ``registry_url`` names an MLflow tracking server (``mlflow+http://host:port``)."""
    if not settings.registry_url:
        return None
    def factory(keys: ModelKeys) -> Any:
        return open_mlflow_registry(settings.registry_url, settings.registry_dir, settings.name, keys=keys,
                                    timeout=settings.registry_timeout_seconds)

    return factory


# -- explanations ----------------------------------------------------------------------------------------
def build_explainer(s: LLMProviderSettings, settings: LLMSettings) -> LLMExplainer | None:
    """One provider's explainer (``template`` means no LLM: the template explains)."""
    if s.provider == "template":
        return None
    if s.provider == "openai":
        return OpenAIExplainer(s, prices=settings.prices)
    if s.provider == "anthropic":
        return AnthropicExplainer(s, prices=settings.prices)
    if s.provider == "lambda":
        return LambdaExplainer(s)
    raise ValueError(UNKNOWN_PROVIDER.format(provider=s.provider))


def build_engine(settings: LLMSettings, *, clock: Clock | None = None, metrics: Metrics | None = None
                 ) -> ExplanationEngine:
    """Primary LLM -> fallback LLM -> template, each answer fact-checked (see :mod:`backend.explanations`)."""
    guard = ProviderGuard(deadline=settings.deadline, max_chars=settings.max_answer_chars, workers=settings.workers,
                          cooldown=settings.breaker_cooldown)
    return ExplanationEngine(build_explainer(settings, settings), build_explainer(settings.fallback, settings),
                             TemplateExplainer(), clock, metrics=metrics, guard=guard)


# -- AWS clients ---------------------------------------------------------------------------------------
def object_store(ops: OpsSettings) -> S3ClientFactory:
    """S3 clients for ``s3://`` backup locations (boto3 imported when the first one is made)."""
    return s3_client_factory(ops)


def deployment_clients() -> Callable[[str], Any]:
    """The AWS control-plane clients of a SageMaker deployment, per region."""
    return sagemaker_control_clients
