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

from pydantic import BaseModel, Field, field_validator, model_validator

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
