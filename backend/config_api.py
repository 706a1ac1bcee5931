"""Scoring API settings (``CREDITRISK_API__...``): tokens, limits. Nested into Settings."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class ApiSettings(BaseModel):
    issuer: str = "creditrisk"
    audience: str = "creditrisk-api"
    token_ttl_seconds: int = Field(900, ge=60, le=86_400)
    signing_keys: SecretStr = SecretStr("")  # empty in dev: a key ring is created under data_dir
    max_batch: int = Field(100, ge=1, le=10_000)
    max_body_bytes: int = Field(1_000_000, ge=1_000)
    rate_limit_per_minute: int = Field(600, ge=1)
    rate_limit_url: str = ""  # empty: in-process limiter; redis://... for a shared one
