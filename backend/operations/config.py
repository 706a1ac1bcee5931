"""Operations settings (``CREDITRISK_OPS__...``): backup location and the recovery targets. Nested into Settings.

``backup_location`` is where ``creditrisk backup`` writes and where ``creditrisk drill`` looks for the
newest backup: a folder, or ``s3://bucket/prefix`` (empty: ``<data_dir>/backups``). The targets are
the seed's: restore within one hour (RTO) and lose at most 15 minutes of data (RPO).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

DEFAULT_RTO_TARGET_SECONDS = 3600.0
DEFAULT_RPO_TARGET_SECONDS = 900.0


class OpsSettings(BaseModel):
    backup_location: str = ""  # folder or s3://bucket/prefix; empty: <data_dir>/backups
    s3_endpoint_url: str = ""  # an S3-compatible store (MinIO, ...); empty: AWS
    s3_region: str = ""  # empty: AWS_DEFAULT_REGION, else us-east-1
    rto_target_seconds: float = Field(DEFAULT_RTO_TARGET_SECONDS, gt=0, le=7 * 86_400)
    rpo_target_seconds: float = Field(DEFAULT_RPO_TARGET_SECONDS, gt=0, le=7 * 86_400)
    backup_chunk_rows: int = Field(2000, ge=10, le=100_000)  # rows read/inserted per batch

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be empty or an http(s):// URL")
        return v
