"""Field-level encryption of personal data (``CREDITRISK_PII__...``). Nested into Settings as ``pii``.

Keys are AES-256 keys (32 random bytes, base64), each named by a key id (``kid``)::

    CREDITRISK_PII__KEYS='{"k2026a": "<base64 of 32 bytes>", "k2025b": "<base64 of 32 bytes>"}'
    CREDITRISK_PII__ACTIVE_KID=k2026a

The active key encrypts; every key in the ring decrypts (keep a retired key until
``creditrisk pii status`` shows no row under it). Instead of the variable, ``key_file`` may name a
JSON file ``{"active": kid, "keys": {kid: base64}}`` (a mounted secret). With neither, dev and
test create such a file once under ``data_dir/secrets/pii.json`` (mode 0600); production refuses
to start (see :func:`backend.compliance.pii.load_pii_keyring`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator

from backend.compliance.pii_keys import KID_PATTERN, parse_keys

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


#: Regulation B (12 CFR 1002.12(b)) keeps application records for 25 months after notice of action.
AUDIT_MIN_RETENTION_DAYS = 761
AUDIT_DEFAULT_RETENTION_DAYS = 2557  # 7 years
AUDIT_RETENTION_TOO_SHORT = ("must be at least {min} days: Regulation B (12 CFR 1002.12(b)) requires keeping "
                             "records for 25 months (got {got})")


class AuditSettings(BaseModel):
    """The audit trail. ``retention_days``: how long rows stay in the table before
    ``creditrisk audit archive`` takes them (default 7 years; never below Regulation B's 25 months).

    The chain's keys live outside the database: ``chain_key`` (HMAC key of the batch chain, base64 of
    32+ bytes) and ``signing_key`` (Ed25519 private key of the checkpoints, base64 of 32 bytes), or a
    ``key_file`` JSON ``{"chain_key": ..., "signing_key": ...}`` (a mounted secret). With neither,
    dev and test create ``data_dir/secrets/audit_chain.json`` (0600) once; production refuses.
    Signed checkpoints of the head go to ``checkpoint_dir`` (default ``data_dir/audit_checkpoints``)
    at most every ``checkpoint_every_s`` seconds and at every archive. ``inline_sequencing``: seal
    entries right after each write transaction (the embedded default needs nothing else); servers may
    turn it off and run ``creditrisk audit sequence`` instead."""

    retention_days: int = Field(AUDIT_DEFAULT_RETENTION_DAYS, le=36_500)
    chain_key: SecretStr = SecretStr("")
    signing_key: SecretStr = SecretStr("")
    key_file: Path | None = None
    checkpoint_dir: Path | None = None
    checkpoint_every_s: float = Field(10.0, ge=0)
    inline_sequencing: bool = True
    batch_max: int = Field(10_000, ge=1, le=1_000_000)
    sequencer_wait_s: float = Field(5.0, ge=0)  # how long a seal waits for transactions still in flight

    @field_validator("retention_days")
    @classmethod
    def _regulation_b(cls, v: int) -> int:
        if v < AUDIT_MIN_RETENTION_DAYS:
            raise ValueError(AUDIT_RETENTION_TOO_SHORT.format(min=AUDIT_MIN_RETENTION_DAYS, got=v))
        return v
