"""``creditrisk deploy sagemaker`` / ``deploy rollback``: the create flow against moto (S3, SageMaker,
Application Auto Scaling), the canary update, the alarm rollback and ``deploy rollback`` against botocore's
Stubber with the exact request shapes, refusals (halted, role, no alarm), and ``--dry-run``."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import ANY, Stubber
from sqlalchemy import select
from typer.testing import CliRunner

from backend.compliance.audit_queries import AuditRepository
from backend.compliance.evidence import latest
from backend.container import build_services
from backend.container.settings import load_settings
from backend.domain import Actor
from backend.models import deploy as dep
from backend.models.halts import HALT_ACTION, DeploymentsHalted
from backend.models.package import SERVING_JSON
from backend.platform.db.tables_governance import AlertRow, AuditLog

SESSION_SIGNING_KEY = __import__("os").environ["CREDITRISK_MODEL__SIGNING_KEY"]  # the root conftest's


ML = Actor("cli:mlops", "ml_engineer")
STAMP = "20260115090000"  # the FixedClock of tests/conftest.py
OLD = "creditrisk-v20250101-000000000-aaaaaa-20250101000000"
ALARMS = ["creditrisk-5xx", "creditrisk-model-latency"]
ROLE = "arn:aws:iam::123456789012:role/creditrisk-sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/creditrisk-serving:1"
BUCKET = "creditrisk-models-test"
WHEN = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
GUARDRAILS = {  # what UpdateEndpoint must carry, spelled out (not rebuilt with the code under test)
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                                        "WaitIntervalInSeconds": 600},
        "TerminationWaitInSeconds": 600, "MaximumExecutionTimeoutInSeconds": 3600},
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "creditrisk-5xx"}, {"AlarmName": "creditrisk-model-latency"}]}}
SCALING_TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/creditrisk/variant/AllTraffic",
                  "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 2, "MaxCapacity": 10}
SCALING_POLICY = {
    "PolicyName": "creditrisk-cpu-target-tracking", "ServiceNamespace": "sagemaker",
    "ResourceId": "endpoint/creditrisk/variant/AllTraffic", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    "PolicyType": "TargetTrackingScaling",
    "TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 280.0,  # 70 % of an ml.c5.xlarge: CPUUtilization sums its 4 vCPUs (0..400)
        "CustomizedMetricSpecification": {
            "MetricName": "CPUUtilization", "Namespace": "/aws/sagemaker/Endpoints",
            "Dimensions": [{"Name": "EndpointName", "Value": "creditrisk"}, {"Name": "VariantName", "Value": "AllTraffic"}],
            "Statistic": "Average", "Unit": "Percent"},
        "ScaleInCooldown": 300, "ScaleOutCooldown": 60}}


@pytest.fixture
def svc(tmp_path: Path, sqlite_database, clock, model_registry: Path):
    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    settings = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root},
                             deploy={"role_arn": ROLE, "image_uri": IMAGE, "s3_bucket": BUCKET, "alarm_names": ALARMS,
                                     "waiter_delay_seconds": 0, "waiter_max_attempts": 3, "region": "us-east-1"})
    return build_services(settings, db=sqlite_database, clock=clock)


def _deployer(svc, clients, settings=None) -> dep.SageMakerDeployer:
    return dep.SageMakerDeployer(svc.db, svc.clock, settings or svc.settings, svc.models.registry(), clients=clients)


def _rows(svc, action: str) -> list[AuditLog]:
    with svc.db.read() as s:
        return list(s.execute(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.seq)).scalars())


def _stubbed_clients() -> tuple[SimpleNamespace, dict[str, Stubber]]:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    clients = SimpleNamespace(**{k: session.client(n, region_name="us-east-1") for k, n in
                                 (("s3", "s3"), ("sagemaker", "sagemaker"), ("autoscaling", "application-autoscaling"))})
    return clients, {k: Stubber(getattr(clients, k)) for k in ("s3", "sagemaker", "autoscaling")}


def _endpoint(config: str, status: str = "InService", **extra) -> dict:
    return {"EndpointName": "creditrisk", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/creditrisk",
            "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": WHEN, "LastModifiedTime": WHEN,
            **extra}


def test_first_deploy_creates_everything_on_moto(svc, monkeypatch):
    from moto import mock_aws

    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(k, v)
    with mock_aws():
        clients = SimpleNamespace(s3=boto3.client("s3"), sagemaker=boto3.client("sagemaker"),
                                  autoscaling=boto3.client("application-autoscaling"))
        clients.s3.create_bucket(Bucket=BUCKET)
        res = _deployer(svc, clients).deploy("champion", ML)
        version = svc.models.registry().resolve("champion")
        name = f"creditrisk-{version}-{STAMP}"
        assert (res.action, res.config, res.previous_config, res.version) == ("create", name, None, version)
        key = f"creditrisk/models/creditrisk/{version}/model.tar.gz"
        head = clients.s3.head_object(Bucket=BUCKET, Key=key)
        data = clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert head["ServerSideEncryption"] == "AES256" and head["Metadata"]["sha256"] == res.sha256
        assert hashlib.sha256(data).hexdigest() == res.sha256
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert SERVING_JSON in tar.getnames()
        model = clients.sagemaker.describe_model(ModelName=name)
        assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{key}"
        assert (model["PrimaryContainer"]["Image"], model["ExecutionRoleArn"]) == (IMAGE, ROLE)
        [variant] = clients.sagemaker.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
        assert (variant["ModelName"], variant["InitialInstanceCount"], variant["InstanceType"]) == (name, 2, "ml.c5.xlarge")
        endpoint = clients.sagemaker.describe_endpoint(EndpointName="creditrisk")
        assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", name)
        [target] = clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
            "endpoint/creditrisk/variant/AllTraffic", 2, 10)
        [policy] = clients.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        tracking = policy["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["TargetValue"] == 280.0
        assert tracking["CustomizedMetricSpecification"] == SCALING_POLICY[
            "TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    [row] = _rows(svc, dep.DEPLOYED)
    assert (row.entity_type, row.entity_id, row.role) == (dep.ENTITY, "creditrisk", "ml_engineer")
    assert row.payload["action"] == "create" and row.payload["previous_config"] is None
    assert row.payload["sha256"] == res.sha256 and row.payload["autoscaling"]["target_value"] == 280.0


def _session_public_key() -> str:
    from backend.models.signing import ModelKeys, private_from_b64

    return ModelKeys.of(private_from_b64(os.environ["CREDITRISK_MODEL__SIGNING_KEY"])).public_text()


def _stub_update(stubs: dict[str, Stubber], version: str, name: str, *, serves: str | None = None) -> None:
    sm, s3, aas = stubs["sagemaker"], stubs["s3"], stubs["autoscaling"]
    sm.add_response("describe_endpoint", _endpoint(OLD), {"EndpointName": "creditrisk"})
    key = f"creditrisk/models/creditrisk/{version}/model.tar.gz"
    s3.add_response("put_object", {"ETag": '"e"'}, {
        "Bucket": BUCKET, "Key": key, "Body": ANY, "ContentType": "application/gzip",
        "Metadata": {"model-version": version, "sha256": ANY}, "ServerSideEncryption": "AES256"})
    tags = [{"Key": "creditrisk:model-version", "Value": version}, {"Key": "creditrisk:artifact-sha256", "Value": ANY}]
    sm.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}"}, {
        "ModelName": name, "ExecutionRoleArn": ROLE, "Tags": tags,
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}",
                             "Environment": {"CREDITRISK_MODEL__NAME": "creditrisk",
                                             # the container verifies signatures with the public key only
                                             "CREDITRISK_MODEL__VERIFY_KEYS": _session_public_key()}}})
    sm.add_response("create_endpoint_config", {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}"}, {
        "EndpointConfigName": name, "Tags": tags,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 2,
                                "InstanceType": "ml.c5.xlarge"}]})
    sm.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/creditrisk"}, {
        "EndpointName": "creditrisk", "EndpointConfigName": name, "RetainAllVariantProperties": True,
        "DeploymentConfig": GUARDRAILS})
    after = serves or name
    failure = {"FailureReason": "alarm creditrisk-5xx in ALARM"} if serves else {}
    sm.add_response("describe_endpoint", _endpoint(after, **failure), {"EndpointName": "creditrisk"})  # the waiter
    sm.add_response("describe_endpoint", _endpoint(after, **failure), {"EndpointName": "creditrisk"})
    if serves is None:
        aas.add_response("register_scalable_target", {}, SCALING_TARGET)
        aas.add_response("put_scaling_policy", {"PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1:resource/sagemaker/x", "Alarms": []}, SCALING_POLICY)


def test_update_shifts_with_a_canary_then_rollback_returns_with_the_same_guardrails(svc):
    version = svc.models.registry().resolve("champion")
    name = f"creditrisk-{version}-{STAMP}"
    clients, stubs = _stubbed_clients()
    _stub_update(stubs, version, name)
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", _endpoint(name), {"EndpointName": "creditrisk"})
    sm.add_response("describe_endpoint_config", {
        "EndpointConfigName": OLD, "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{OLD}", "CreationTime": WHEN,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": OLD}]}, {"EndpointConfigName": OLD})
    sm.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/creditrisk"}, {
        "EndpointName": "creditrisk", "EndpointConfigName": OLD, "RetainAllVariantProperties": True,
        "DeploymentConfig": GUARDRAILS})
    sm.add_response("describe_endpoint", _endpoint(OLD), {"EndpointName": "creditrisk"})
    sm.add_response("describe_endpoint", _endpoint(OLD), {"EndpointName": "creditrisk"})
    for s in stubs.values():
        s.activate()
    deployer = _deployer(svc, clients)
    res = deployer.deploy("champion", ML)
    assert (res.action, res.previous_config) == ("update", OLD)
    assert [c.operation for c in res.calls] == ["DescribeEndpoint", "PutObject", "CreateModel", "CreateEndpointConfig",
                                                "UpdateEndpoint", "DescribeEndpoint", "DescribeEndpoint",
                                                "RegisterScalableTarget", "PutScalingPolicy"]
    back = deployer.rollback(Actor("cli:oncall", "ml_engineer"), note="latency regression")
    for s in stubs.values():
        s.assert_no_pending_responses()
    assert (back.config, back.previous_config, back.version) == (OLD, name, "unknown")
    [deployed] = _rows(svc, dep.DEPLOYED)
    assert deployed.payload["canary"] == GUARDRAILS and deployed.payload["previous_config"] == OLD
    [rolled] = _rows(svc, dep.ROLLED_BACK)
    assert (rolled.payload["from_config"], rolled.payload["to_config"], rolled.payload["note"]) == (
        name, OLD, "latency regression")
    evidence = latest(svc.db, "rollback_test")
    assert evidence is not None and evidence.ok and evidence.payload["target"] == "sagemaker"
    assert evidence.payload["to_config"] == OLD and evidence.actor == "cli:oncall"
    with svc.db.read() as s:
        assert AuditRepository(s).verify().ok


def test_an_alarm_that_rolls_the_canary_back_is_a_recorded_failure(svc):
    version = svc.models.registry().resolve("champion")
    clients, stubs = _stubbed_clients()
    _stub_update(stubs, version, f"creditrisk-{version}-{STAMP}", serves=OLD)
    for s in stubs.values():
        s.activate()
    with pytest.raises(dep.DeployError, match="the deployment was rolled back") as exc:
        _deployer(svc, clients).deploy("champion", ML)
    assert "alarm creditrisk-5xx in ALARM" in str(exc.value)
    for s in stubs.values():
        s.assert_no_pending_responses()  # no autoscaling change after a failed shift
    [failed] = _rows(svc, dep.FAILED)
    assert failed.payload["previous_config"] == OLD and "rolled back" in failed.payload["error"]
    assert _rows(svc, dep.DEPLOYED) == []


def test_refusals_change_nothing(svc):
    clients, stubs = _stubbed_clients()  # no responses queued: any AWS call would fail the test
    for s in stubs.values():
        s.activate()
    deployer = _deployer(svc, clients)
    with pytest.raises(dep.DeployError, match=dep.MSG_ROLE.format(role="loan officer", what="deploy a model to SageMaker")):
        deployer.deploy("champion", Actor("cli:officer", "loan_officer"))
    no_role = svc.settings.model_copy(update={"deploy": svc.settings.deploy.model_copy(update={"role_arn": ""})})
    with pytest.raises(dep.DeployError, match="CREDITRISK_DEPLOY__ROLE_ARN"):
        _deployer(svc, clients, no_role).deploy("champion", ML)
    with svc.db.transaction() as s:
        s.add(AlertRow(id=uuid.uuid4(), rule="disparate_impact", metric="disparate_impact", severity="critical",
                       action=HALT_ACTION, status="open", value=0.7, threshold=0.8, message="DI 0.70 below 0.80",
                       details={}, opened_at=WHEN, last_seen_at=WHEN, notifications=[]))
    with pytest.raises(DeploymentsHalted):
        deployer.deploy("champion", ML)
    with pytest.raises(DeploymentsHalted):
        deployer.deploy("champion", ML, dry_run=True)
    # a rollback stays possible while deployments are halted (it reduces risk): here it stops at history
    with pytest.raises(dep.DeployError, match="no earlier configuration"):
        deployer.rollback(ML, dry_run=True)
    plan = deployer.rollback(ML, to=OLD, dry_run=True)
    assert [c.operation for c in plan.calls] == ["DescribeEndpoint", "DescribeEndpointConfig", "UpdateEndpoint",
                                                 "DescribeEndpoint"]
    no_alarm = svc.settings.model_copy(update={"deploy": svc.settings.deploy.model_copy(update={"alarm_names": []})})
    stubs["sagemaker"].add_response("describe_endpoint", _endpoint(OLD), {"EndpointName": "creditrisk"})
    with svc.db.transaction() as s:
        s.query(AlertRow).update({"status": "resolved"})
    with pytest.raises(dep.DeployError, match="name at least one"):
        _deployer(svc, clients, no_alarm).deploy("champion", ML)
    for s in stubs.values():
        s.assert_no_pending_responses()
    assert _rows(svc, dep.DEPLOYED) == _rows(svc, dep.FAILED) == _rows(svc, dep.ROLLED_BACK) == []


def test_cli_dry_run_prints_the_exact_calls_and_records_nothing(tmp_path, monkeypatch, model_registry):
    from backend.cli import app

    for k in list(__import__("os").environ):
        if k.startswith(("CREDITRISK_", "AWS_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)  # the copied registries are signed with it
    shutil.copytree(model_registry, tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    for k, v in {"DATA_DIR": tmp_path / "var", "MODEL__REGISTRY_DIR": tmp_path / "models", "DEPLOY__ROLE_ARN": ROLE,
                 "DEPLOY__IMAGE_URI": IMAGE, "DEPLOY__S3_BUCKET": BUCKET}.items():
        monkeypatch.setenv(f"CREDITRISK_{k}", str(v))
    runner = CliRunner()
    res = runner.invoke(app, ["deploy", "sagemaker", "--dry-run", "--alarm", "creditrisk-5xx"])
    assert res.exit_code == 0, res.output
    out = res.output
    for op in ("s3 PutObject", "sagemaker CreateModel", "sagemaker CreateEndpointConfig", "sagemaker CreateEndpoint",
               "sagemaker UpdateEndpoint", "application-autoscaling RegisterScalableTarget",
               "application-autoscaling PutScalingPolicy"):
        assert op in out, op
    assert '"Type": "CANARY"' in out and '"TargetValue": 280.0' in out and '"AlarmName": "creditrisk-5xx"' in out
    assert "nothing was called or recorded" in out
    res = runner.invoke(app, ["deploy", "rollback", "--dry-run"])
    assert res.exit_code == 2 and "no earlier configuration" in res.output
    res = runner.invoke(app, ["deploy", "package", "--out", str(tmp_path / "model.tar.gz")])
    assert res.exit_code == 0 and (tmp_path / "model.tar.gz").exists()
    svc = build_services(load_settings())
    with svc.db.read() as s:
        assert s.execute(select(AuditLog).where(AuditLog.entity_type == dep.ENTITY)).first() is None
    svc.close()
