"""SageMaker deployment settings (``CREDITRISK_DEPLOY__...``), nested into Settings.

``creditrisk deploy sagemaker`` reads these (command-line options override them):

* where the artifact goes: ``s3_bucket``/``s3_prefix`` (uploaded with server-side encryption,
  AES-256 unless ``kms_key_id`` names a KMS key);
* what runs it: ``image_uri`` (the image built from ``docker/sagemaker/Dockerfile`` and pushed to
  ECR), ``role_arn`` (the SageMaker execution role), ``instance_type`` and ``variant``;
* the canary (deployment guardrails, blue/green): ``canary_percent`` of the capacity first, for
  ``wait_interval_seconds``, then the rest; the old fleet is kept ``termination_wait_seconds``;
  ``alarm_names`` (CloudWatch alarms that roll the update back automatically; an update refuses to
  run without one);
* autoscaling (Application Auto Scaling, target tracking): ``min_capacity`` .. ``max_capacity``
  instances at ``target_cpu_percent`` of the instance's CPU. SageMaker's ``CPUUtilization`` sums
  the cores (0..100 x vCPUs), so the policy's target value is ``target_cpu_percent x instance_vcpus``;
* the bounded waiter: ``waiter_delay_seconds`` x ``waiter_max_attempts``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"  # SageMaker endpoint / config / model names


class DeploySettings(BaseModel):
    endpoint_name: str = Field("creditrisk", pattern=NAME_PATTERN)
    region: str = ""  # empty: CREDITRISK_MODEL__AWS_REGION
    role_arn: str = ""
    image_uri: str = ""
    s3_bucket: str = ""
    s3_prefix: str = "creditrisk/models"
    kms_key_id: str = ""  # empty: SSE-S3 (AES-256)
    instance_type: str = "ml.c5.xlarge"
    instance_vcpus: int = Field(4, ge=1, le=512)  # vCPUs of instance_type (ml.c5.xlarge: 4)
    variant: str = Field("AllTraffic", pattern=NAME_PATTERN)
    min_capacity: int = Field(2, ge=1, le=100)
    max_capacity: int = Field(10, ge=1, le=1000)
    target_cpu_percent: float = Field(70.0, gt=0, le=100)
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600)
    canary_percent: int = Field(10, ge=1, le=50)  # SageMaker: at most half the new fleet
    wait_interval_seconds: int = Field(600, ge=0, le=3600)
    termination_wait_seconds: int = Field(600, ge=0, le=3600)
    max_execution_timeout_seconds: int = Field(3600, ge=600, le=28_800)
    alarm_names: list[str] = Field(default_factory=list, max_length=10)
    waiter_delay_seconds: int = Field(30, ge=0, le=300)
    waiter_max_attempts: int = Field(120, ge=1, le=1000)

    @field_validator("alarm_names")
    @classmethod
    def _alarms(cls, v: list[str]) -> list[str]:
        names = [a.strip() for a in v if a.strip()]
        if any(len(a) > 255 for a in names):
            raise ValueError("alarm names have at most 255 characters")
        return names

    @model_validator(mode="after")
    def _capacity(self) -> DeploySettings:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity ({self.min_capacity}) is above max_capacity ({self.max_capacity})")
        return self


class ModelSettings(BaseModel):
    registry_dir: Path = Path("models")
    # empty: the folder registry_dir is the registry (embedded default); mlflow+http(s)://host:port: an MLflow
    # tracking server is (backend/models/adapters/mlflow_registry.py), registry_dir/mlflow-cache keeps verified copies
    registry_url: str = ""
    registry_refresh_seconds: float = Field(5.0, ge=0, le=3600)  # a remote registry's lifecycle is re-read this often
    registry_timeout_seconds: float = Field(10.0, gt=0, le=300)  # one HTTP call to the MLflow server
    name: str = "creditrisk"
    engine: Literal["compiled", "reference", "sagemaker"] = "compiled"  # sagemaker: set by server=sagemaker
    server: Literal["local", "sagemaker"] = "local"
    sagemaker_endpoint: str = ""
    aws_region: str = "us-east-1"
    # the SageMaker runtime client (backend/models/adapters/sagemaker_runtime.py); endpoint_url: a VPC or loopback endpoint
    sagemaker_endpoint_url: str = ""
    sagemaker_connect_timeout: float = Field(1.0, gt=0, le=60)
    sagemaker_read_timeout: float = Field(2.0, gt=0, le=60)
    sagemaker_max_attempts: int = Field(2, ge=1, le=5)  # the first call included
    sagemaker_max_batch: int = Field(100, ge=1, le=1000)  # applications per invocation
    # model signing (backend/models/signing.py): the private key signs, the public keys verify
    signing_key: SecretStr = SecretStr("")  # base64 of a 32-byte Ed25519 private key (a secret store)
    signing_key_file: Path | None = None  # JSON key file (a mounted secret); neither: <data_dir>/secrets/ (dev, test)
    verify_keys: str = ""  # comma-separated base64 Ed25519 public keys that only verify (serving processes)

    @field_validator("signing_key")
    @classmethod
    def _signing_key(cls, v: SecretStr) -> SecretStr:
        from backend.models.signing import private_from_b64

        if v.get_secret_value().strip():
            private_from_b64(v.get_secret_value(), "the key")  # ValueError that never holds key material
        return v

    @field_validator("registry_url")
    @classmethod
    def _registry_url(cls, v: str) -> str:
        v = v.strip()
        if v and not re.match(r"^mlflow\+https?://[^\s/?#]+(/[^\s?#]*)?$", v):
            raise ValueError("registry_url is empty (the local folder registry_dir) or mlflow+http://host:port "
                             "(an MLflow tracking server; mlflow+https:// too)")
        return v

    @field_validator("verify_keys")
    @classmethod
    def _verify_keys(cls, v: str) -> str:
        from backend.models.signing import public_from_b64

        for k in v.split(","):
            if k.strip():
                public_from_b64(k, f"{k.strip()[:12]}…")
        return v

    @model_validator(mode="after")
    def _sagemaker(self) -> ModelSettings:
        if self.server == "sagemaker":
            if not self.sagemaker_endpoint.strip():
                raise ValueError("server sagemaker needs CREDITRISK_MODEL__SAGEMAKER_ENDPOINT (the endpoint name)")
            self.engine = "sagemaker"  # what predictions record
        elif self.engine == "sagemaker":
            raise ValueError("engine sagemaker is set by CREDITRISK_MODEL__SERVER=sagemaker")
        return self
