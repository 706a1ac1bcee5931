"""The root settings: one pydantic-settings model nesting every feature's section.

Environment variables use the prefix ``CREDITRISK_`` and ``__`` between levels, e.g.
``CREDITRISK_DATABASE__URL=postgresql://postgres@127.0.0.1:5432/creditrisk`` or
``CREDITRISK_CACHE__URL=redis://127.0.0.1:6379/0``. A ``.env`` file in the working directory is
read too. Defaults are the embedded ones: SQLite under ``var/``, in-process cache, local model,
template explainer.

The root lives in the composition root, not in ``platform``: it names every feature's section, so
it sits above the features, and features receive only their own section (or, where they need the
deployment's ``env``/``data_dir`` too, a small Protocol of what they read). Nothing here is built at
import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.analytics import AnalyticsSettings, CostSettings
from backend.compliance import AuditSettings, PiiSettings
from backend.decisioning import EXAMPLE_ORGANIZATION_ADDRESS, EXAMPLE_ORGANIZATION_NAME, LetterSettings
from backend.domain import PolicySettings
from backend.explanations import LLMSettings
from backend.identity import ApiSettings, AuthSettings, SsoSettings
from backend.models import DeploySettings, ModelSettings
from backend.monitoring import MonitoringSettings
from backend.operations import OpsSettings, ReadinessSettings
from backend.platform.config import (
    COOKIE_KEY_REQUIRED,
    ENV_PREFIX,
    MIN_SECRET_LENGTH,
    PLACEHOLDER_SECRETS,
    SETTINGS_ERROR,
    CacheSettings,
    DatabaseSettings,
    SettingsError,
    env_name,
    redact_url,
)
from backend.platform.metrics_config import MetricsSettings

__all__ = ["Settings", "SettingsError", "load_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    env: Literal["dev", "test", "production"] = "dev"
    data_dir: Path = Path("var")
    organization_name: str = EXAMPLE_ORGANIZATION_NAME
    organization_address: str = EXAMPLE_ORGANIZATION_ADDRESS
    database: DatabaseSettings = DatabaseSettings()
    cache: CacheSettings = CacheSettings()
    model: ModelSettings = ModelSettings()
    llm: LLMSettings = LLMSettings()
    auth: AuthSettings = AuthSettings()
    policy: PolicySettings = PolicySettings()
    letters: LetterSettings = LetterSettings()
    audit: AuditSettings = AuditSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    costs: CostSettings = CostSettings()
    api: ApiSettings = ApiSettings()
    deploy: DeploySettings = DeploySettings()  # creditrisk deploy sagemaker
    metrics: MetricsSettings = MetricsSettings()  # GET /metrics (Prometheus) or CloudWatch EMF lines
    pii: PiiSettings = PiiSettings()
    ops: OpsSettings = OpsSettings()  # backups, restore drills, RTO/RPO targets
    readiness: ReadinessSettings = ReadinessSettings()
    sso: SsoSettings = SsoSettings()  # console single sign-on (OpenID Connect), off by default

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        key = self.auth.cookie_key.get_secret_value()
        if self.env == "production" and (key.lower() in PLACEHOLDER_SECRETS or len(key) < MIN_SECRET_LENGTH):
            raise ValueError(f"auth.cookie_key {COOKIE_KEY_REQUIRED}")
        if self.env == "production" and not self.auth.mfa_required:
            # honoured in development and tests only: production always requires the second factor of the roles
            # that approve, override, promote or administer
            self.auth = self.auth.model_copy(update={"mfa_required": True})
        return self

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL with the psycopg 3 driver for PostgreSQL."""
        url = self.database.url or f"sqlite:///{(self.data_dir / 'creditrisk.db').as_posix()}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url

    def cookie_secret(self) -> str:
        """The cookie signing key; in dev/test a random one is created once under data_dir."""
        key = self.auth.cookie_key.get_secret_value()
        if key and key.lower() not in PLACEHOLDER_SECRETS:
            return key
        path = self.data_dir / "cookie_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        new = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new)
        return new

    def describe(self) -> dict[str, str]:
        """What is configured, without secrets (for the home page and `creditrisk config`)."""
        return {
            "environment": self.env,
            "database": redact_url(self.database_url),
            "cache": redact_url(self.cache.url),
            "model": f"{self.model.server} ({self.model.engine} engine, registry {self.model.registry_dir})",
            "explainer": self.llm.provider
            + (f" → fallback {self.llm.fallback.provider}" if self.llm.provider != "template" else ""),
        }


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, ``.env`` and ``overrides``.

    Raises :class:`SettingsError` with a one-line message naming the offending variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err.get("loc", ()))
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if not loc and msg.startswith("auth.cookie_key"):
            loc, msg = ("auth", "cookie_key"), msg.removeprefix("auth.cookie_key ")
        raise SettingsError(SETTINGS_ERROR.format(env=env_name(loc), msg=msg)) from None
