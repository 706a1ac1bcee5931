"""S3 clients for backups (boto3, imported on first use): the object store behind ``s3://bucket/prefix``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from backend.operations.backup_format import BackupError
from backend.operations.config import OpsSettings

BOTO3_MISSING = "S3 backups need boto3 (pip install boto3)"
S3ClientFactory = Callable[[], Any]


def s3_client_factory(ops: OpsSettings) -> S3ClientFactory:
    """A factory of boto3 S3 clients from settings (boto3 imported on first use)."""

    def make() -> Any:
        try:
            import boto3
        except ImportError as exc:  # pragma: no cover - boto3 is a runtime dependency
            raise BackupError(BOTO3_MISSING) from exc
        region = ops.s3_region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return boto3.client("s3", region_name=region, endpoint_url=ops.s3_endpoint_url or None)

    return make
