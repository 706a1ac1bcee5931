"""The composition root: every service and every adapter is built here, from settings alone.

``build_services(settings, **overrides)`` returns the :class:`Services` bundle that the console, the API,
the CLI, the serving container and the simulator use. Adapters are chosen in :mod:`.adapters`; the root
settings live in :mod:`.settings`. Features never import this package: each service receives what it needs
in its constructor.

Tests pass overrides instead of patching: ``build_services(settings, clock=FixedClock(...), db=db,
fairness=FakeReader(0.7))`` replaces that one service (or adapter) everywhere it is used, including inside
the services built from it (the alert rules read the overridden fairness service).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from backend.alerts import AlertService, AlertSources
from backend.analytics import CostService, ExperimentService, LatencyService
from backend.compliance import AuditService, PiiKeyRing, PiiService, load_pii_keyring
from backend.container.adapters import (
    MeteredCache,
    build_cache,
    build_engine,
    build_limiter,
    build_metrics,
    build_model_server,
    build_notifier,
    build_registry_factory,
    cache_mac_key,
    deployment_clients,
    metered_cache,
    object_store,
    sealed_cache,
)
from backend.container.settings import Settings, SettingsError, load_settings
from backend.decisioning import (
    BookService,
    DecisionService,
    FeedbackService,
    OutcomeService,
    WorkspaceService,
)
from backend.explanations import LLMQA, DecisionQA, ExplanationEngine
from backend.identity import (
    ApiClientService,
    AuthService,
    SsoService,
    TokenService,
    UserService,
    load_key_ring,
)
from backend.models import (
    CanaryRouter,
    ModelAdmin,
    ModelProvider,
    SageMakerDeployer,
    model_health,
    model_keys,
)
from backend.monitoring import DriftService, FairnessService, PerformanceService
from backend.operations import (
    BackupService,
    DrillService,
    IncidentService,
    ReadinessService,
    RestoreService,
    SignOffService,
)
from backend.platform.clock import SystemClock
from backend.platform.db.engine import Database, make_engine
from backend.platform.health import HealthService
from backend.platform.ports import Cache, Clock, Metrics, Notifier, RateLimiter
from backend.rollout import AcceptanceService, RolloutService
from backend.scoring import ScoringService
from backend.training import Retrainer

__all__ = ["Services", "Settings", "SettingsError", "build_services", "load_settings"]


@dataclass(eq=False)
class Services:
    """Every service the entry points use. The core ones are built at once; the rest on first use (a page
    or command that never needs them never pays for them). ``overrides`` (from :func:`build_services`) win."""

    settings: Settings
    db: Database
    cache: Cache
    clock: Clock
    metrics: Metrics  # counters/histograms (GET /metrics, CloudWatch EMF): backend/platform/adapters/metrics_*.py
    models: ModelProvider
    audit: AuditService
    auth: AuthService
    users: UserService
    rollout: RolloutService
    scoring: ScoringService
    decisions: DecisionService
    workspace: WorkspaceService
    book: BookService
    outcomes: OutcomeService
    feedback: FeedbackService
    health: HealthService
    overrides: dict[str, Any] = field(default_factory=dict, repr=False)

    def _built(self, name: str, make: Callable[[], Any]) -> Any:
        return self.overrides[name] if name in self.overrides else make()

    def _checked(self, service: Any, *methods: str) -> Any:
        """``service`` whose summary-refreshing ``methods`` judge the alert rules once they are done (a
        recompute from a page, the CLI or the phase verdict changes what the rules read, so the rules'
        state and the open alerts are the same fact right after it; see
        :meth:`AlertService.after_recompute`)."""
        for name in methods:
            fn = getattr(service, name)

            def wrapped(*a: Any, _fn: Callable[..., Any] = fn, **kw: Any) -> Any:
                out = _fn(*a, **kw)
                if kw.get("until") is None:  # an as-of (historical) refresh judges nothing now
                    self.alerts.after_recompute()
                return out
            setattr(service, name, wrapped)
        return service

    def close(self) -> None:
        self.metrics.flush()
        if "rate_limiter" in self.__dict__:
            self.rate_limiter.close()
        self.db.dispose()

    # -- identity and compliance ------------------------------------------------------------------------
    @cached_property
    def sso(self) -> SsoService:
        return self._built("sso", lambda: SsoService(self.db, self.settings.sso, self.clock))

    @cached_property
    def tokens(self) -> TokenService:
        return self._built("tokens", lambda: TokenService(load_key_ring(self.settings), self.settings.api,
                                                          self.clock.now))

    @cached_property
    def api_clients(self) -> ApiClientService:
        return self._built("api_clients", lambda: ApiClientService(self.db, self.clock,
                                                                   rounds=self.settings.auth.bcrypt_rounds))

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        api = self.settings.api
        return self._built("rate_limiter", lambda: build_limiter(
            api.rate_limit_url, socket_timeout=api.rate_limit_socket_timeout,
            failure_cooldown=api.rate_limit_failure_cooldown))

    @cached_property
    def pii(self) -> PiiService:
        ring = self.scoring.pii
        assert ring is not None  # build_services always gives scoring the key ring
        return self._built("pii", lambda: PiiService(self.db, self.clock, ring))

    # -- models ---------------------------------------------------------------------------------------
    @cached_property
    def model_admin(self) -> ModelAdmin:
        return self._built("model_admin", lambda: ModelAdmin(
            self.db, self.models, self.cache, self.audit, model_name=self.settings.model.name,
            canary_steps=self.settings.monitoring.canary_steps, router=self.scoring.canary, clock=self.clock,
            on_rollback=lambda: self.incidents.open_from_registry()))

    @cached_property
    def retrainer(self) -> Retrainer:
        m = self.settings.monitoring
        return self._built("retrainer", lambda: Retrainer(self.db, self.clock, self.models, self.model_admin,
                                                          window_months=m.retrain_window_months,
                                                          every_days=m.retrain_every_days))

    def deployer(self, settings: Any = None) -> SageMakerDeployer:
        """A SageMaker deployment of the registry's model (``settings``: these settings with the command line's
        options laid over ``deploy``)."""
        return SageMakerDeployer(self.db, self.clock, settings or self.settings, self.models.registry(),
                                 clients_factory=self.overrides.get("deployment_clients") or deployment_clients())

    # -- monitoring and analytics -----------------------------------------------------------------------
    @cached_property
    def drift(self) -> DriftService:
        return self._built("drift", lambda: self._checked(
            DriftService(self.db, self.models, self.clock, self.settings.monitoring), "refresh", "refresh_all"))

    @cached_property
    def performance(self) -> PerformanceService:
        return self._built("performance", lambda: self._checked(
            PerformanceService(self.db, self.clock, self.settings.monitoring), "refresh"))

    @cached_property
    def fairness(self) -> FairnessService:
        return self._built("fairness", lambda: self._checked(
            FairnessService(self.db, self.clock, self.settings.monitoring), "refresh"))

    @cached_property
    def latency(self) -> LatencyService:
        return self._built("latency", lambda: LatencyService(self.db, self.clock))

    @cached_property
    def costs(self) -> CostService:
        return self._built("costs", lambda: CostService(
            self.db, self.clock, self.settings.costs, self.settings.llm.prices, cache_url=self.settings.cache.url,
            registry_dir=self.settings.model.registry_dir))

    @cached_property
    def experiments(self) -> ExperimentService:
        return self._built("experiments", lambda: self._checked(ExperimentService(
            self.db, self.clock, self.settings.analytics, self.settings.monitoring,
            acceptances=self.acceptances, fairness=lambda: self.fairness), "refresh"))

    @cached_property
    def acceptances(self) -> AcceptanceService:
        return self._built("acceptances", lambda: AcceptanceService(self.db, self.clock))

    @cached_property
    def notifier(self) -> Notifier:
        return self._built("notifier", lambda: build_notifier(self.settings.monitoring))

    @cached_property
    def alerts(self) -> AlertService:
        sources = AlertSources(lambda: self.drift, lambda: self.performance, lambda: self.fairness,
                               lambda: self.experiments, lambda: self.costs, lambda: self.latency)
        return self._built("alerts", lambda: AlertService(self.db, self.clock, self.settings.monitoring,
                                                          self.notifier, sources=sources))

    # -- operations -----------------------------------------------------------------------------------
    @cached_property
    def readiness(self) -> ReadinessService:
        return self._built("readiness", lambda: ReadinessService(
            self.db, self.clock, self.settings.readiness, fairness_threshold=self.settings.monitoring.fairness_threshold,
            registry=self.models.registry, fairness=lambda: self.fairness.latest_min_di(), ops=self.settings.ops))

    @cached_property
    def incidents(self) -> IncidentService:
        return self._built("incidents", lambda: IncidentService(self.db, self.clock, self.models.registry,
                                                                lambda: self.latency))

    @cached_property
    def signoffs(self) -> SignOffService:
        return self._built("signoffs", lambda: SignOffService(
            self.db, self.clock, lambda: self.models.registry().aliases().get("champion")))

    def backups(self, *, echo: Any = None) -> BackupService:
        return BackupService(self.db, self.settings, self.clock, s3=self._s3(), echo=echo)

    def drills(self, *, echo: Any = None) -> DrillService:
        return DrillService(self.db, self.settings, self.clock, s3=self._s3(), echo=echo)

    def restores(self, *, echo: Any = None) -> RestoreService:
        return restore_service(self.settings, echo=echo, s3=self._s3())

    def _s3(self) -> Any:
        return self.overrides.get("s3") or object_store(self.settings.ops)


def restore_service(settings: Settings, *, echo: Any = None, s3: Any = None) -> RestoreService:
    """A restore needs no database of its own (it writes into the one named), so the CLI builds it alone."""
    return RestoreService(s3=s3 or object_store(settings.ops), echo=echo, chunk=settings.ops.backup_chunk_rows)


def open_database(settings: Settings) -> Database:
    """The configured database (nothing else built: backup and drill commands use it alone)."""
    return Database(make_engine(settings.database_url, echo=settings.database.echo,
                                pool_size=settings.database.pool_size,
                                connect_timeout=settings.database.connect_timeout))


def _engine(settings: Settings, clock: Clock, metrics: Metrics, overrides: dict[str, Any]) -> ExplanationEngine:
    engine = overrides.get("explanation_engine")
    return engine if engine is not None else build_engine(settings.llm, clock=clock, metrics=metrics)


def _qa_llm(scoring: Any, engine: ExplanationEngine, overrides: dict[str, Any]) -> LLMQA | None:
    """The decision conversation through the configured LLM's tool calling (OpenAI, Anthropic, or a Lambda
    function that asks its own OpenAI or Anthropic: unstreamed, the tools run here); None for the template."""
    if "qa_chat" in overrides:
        chat = overrides["qa_chat"]
    else:
        chat = engine.primary if engine.primary is not None and hasattr(engine.primary, "chat_tools") else None
    return LLMQA(DecisionQA(scoring), chat) if chat is not None else None


def build_services(settings: Settings | None = None, *, db: Database | None = None, cache: Cache | None = None,
                   clock: Clock | None = None, migrate: bool = False, **overrides: Any) -> Services:
    """Build every service from ``settings`` (default: the environment).

    ``db``, ``cache`` and ``clock`` replace those adapters; ``migrate`` brings the schema to its newest
    revision first. Any other keyword replaces the service or adapter of that name (``fairness=...``,
    ``notifier=...``, ``model_server=...``, ``pii_ring=...``, ``explanation_engine=...``, ``s3=...``,
    ``deployment_clients=...``, ``model_keys=...``): tests use these, never assignments into the bundle.
    """
    settings = settings or load_settings()
    clock = clock or SystemClock()
    if db is None:
        db = open_database(settings)
    if migrate:
        db.migrate()
    if cache is None:
        cache = build_cache(settings.cache.url, default_ttl=settings.cache.default_ttl,
                            socket_timeout=settings.cache.socket_timeout, connect_timeout=settings.cache.socket_timeout,
                            max_entries=settings.cache.max_entries)
    metrics = overrides.get("metrics") or build_metrics(settings.metrics)
    mac_key = cache_mac_key(settings.cache.mac_key.get_secret_value(), data_dir=settings.data_dir, env=settings.env,
                            shared=cache.backend != "memory")
    # entries carry a MAC (a forged one reads as a miss), then every read is counted as a hit or a miss
    cache = metered_cache(sealed_cache(cache.inner if isinstance(cache, MeteredCache) else cache, mac_key, metrics),
                          metrics)
    server = overrides["model_server"] if "model_server" in overrides else build_model_server(settings.model)
    keys = overrides.get("model_keys") or model_keys(settings.model, data_dir=settings.data_dir, env=settings.env)
    registry_factory = overrides["registry_factory"] if "registry_factory" in overrides else build_registry_factory(
        settings.model)
    models = ModelProvider(settings.model, settings.policy, server=server, keys=keys, registry_factory=registry_factory)
    rollout = RolloutService(db, clock, settings.policy)
    ring: PiiKeyRing = overrides.get("pii_ring") or load_pii_keyring(settings)
    scoring = ScoringService(db, cache, models, clock, rollout, pii=ring, canary=CanaryRouter(models))
    engine = _engine(settings, clock, metrics, overrides)
    health = HealthService({
        "database": db.ping,
        "cache": cache.health,
        "model": lambda: model_health(models),
        "explainer": lambda: {"ok": True, "backend": settings.llm.provider,
                              "detail": "offline template explainer" if settings.llm.provider == "template"
                              else f"{settings.llm.provider} {settings.llm.model or '(default model)'}"},
    })
    return Services(
        settings=settings, db=db, cache=cache, clock=clock, metrics=metrics, models=models,
        audit=AuditService(db, settings), auth=AuthService(db, settings.auth, clock, ring=ring), users=UserService(db, settings.auth, clock),
        rollout=rollout, scoring=scoring, decisions=DecisionService(db, clock, settings.policy),
        workspace=WorkspaceService(db, scoring, engine, clock, qa=DecisionQA(scoring),
                                   qa_llm=_qa_llm(scoring, engine, overrides)),
        book=BookService(db, settings.data_dir), outcomes=OutcomeService(db, clock), feedback=FeedbackService(db, clock),
        health=health, overrides=dict(overrides),
    )
