"""The AWS control-plane clients of a SageMaker deployment (S3, SageMaker, Application Auto Scaling), from boto3."""

from __future__ import annotations

from typing import Any


def sagemaker_control_clients(region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=60, retries={"total_max_attempts": 5, "mode": "standard"})
    session = boto3.session.Session()

    class Clients:
        s3 = session.client("s3", region_name=region, config=config)
        sagemaker = session.client("sagemaker", region_name=region, config=config)
        autoscaling = session.client("application-autoscaling", region_name=region, config=config)

    return Clients()
