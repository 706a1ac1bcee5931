"""Settings: one pydantic-settings model, nested per backend.

Environment variables use the prefix ``CREDITRISK_`` and ``__`` between levels, e.g.
``CREDITRISK_DATABASE__URL=postgresql://postgres@127.0.0.1:5432/creditrisk`` or
``CREDITRISK_CACHE__URL=redis://127.0.0.1:6379/0``. A ``.env`` file in the working directory is
read too. Defaults are the embedded ones: SQLite under ``var/``, in-process cache, local model,
template explainer.

Nothing here is built at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.config_analytics import AnalyticsSettings, CostSettings
from backend.config_api import ApiSettings
from backend.config_deploy import DeploySettings
from backend.config_metrics import MetricsSettings
from backend.config_monitoring import MonitoringSettings
from backend.config_ops import OpsSettings
from backend.config_pii import PiiSettings
from backend.config_readiness import ReadinessSettings
from backend.config_sso import SsoSettings

ENV_PREFIX = "CREDITRISK_"
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "some_key", "dev", "test", "password"})
MIN_SECRET_LENGTH = 32

SETTINGS_ERROR = "Invalid setting {env}: {msg}"
COOKIE_KEY_REQUIRED = "must be set to a random value of at least 32 characters outside dev (got a missing or placeholder value)"


class SettingsError(ValueError):
    """A setting is malformed; the message names the environment variable."""


class DatabaseSettings(BaseModel):
    url: str = ""  # empty: sqlite file under data_dir
    echo: bool = False
    pool_size: int = Field(5, ge=1, le=100)
    connect_timeout: float = Field(5.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v


class CacheSettings(BaseModel):
    url: str = "memory://"
    default_ttl: float = Field(300.0, gt=0)
    socket_timeout: float = Field(0.05, gt=0, le=10)
    max_entries: int = Field(10_000, ge=10)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("must be memory://, redis://, rediss:// or unix://")
        return v


class ModelSettings(BaseModel):
    registry_dir: Path = Path("models")
    name: str = "creditrisk"
    engine: Literal["compiled", "reference", "sagemaker"] = "compiled"  # sagemaker: set by server=sagemaker
    server: Literal["local", "sagemaker"] = "local"
    sagemaker_endpoint: str = ""
    aws_region: str = "us-east-1"
    # the SageMaker runtime client (backend/adapters/model_sagemaker.py); endpoint_url: a VPC or loopback endpoint
    sagemaker_endpoint_url: str = ""
    sagemaker_connect_timeout: float = Field(1.0, gt=0, le=60)
    sagemaker_read_timeout: float = Field(2.0, gt=0, le=60)
    sagemaker_max_attempts: int = Field(2, ge=1, le=5)  # the first call included
    sagemaker_max_batch: int = Field(100, ge=1, le=1000)  # applications per invocation

    @model_validator(mode="after")
    def _sagemaker(self) -> ModelSettings:
        if self.server == "sagemaker":
            if not self.sagemaker_endpoint.strip():
                raise ValueError("server sagemaker needs CREDITRISK_MODEL__SAGEMAKER_ENDPOINT (the endpoint name)")
            self.engine = "sagemaker"  # what predictions record
        elif self.engine == "sagemaker":
            raise ValueError("engine sagemaker is set by CREDITRISK_MODEL__SERVER=sagemaker")
        return self


class LLMProviderSettings(BaseModel):
    provider: Literal["template", "openai", "anthropic", "lambda"] = "template"
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    model: str = ""
    timeout: float = Field(10.0, gt=0, le=120)
    max_retries: int = Field(1, ge=0, le=5)
    temperature: float = Field(0.3, ge=0, le=2)
    max_tokens: int = Field(200, ge=16, le=4000)
    region: str = ""  # provider lambda: AWS region (empty: AWS_DEFAULT_REGION, else us-east-1)


class ModelPrice(BaseModel):
    """USD per million tokens."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)


#: Example list prices (USD per 1M tokens) for cost accounting; configurable through
#: ``CREDITRISK_LLM__PRICES`` (JSON). A model missing from the table is accounted with no cost.
DEFAULT_LLM_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00),
    "gpt-4.1": ModelPrice(input_per_mtok=2.00, output_per_mtok=8.00),
    "claude-sonnet-4-5": ModelPrice(input_per_mtok=3.00, output_per_mtok=15.00),
    "claude-3-5-haiku-latest": ModelPrice(input_per_mtok=0.80, output_per_mtok=4.00),
}


class LLMSettings(LLMProviderSettings):
    fallback: LLMProviderSettings = LLMProviderSettings()
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_LLM_PRICES))


class AuthSettings(BaseModel):
    cookie_name: str = "creditrisk_auth"
    cookie_key: SecretStr = SecretStr("")
    cookie_expiry_days: float = Field(0.5, gt=0, le=30)
    session_ttl_hours: float = Field(12.0, gt=0, le=24 * 30)
    lockout_threshold: float = Field(5.0, ge=1)
    lockout_base_seconds: float = Field(30.0, gt=0)
    lockout_max_seconds: float = Field(900.0, gt=0, le=86_400)
    failure_half_life_seconds: float = Field(900.0, gt=0)
    bcrypt_rounds: int = Field(12, ge=4, le=16)


class PolicySettings(BaseModel):
    """Decision policy (see backend/model/policy.py). Versioned with each model's manifest."""

    score_cutoff: float = Field(0.50, gt=0, lt=1)
    confidence_threshold: float = Field(0.70, ge=0.5, le=1)
    loan_amount_cap: float = Field(25_000.0, gt=0)
    disagreement_threshold: float = Field(0.10, gt=0, le=1)


#: Example values for adverse action notices. They are placeholders: ``LetterSettings.example_fields``
#: reports which are still in use, and notices built with any of them are marked SPECIMEN.
EXAMPLE_AGENCY_NAME = "Consumer Financial Protection Bureau"
EXAMPLE_AGENCY_ADDRESS = "1700 G Street NW, Washington, DC 20552"
EXAMPLE_BUREAU_NAME = "Example Credit Bureau, Inc."
EXAMPLE_BUREAU_ADDRESS = "P.O. Box 0000, Springfield, ST 00000"
EXAMPLE_BUREAU_PHONE = "1-800-555-0100"


class LetterSettings(BaseModel):
    """Adverse action notices (backend/services/letters.py).

    ``agency_*``: the federal agency that administers ECOA compliance for *this* creditor, as listed
    in Regulation B, Appendix A (the CFPB default is only an example: it is right for banks over
    $10 billion in assets and many non-banks; community banks usually name the FDIC, OCC or Federal
    Reserve office). ``bureau_*``: the consumer reporting agency whose score the model uses (FCRA
    section 615(a)); the defaults are fictitious examples. ``score_low``/``score_high``: the range of
    that score.
    """

    agency_name: str = EXAMPLE_AGENCY_NAME
    agency_address: str = EXAMPLE_AGENCY_ADDRESS
    bureau_name: str = EXAMPLE_BUREAU_NAME
    bureau_address: str = EXAMPLE_BUREAU_ADDRESS
    bureau_phone: str = EXAMPLE_BUREAU_PHONE
    score_low: int = Field(300, ge=0)
    score_high: int = Field(850, gt=0)

    def example_fields(self) -> tuple[str, ...]:
        """Names of the fields that still hold the example defaults."""
        defaults = {"agency_name": EXAMPLE_AGENCY_NAME, "agency_address": EXAMPLE_AGENCY_ADDRESS,
                    "bureau_name": EXAMPLE_BUREAU_NAME, "bureau_address": EXAMPLE_BUREAU_ADDRESS,
                    "bureau_phone": EXAMPLE_BUREAU_PHONE}
        return tuple(k for k, v in defaults.items() if getattr(self, k) == v)


#: Regulation B (12 CFR 1002.12(b)) keeps application records for 25 months after notice of action.
AUDIT_MIN_RETENTION_DAYS = 761
AUDIT_DEFAULT_RETENTION_DAYS = 2557  # 7 years
AUDIT_RETENTION_TOO_SHORT = ("must be at least {min} days: Regulation B (12 CFR 1002.12(b)) requires keeping "
                             "records for 25 months (got {got})")


class AuditSettings(BaseModel):
    """The audit trail. ``retention_days``: how long rows stay in the table before
    ``creditrisk audit archive`` takes them (default 7 years; never below Regulation B's 25 months)."""

    retention_days: int = Field(AUDIT_DEFAULT_RETENTION_DAYS, le=36_500)

    @field_validator("retention_days")
    @classmethod
    def _regulation_b(cls, v: int) -> int:
        if v < AUDIT_MIN_RETENTION_DAYS:
            raise ValueError(AUDIT_RETENTION_TOO_SHORT.format(min=AUDIT_MIN_RETENTION_DAYS, got=v))
        return v


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
    organization_name: str = "Example Community Bank"
    organization_address: str = "100 Main Street, Springfield, ST 00000"
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
            "database": _redact_url(self.database_url),
            "cache": _redact_url(self.cache.url),
            "model": f"{self.model.server} ({self.model.engine} engine, registry {self.model.registry_dir})",
            "explainer": self.llm.provider
            + (f" → fallback {self.llm.fallback.provider}" if self.llm.provider != "template" else ""),
        }


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url


def _env_name(loc: tuple[object, ...]) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc)


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
        raise SettingsError(SETTINGS_ERROR.format(env=_env_name(loc), msg=msg)) from None
