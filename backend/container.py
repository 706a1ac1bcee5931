"""Composition root: every adapter is chosen here, from settings alone.

``build_services(settings)`` returns a :class:`Services` bundle used by the console, the API and
the CLI. Tests pass overrides (``clock=``, ``cache=``, ``db=``) instead of patching modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from backend.adapters.cache_factory import build_cache
from backend.adapters.metrics_factory import build_metrics, metered_cache
from backend.clock import SystemClock
from backend.config import Settings, load_settings
from backend.db.engine import Database, make_engine
from backend.ports import Cache, Clock, Metrics
from backend.security.pii import load_pii_keyring
from backend.services.audit import AuditService
from backend.services.auth import AuthService
from backend.services.book import BookService
from backend.services.explain.engine import build_engine
from backend.services.feedback import FeedbackService
from backend.services.health import HealthService
from backend.services.model_provider import ModelProvider
from backend.services.models import model_health
from backend.services.outcomes import OutcomeService
from backend.services.overrides import DecisionService
from backend.services.rollout import RolloutService
from backend.services.scoring import ScoringService
from backend.services.users import UserService
from backend.services.workspace import WorkspaceService

if TYPE_CHECKING:  # monitoring and analytics services are built on first use (pages that need them)
    from backend.services.alerts import AlertService
    from backend.services.costs import CostService
    from backend.services.drift import DriftService
    from backend.services.experiments import ExperimentService
    from backend.services.fairness import FairnessService
    from backend.services.latency import LatencyService
    from backend.services.performance import PerformanceService


@dataclass
class Services:
    settings: Settings
    db: Database
    cache: Cache
    clock: Clock
    auth: AuthService
    users: UserService
    audit: AuditService
    book: BookService
    health: HealthService
    models: ModelProvider
    scoring: ScoringService
    decisions: DecisionService
    workspace: WorkspaceService
    rollout: RolloutService
    outcomes: OutcomeService
    feedback: FeedbackService
    metrics: Metrics  # counters/histograms (GET /metrics, CloudWatch EMF): backend/adapters/metrics_*.py

    def close(self) -> None:
        self.metrics.flush()
        self.db.dispose()

    # ------------------------------------------------ monitoring and analytics (lazy)
    @cached_property
    def drift(self) -> DriftService:
        from backend.services.drift import DriftService

        return DriftService(self.db, self.models, self.clock, self.settings.monitoring)

    @cached_property
    def performance(self) -> PerformanceService:
        from backend.services.performance import PerformanceService

        return PerformanceService(self.db, self.clock, self.settings.monitoring)

    @cached_property
    def fairness(self) -> FairnessService:
        from backend.services.fairness import FairnessService

        return FairnessService(self.db, self.clock, self.settings.monitoring)

    @cached_property
    def latency(self) -> LatencyService:
        from backend.services.latency import LatencyService

        return LatencyService(self.db, self.clock)

    @cached_property
    def costs(self) -> CostService:
        from backend.services.costs import CostService

        return CostService(self.db, self.clock, self.settings.costs, self.settings.llm.prices,
                           cache_url=self.settings.cache.url, registry_dir=self.settings.model.registry_dir)

    @cached_property
    def experiments(self) -> ExperimentService:
        from backend.services.experiments import ExperimentService

        return ExperimentService(self.db, self.clock, self.settings.analytics, self.settings.monitoring)

    @cached_property
    def alerts(self) -> AlertService:
        from backend.adapters.notify_factory import build_notifier
        from backend.services.alerts import AlertService

        return AlertService(self.db, self.clock, self.settings.monitoring, build_notifier(self.settings.monitoring),
                            services=self)


def build_services(settings: Settings | None = None, *, db: Database | None = None, cache: Cache | None = None,
                   clock: Clock | None = None, migrate: bool = False) -> Services:
    settings = settings or load_settings()
    clock = clock or SystemClock()
    if db is None:
        db = Database(make_engine(settings.database_url, echo=settings.database.echo,
                                  pool_size=settings.database.pool_size,
                                  connect_timeout=settings.database.connect_timeout))
    if migrate:
        db.migrate()
    if cache is None:
        cache = build_cache(settings.cache.url, default_ttl=settings.cache.default_ttl,
                            socket_timeout=settings.cache.socket_timeout,
                            connect_timeout=settings.cache.socket_timeout,
                            max_entries=settings.cache.max_entries)
    metrics = build_metrics(settings.metrics)
    cache = metered_cache(cache, metrics)  # counts hits and misses
    models = ModelProvider(settings.model, settings.policy)
    rollout = RolloutService(db, clock, settings.policy)
    scoring = ScoringService(db, cache, models, clock, rollout, pii=load_pii_keyring(settings))
    health = HealthService({
        "database": db.ping,
        "cache": cache.health,
        "model": lambda: model_health(models),
        "explainer": lambda: {"ok": True, "backend": settings.llm.provider,
                              "detail": "offline template explainer" if settings.llm.provider == "template"
                              else f"{settings.llm.provider} {settings.llm.model or '(default model)'}"},
    })
    return Services(
        settings=settings, db=db, cache=cache, clock=clock,
        auth=AuthService(db, settings.auth, clock), users=UserService(db, settings.auth, clock),
        audit=AuditService(db), book=BookService(db), health=health, models=models,
        scoring=scoring,
        decisions=DecisionService(db, clock, settings.policy),
        workspace=WorkspaceService(db, scoring, build_engine(settings.llm, clock=clock, metrics=metrics), clock),
        rollout=rollout,
        outcomes=OutcomeService(db, clock),
        feedback=FeedbackService(db, clock),
        metrics=metrics,
    )
