"""Metrics settings (``CREDITRISK_METRICS__*``), nested in :class:`backend.platform.config.Settings` as ``metrics``.

* ``backend``: ``prometheus`` (default: counters and histograms in a registry of this process, served
  by the API at ``GET /metrics``), ``emf`` (CloudWatch Embedded Metric Format: one JSON line per label
  set on standard output, flushed every ``emf_flush_seconds``) or ``none``.
* ``namespace``: the Prometheus metric-name prefix and the CloudWatch namespace.
* ``token``: when set, ``GET /metrics`` wants ``Authorization: Bearer <token>``; when empty, the
  endpoint is open in dev/test and refused (403) in production.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

NAMESPACE_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
BAD_NAMESPACE = "must be a letter or underscore followed by letters, digits or underscores (at most 64)"
MIN_TOKEN_LENGTH = 24
SHORT_TOKEN = f"must be empty (no token) or at least {MIN_TOKEN_LENGTH} characters"


class MetricsSettings(BaseModel):
    backend: Literal["none", "prometheus", "emf"] = "prometheus"
    namespace: str = "creditrisk"
    token: SecretStr = SecretStr("")
    emf_stream: Literal["stdout", "stderr"] = "stdout"
    emf_flush_seconds: float = Field(60.0, gt=0, le=3600)
    emf_max_groups: int = Field(200, ge=1, le=10_000)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not NAMESPACE_RE.match(v):
            raise ValueError(BAD_NAMESPACE)
        return v

    @field_validator("token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if raw and len(raw) < MIN_TOKEN_LENGTH:
            raise ValueError(SHORT_TOKEN)
        return v
