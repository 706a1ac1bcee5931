"""Scoring API settings (``CREDITRISK_API__...``): tokens, limits. Nested into Settings.

``signing_keys`` is a JSON key ring (see :mod:`backend.services.tokens`)::

    {"active": "k2", "keys": [{"kid": "k2", "alg": "ES256", "private_key": "-----BEGIN PRIVATE KEY-----..."},
                              {"kid": "k1", "alg": "ES256", "public_key": "-----BEGIN PUBLIC KEY-----..."}]}

The active key signs; every key in the ring verifies (a retired key may keep only its public half).
Empty in dev/test: a ring is created once under ``data_dir`` (file mode 0600). In production an
empty ring is refused at start-up.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator


class ApiSettings(BaseModel):
    issuer: str = "creditrisk"
    audience: str = "creditrisk-api"
    token_ttl_seconds: int = Field(900, ge=60, le=86_400)
    signing_keys: SecretStr = SecretStr("")  # empty in dev: a key ring is created under data_dir
    clock_leeway_seconds: int = Field(5, ge=0, le=120)  # tolerated clock skew for exp / nbf / iat
    max_batch: int = Field(100, ge=1, le=10_000)
    max_body_bytes: int = Field(1_000_000, ge=1_000)
    max_string_length: int = Field(10_000, ge=100, le=1_000_000)  # any JSON string (free text included)
    rate_limit_per_minute: int = Field(600, ge=1)  # per client (token subject), all /v1 endpoints together
    token_rate_limit_per_minute: int = Field(60, ge=1)  # /oauth/token, per remote address
    rate_limit_url: str = ""  # empty: in-process limiter; redis://... for a shared one
    rate_limit_socket_timeout: float = Field(0.05, gt=0, le=5)  # Redis connect/read timeout (seconds)
    rate_limit_failure_cooldown: float = Field(5.0, ge=0, le=300)  # skip a failed Redis this long
    idempotency_ttl_hours: float = Field(24.0, gt=0, le=24 * 30)
    principal_cache_seconds: float = Field(5.0, ge=0, le=300)  # how long a user/client status check is reused
    docs: bool = True  # serve /docs and /openapi.json

    @field_validator("rate_limit_url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be empty (in-process) or a redis://, rediss:// or unix:// URL")
        return v
