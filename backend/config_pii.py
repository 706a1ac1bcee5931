"""Field-level encryption of personal data (``CREDITRISK_PII__...``). Nested into Settings as ``pii``.

Keys are AES-256 keys (32 random bytes, base64), each named by a key id (``kid``)::

    CREDITRISK_PII__KEYS='{"k2026a": "<base64 of 32 bytes>", "k2025b": "<base64 of 32 bytes>"}'
    CREDITRISK_PII__ACTIVE_KID=k2026a

The active key encrypts; every key in the ring decrypts (keep a retired key until
``creditrisk pii status`` shows no row under it). Instead of the variable, ``key_file`` may name a
JSON file ``{"active": kid, "keys": {kid: base64}}`` (a mounted secret). With neither, dev and
test create such a file once under ``data_dir/secrets/pii.json`` (mode 0600); production refuses
to start (see :func:`backend.security.pii.load_pii_keyring`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator

from backend.security.keys import KID_PATTERN, parse_keys

ACTIVE_KID_FORMAT = "must be a key id of 1 to 32 letters, digits or '-' (got a malformed value)"


class PiiSettings(BaseModel):
    keys: SecretStr = SecretStr("")  # JSON {kid: base64 32-byte key}; empty: key_file or the dev file
    active_kid: str = ""  # which key encrypts (may be empty when the ring holds exactly one key)
    key_file: Path | None = None  # JSON {"active": kid, "keys": {kid: base64}}, e.g. a mounted secret
    rotate_batch_size: int = Field(500, ge=1, le=50_000)  # rows per transaction of `creditrisk pii rotate`

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value().strip()
        if raw:
            parse_keys(raw)  # raises ValueError with a message that never holds key material
        return v

    @field_validator("active_kid")
    @classmethod
    def _kid(cls, v: str) -> str:
        if v and not KID_PATTERN.match(v):
            raise ValueError(ACTIVE_KID_FORMAT)
        return v
