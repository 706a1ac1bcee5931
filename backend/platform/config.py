"""Platform settings: the error type every section reports through, the secret rules, and the sections of
the platform's own backends (database, cache). Each feature keeps its section in its own ``config.py``;
the root :class:`~backend.container.settings.Settings` nests them all (it sits in the composition root
because it knows every feature). Nothing here is built at import time.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

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
    # HMAC key of cached decisions (backend/platform/adapters/cache_sealed.py); empty: <data_dir>/secrets/ (dev, test)
    mac_key: SecretStr = SecretStr("")

    @field_validator("mac_key")
    @classmethod
    def _mac_key(cls, v: SecretStr) -> SecretStr:
        if v.get_secret_value().strip() and len(v.get_secret_value().strip()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must hold at least {MIN_SECRET_LENGTH} characters")
        return v

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("must be memory://, redis://, rediss:// or unix://")
        return v



def redact_url(url: str) -> str:
    """``scheme://user:***@host``: a URL fit to show (the password never is)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url


def env_name(loc: tuple[object, ...]) -> str:
    """The environment variable of a settings location, e.g. ``("cache", "url")`` -> ``CREDITRISK_CACHE__URL``."""
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc)
