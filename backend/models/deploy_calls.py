"""The AWS requests of a SageMaker deployment, as plain data (what ``--dry-run`` prints and tests assert).

Each builder returns a :class:`Call` (service, operation, parameters) from the deployment settings
(:class:`~backend.models.config.DeploySettings`); nothing here talks to AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend.models.config import DeploySettings

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
CPU_NAMESPACE = "/aws/sagemaker/Endpoints"
TAG_VERSION, TAG_SHA = "creditrisk:model-version", "creditrisk:artifact-sha256"
MAX_NAME = 63


@dataclass(frozen=True)
class Call:
    service: str  # s3 | sagemaker | application-autoscaling
    operation: str  # the API operation, e.g. UpdateEndpoint
    params: dict[str, Any]
    note: str = ""  # when the call is conditional
    shown: dict[str, Any] = field(default_factory=dict)  # parameters printed instead of raw values (bodies)

    @property
    def method(self) -> str:
        """The boto3 client method (``UpdateEndpoint`` -> ``update_endpoint``)."""
        return "".join(("_" + c.lower()) if c.isupper() else c for c in self.operation).lstrip("_")

    def describe(self) -> str:
        params = {**self.params, **self.shown}
        text = f"{self.service} {self.operation} {json.dumps(params, sort_keys=True, default=str)}"
        return text + (f"   # {self.note}" if self.note else "")


def resource_name(endpoint: str, version: str, at: datetime) -> str:
    """A model / endpoint-config name: ``<endpoint>-<version>-<UTC timestamp>``, at most 63 characters."""
    suffix = f"{version}-{at.strftime('%Y%m%d%H%M%S')}".replace("_", "-").replace(".", "-")
    head = endpoint[: max(1, MAX_NAME - len(suffix) - 1)].rstrip("-")
    return f"{head}-{suffix}"[:MAX_NAME].rstrip("-")


def tags(version: str, sha256: str) -> list[dict[str, str]]:
    return [{"Key": TAG_VERSION, "Value": version}, {"Key": TAG_SHA, "Value": sha256}]


def put_artifact(d: DeploySettings, key: str, body: bytes, version: str, sha256: str) -> Call:
    params: dict[str, Any] = {"Bucket": d.s3_bucket, "Key": key, "Body": body, "ContentType": "application/gzip",
                              "Metadata": {"model-version": version, "sha256": sha256}}
    if d.kms_key_id:
        params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=d.kms_key_id)
    else:
        params["ServerSideEncryption"] = "AES256"
    return Call("s3", "PutObject", params, shown={"Body": f"<model.tar.gz: {len(body)} bytes, sha256 {sha256}>"})


def create_model(d: DeploySettings, model_name: str, model_data_url: str, name: str, version: str,
                 sha256: str, verify_keys: str = "") -> Call:
    """``verify_keys``: the public keys the container checks the version's signature with (never the private key)."""
    env = {"CREDITRISK_MODEL__NAME": name, **({"CREDITRISK_MODEL__VERIFY_KEYS": verify_keys} if verify_keys else {})}
    return Call("sagemaker", "CreateModel", {
        "ModelName": model_name,
        "PrimaryContainer": {"Image": d.image_uri, "ModelDataUrl": model_data_url, "Environment": env},
        "ExecutionRoleArn": d.role_arn, "Tags": tags(version, sha256)})


def create_endpoint_config(d: DeploySettings, config_name: str, model_name: str, version: str, sha256: str) -> Call:
    params: dict[str, Any] = {
        "EndpointConfigName": config_name,
        "ProductionVariants": [{"VariantName": d.variant, "ModelName": model_name,
                                "InitialInstanceCount": d.min_capacity, "InstanceType": d.instance_type}],
        "Tags": tags(version, sha256)}
    if d.kms_key_id:
        params["KmsKeyId"] = d.kms_key_id
    return Call("sagemaker", "CreateEndpointConfig", params)


def describe_endpoint(endpoint: str) -> Call:
    return Call("sagemaker", "DescribeEndpoint", {"EndpointName": endpoint})


def create_endpoint(endpoint: str, config_name: str, version: str, sha256: str) -> Call:
    return Call("sagemaker", "CreateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": config_name,
                                                "Tags": tags(version, sha256)}, note="only if the endpoint does not exist")


def deployment_config(d: DeploySettings) -> dict[str, Any]:
    """Blue/green with canary traffic shifting and automatic rollback on the alarms (deployment guardrails)."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "CANARY",
                                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": d.canary_percent},
                                            "WaitIntervalInSeconds": d.wait_interval_seconds},
            "TerminationWaitInSeconds": d.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": d.max_execution_timeout_seconds},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in d.alarm_names]}}


def update_endpoint(d: DeploySettings, endpoint: str, config_name: str, note: str = "") -> Call:
    return Call("sagemaker", "UpdateEndpoint", {
        "EndpointName": endpoint, "EndpointConfigName": config_name, "RetainAllVariantProperties": True,
        "DeploymentConfig": deployment_config(d)}, note=note)


def describe_endpoint_config(config_name: str) -> Call:
    return Call("sagemaker", "DescribeEndpointConfig", {"EndpointConfigName": config_name})


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def register_scalable_target(d: DeploySettings, endpoint: str) -> Call:
    return Call("application-autoscaling", "RegisterScalableTarget", {
        "ServiceNamespace": "sagemaker", "ResourceId": resource_id(endpoint, d.variant),
        "ScalableDimension": SCALABLE_DIMENSION, "MinCapacity": d.min_capacity, "MaxCapacity": d.max_capacity})


def cpu_target_value(d: DeploySettings) -> float:
    """SageMaker's CPUUtilization sums the cores (0..100 x vCPUs): the target for ``target_cpu_percent`` of the instance."""
    return float(d.target_cpu_percent * d.instance_vcpus)


def put_scaling_policy(d: DeploySettings, endpoint: str) -> Call:
    return Call("application-autoscaling", "PutScalingPolicy", {
        "PolicyName": f"{endpoint}-cpu-target-tracking", "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id(endpoint, d.variant), "ScalableDimension": SCALABLE_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": cpu_target_value(d),
            "CustomizedMetricSpecification": {
                "MetricName": "CPUUtilization", "Namespace": CPU_NAMESPACE,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": d.variant}],
                "Statistic": "Average", "Unit": "Percent"},
            "ScaleInCooldown": d.scale_in_cooldown_seconds, "ScaleOutCooldown": d.scale_out_cooldown_seconds}})


def wait_in_service(d: DeploySettings, endpoint: str) -> Call:
    """The bounded waiter (``endpoint_in_service``), printed as the DescribeEndpoint polling it does."""
    return Call("sagemaker", "DescribeEndpoint", {"EndpointName": endpoint},
                note=f"waiter endpoint_in_service: every {d.waiter_delay_seconds} s, at most {d.waiter_max_attempts} times")
