"""``creditrisk deploy sagemaker`` and ``creditrisk deploy rollback``: the registry's model on a SageMaker
endpoint, shifted in with a canary, autoscaled, and recorded.

Deploy (an ML engineer: ``MANAGE_MODELS``; refused while deployments are halted):

1. package the version (:mod:`backend.models.package`) and upload ``model.tar.gz`` to S3 (SSE);
2. ``CreateModel`` (the serving image + the artifact) and ``CreateEndpointConfig`` (one variant,
   ``min_capacity`` instances); names ``<endpoint>-<version>-<UTC time>``, never reused, never deleted,
   so every earlier configuration stays available for a rollback;
3. ``CreateEndpoint`` the first time; otherwise ``UpdateEndpoint`` with deployment guardrails: blue/green,
   ``CANARY`` traffic shifting (``canary_percent`` of the capacity for ``wait_interval_seconds``, then
   the rest), the old fleet kept ``termination_wait_seconds``, automatic rollback when one of
   ``alarm_names`` goes off (an update without an alarm is refused);
4. wait (bounded) until the endpoint is ``InService`` and check it serves the new configuration (after
   an automatic rollback it serves the old one: reported as a failure);
5. autoscaling: ``RegisterScalableTarget`` (``min_capacity``..``max_capacity``) and ``PutScalingPolicy``
   (target tracking on the variant's ``CPUUtilization``);
6. one audit row (``sagemaker_deployed``, or ``sagemaker_deploy_failed`` with the error) in one
   transaction, with the configuration it replaced: the deployment history rollback reads.

Rollback (``ROLLBACK_MODELS``; allowed while deployments are halted, like the registry's rollback):
``UpdateEndpoint`` back to the configuration the current one replaced (or ``--to``), with the same
guardrails; the audit row ``sagemaker_rolled_back`` and a ``rollback_test`` evidence row (for the
readiness checklist) are written in one transaction.

``dry_run`` returns the exact calls without making any (the package is built locally, to show its
size and SHA-256) and records nothing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from backend.compliance import AuditFilter, AuditRepository, OpsRepository, current_command
from backend.domain import Actor, Perm, allowed
from backend.identity import UserRepository, normalize_username
from backend.models import deploy_calls as calls
from backend.models.config import DeploySettings, ModelSettings
from backend.models.deploy_calls import Call
from backend.models.halts import ensure_not_halted
from backend.models.package import build_package
from backend.platform.db.engine import Database
from backend.platform.ports import Clock
from backend.platform.sdk_errors import classify_sdk_error

ENTITY = "sagemaker_endpoint"
DEPLOYED, FAILED, ROLLED_BACK = "sagemaker_deployed", "sagemaker_deploy_failed", "sagemaker_rolled_back"
MSG_ROLE = "a {role} may not {what}"
MSG_DISABLED = "{username!r} is disabled and may not {what}"
MSG_SETTING = "set CREDITRISK_DEPLOY__{env} (or --{option}) first: {why}"
MSG_NO_ALARMS = ("an update shifts traffic with a canary that rolls back on CloudWatch alarms: name at least one "
                 "(CREDITRISK_DEPLOY__ALARM_NAMES or --alarm)")
MSG_BUSY = "endpoint {endpoint!r} is {status}: wait until it is InService"
MSG_NOT_SERVING = "endpoint {endpoint!r} does not exist: nothing to roll back"
MSG_NO_PREVIOUS = ("no earlier configuration of {endpoint!r} is recorded for {config!r}: "
                   "name one with --to (see the audit trail, entity sagemaker_endpoint)")
MSG_SAME = "endpoint {endpoint!r} already serves {config!r}"
MSG_WAIT = "endpoint {endpoint!r} did not become InService: {reason}"
MSG_ROLLED_BACK = ("endpoint {endpoint!r} serves {serving!r}, not {wanted!r}: the deployment was rolled back "
                   "(an alarm went off or the new fleet failed): {reason}")



class DeploymentSettings(Protocol):
    """What a SageMaker deployment reads from the settings: the ``deploy`` and ``model`` sections."""

    @property
    def deploy(self) -> DeploySettings: ...

    @property
    def model(self) -> ModelSettings: ...


class DeployError(RuntimeError):
    """A deployment or rollback refused or failed; the message says why."""


@dataclass
class DeployResult:
    endpoint: str
    version: str
    action: str  # create | update | rollback | dry-run
    config: str
    previous_config: str | None
    calls: list[Call] = field(default_factory=list)
    seconds: float = 0.0
    s3_uri: str = ""
    sha256: str = ""


class SageMakerDeployer:
    """``clients``: an object with ``s3``, ``sagemaker`` and ``autoscaling`` boto3 clients (tests inject
    moto- or Stubber-backed ones); built from the settings on first use otherwise."""

    def __init__(self, db: Database, clock: Clock, settings: DeploymentSettings, registry: Any, *, clients: Any = None,
                 clients_factory: Callable[[str], Any] | None = None, work_dir: Path | None = None) -> None:
        self.db, self.clock, self.settings, self.registry = db, clock, settings, registry
        self.d = settings.deploy
        self._clients = clients
        self._factory = clients_factory
        self.work_dir = work_dir

    @property
    def clients(self) -> Any:
        if self._clients is None:
            if self._factory is None:
                raise DeployError("no AWS clients: the composition root passes clients_factory")
            self._clients = self._factory(self.d.region or self.settings.model.aws_region)
        return self._clients

    def _call(self, c: Call, done: list[Call]) -> Any:
        client = {"s3": self.clients.s3, "sagemaker": self.clients.sagemaker,
                  "application-autoscaling": self.clients.autoscaling}[c.service]
        out = getattr(client, c.method)(**c.params)
        done.append(c)
        return out

    # -- who may -------------------------------------------------------------------------------
    def _check_role(self, actor: Actor, perm: Perm, what: str) -> str:
        with self.db.read() as s:
            user = UserRepository(s).by_username(normalize_username(actor.username))
        if user is not None and user.disabled:
            raise DeployError(MSG_DISABLED.format(username=actor.username, what=what))
        role = user.role if user is not None else actor.role
        if not allowed(role, perm):
            raise DeployError(MSG_ROLE.format(role=str(role).replace("_", " ") or "caller without a role", what=what))
        return role

    def _require(self) -> None:
        needed = [("ROLE_ARN", "role-arn", self.d.role_arn, "the SageMaker execution role"),
                  ("IMAGE_URI", "image-uri", self.d.image_uri, "the serving image in ECR"),
                  ("S3_BUCKET", "s3-bucket", self.d.s3_bucket, "where model.tar.gz goes")]
        for env, option, value, why in needed:
            if not value.strip():
                raise DeployError(MSG_SETTING.format(env=env, option=option, why=why))

    # -- the endpoint ----------------------------------------------------------------------------
    def _describe(self, done: list[Call]) -> dict[str, Any] | None:
        try:
            return dict(self._call(calls.describe_endpoint(self.d.endpoint_name), done))
        except Exception as exc:  # botocore ClientError: an absent endpoint is an answer, anything else is not
            failure = classify_sdk_error(exc)
            if failure.code == "ValidationException" and "Could not find" in failure.service_message:
                return None
            raise

    def _wait(self, config: str, done: list[Call]) -> None:
        endpoint = self.d.endpoint_name
        waiter = self.clients.sagemaker.get_waiter("endpoint_in_service")
        try:
            waiter.wait(EndpointName=endpoint, WaiterConfig={"Delay": self.d.waiter_delay_seconds,
                                                             "MaxAttempts": self.d.waiter_max_attempts})
        except Exception as exc:  # noqa: BLE001 - botocore WaiterError: failed or still updating
            raise DeployError(MSG_WAIT.format(endpoint=endpoint, reason=str(exc)[:300])) from None
        done.append(calls.wait_in_service(self.d, endpoint))
        now = self._describe(done) or {}
        if now.get("EndpointConfigName") != config:
            raise DeployError(MSG_ROLLED_BACK.format(endpoint=endpoint, serving=now.get("EndpointConfigName"),
                                                     wanted=config, reason=now.get("FailureReason", "no reason given")))

    def _history(self) -> list[tuple[str, dict[str, Any]]]:
        """Deployments and rollbacks of this endpoint that succeeded, newest first: (action, audit payload)."""
        f = AuditFilter(entity_type=ENTITY, entity_id=self.d.endpoint_name)
        with self.db.read() as s:
            return [(r.action, dict(r.payload or {})) for r in AuditRepository(s).search(f, limit=500)
                    if r.action in (DEPLOYED, ROLLED_BACK)]

    def _record(self, actor: Actor, role: str, action: str, payload: dict[str, Any],
                evidence: dict[str, Any] | None = None) -> None:
        at = self.clock.now()
        with self.db.transaction() as s:
            audit = AuditRepository(s)
            audit.append(actor=actor.username, role=role, action=action, entity_type=ENTITY,
                         entity_id=self.d.endpoint_name, payload=payload, at=at)
            if evidence is not None:
                ev = OpsRepository(s).add_evidence(command=current_command(), actor=actor.username, at=at, **evidence)
                audit.append(actor=actor.username, role=role, action="evidence_recorded", entity_type="ops_evidence",
                             entity_id=ev.id, payload={"kind": ev.kind, "ok": ev.ok, "summary": ev.summary}, at=at)

    # -- deploy ------------------------------------------------------------------------------------
    def deploy(self, ref: str, actor: Actor, *, dry_run: bool = False,
               progress: Callable[[str], None] | None = None) -> DeployResult:
        say = progress or (lambda _m: None)
        role = self._check_role(actor, Perm.MANAGE_MODELS, "deploy a model to SageMaker")
        ensure_not_halted(self.db)
        self._require()
        version = self.registry.resolve(ref)
        at = self.clock.now()
        d, endpoint = self.d, self.d.endpoint_name
        name = calls.resource_name(endpoint, version, at)
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            pkg = build_package(self.registry, version, Path(tmp) / "model.tar.gz")
            body = pkg.path.read_bytes()
        key = f"{d.s3_prefix.strip('/')}/{self.registry.name}/{version}/model.tar.gz".lstrip("/")
        s3_uri = f"s3://{d.s3_bucket}/{key}"
        upload = calls.put_artifact(d, key, body, version, pkg.sha256)
        model = calls.create_model(d, name, s3_uri, self.registry.name, version, pkg.sha256,
                                   verify_keys=self.registry.keys.public_text())
        config = calls.create_endpoint_config(d, name, name, version, pkg.sha256)
        scaling = [calls.register_scalable_target(d, endpoint), calls.put_scaling_policy(d, endpoint)]
        result = DeployResult(endpoint, version, "dry-run", name, None, s3_uri=s3_uri, sha256=pkg.sha256)
        if dry_run:
            result.calls = [upload, model, config, calls.describe_endpoint(endpoint),
                            calls.create_endpoint(endpoint, name, version, pkg.sha256),
                            calls.update_endpoint(d, endpoint, name, note="only if the endpoint exists"),
                            calls.wait_in_service(d, endpoint), *scaling]
            return result
        t0, done = time.perf_counter(), result.calls
        try:
            current = self._describe(done)
        except Exception as exc:  # nothing was changed: no audit row, a clear error
            raise _as_deploy_error(exc) from None
        if current is not None and not d.alarm_names:
            raise DeployError(MSG_NO_ALARMS)
        if current is not None and current.get("EndpointStatus") not in ("InService", "Failed"):
            raise DeployError(MSG_BUSY.format(endpoint=endpoint, status=current.get("EndpointStatus")))
        result.previous_config = current.get("EndpointConfigName") if current else None
        result.action = "update" if current else "create"
        payload = {"version": version, "model_name": name, "endpoint_config": name, "s3_uri": s3_uri,
                   "sha256": pkg.sha256, "bytes": pkg.size, "previous_config": result.previous_config,
                   "action": result.action, "region": d.region or self.settings.model.aws_region}
        try:
            for c in (upload, model, config):
                say(f"{c.operation} {c.params.get('ModelName') or c.params.get('EndpointConfigName') or s3_uri}")
                self._call(c, done)
            say(f"{'UpdateEndpoint (canary)' if current else 'CreateEndpoint'} {endpoint} -> {name}")
            self._call(calls.update_endpoint(d, endpoint, name) if current
                       else calls.create_endpoint(endpoint, name, version, pkg.sha256), done)
            say(f"waiting for {endpoint} to be InService (at most "
                f"{d.waiter_delay_seconds * d.waiter_max_attempts} s)")
            self._wait(name, done)
            for c in scaling:
                say(f"{c.operation} {c.params['ResourceId']}")
                self._call(c, done)
        except Exception as exc:
            result.seconds = time.perf_counter() - t0
            self._record(actor, role, FAILED, {**payload, "error": f"{type(exc).__name__}: {exc}"[:500],
                                               "calls": [c.operation for c in done],
                                               "seconds": round(result.seconds, 3)})
            raise _as_deploy_error(exc) from None
        result.seconds = time.perf_counter() - t0
        self._record(actor, role, DEPLOYED, {
            **payload, "calls": [c.operation for c in done], "seconds": round(result.seconds, 3),
            "canary": calls.deployment_config(d) if current else None,
            "autoscaling": {"min": d.min_capacity, "max": d.max_capacity, "target_cpu_percent": d.target_cpu_percent,
                            "target_value": calls.cpu_target_value(d)}})
        return result

    # -- rollback ------------------------------------------------------------------------------------
    def rollback(self, actor: Actor, *, to: str | None = None, dry_run: bool = False,
                 note: str | None = None) -> DeployResult:
        role = self._check_role(actor, Perm.ROLLBACK_MODELS, "roll back a SageMaker endpoint")
        d, endpoint = self.d, self.d.endpoint_name
        history = self._history()
        deployed = [h for action, h in history if action == DEPLOYED]
        done: list[Call] = []
        if dry_run:  # no AWS call: the configuration serving now is the one the trail recorded last
            last = history[0] if history else None
            current = (last[1].get("endpoint_config") if last[0] == DEPLOYED else last[1].get("to_config")) if last else None
        else:
            try:
                desc = self._describe(done)
            except Exception as exc:  # nothing was changed: no audit row, a clear error
                raise _as_deploy_error(exc) from None
            if desc is None:
                raise DeployError(MSG_NOT_SERVING.format(endpoint=endpoint))
            if desc.get("EndpointStatus") not in ("InService", "Failed"):
                raise DeployError(MSG_BUSY.format(endpoint=endpoint, status=desc.get("EndpointStatus")))
            current = desc.get("EndpointConfigName")
        target = to or next((h.get("previous_config") for h in deployed if h.get("endpoint_config") == current), None)
        if not target:
            raise DeployError(MSG_NO_PREVIOUS.format(endpoint=endpoint, config=current))
        if target == current:
            raise DeployError(MSG_SAME.format(endpoint=endpoint, config=target))
        if not d.alarm_names:
            raise DeployError(MSG_NO_ALARMS)
        version = next((h.get("version") for h in deployed if h.get("endpoint_config") == target), None) or "unknown"
        result = DeployResult(endpoint, str(version), "rollback", target, current)
        steps = [calls.describe_endpoint_config(target), calls.update_endpoint(d, endpoint, target),
                 calls.wait_in_service(d, endpoint)]
        if dry_run:
            result.calls = [calls.describe_endpoint(endpoint), *steps]
            return result
        t0 = time.perf_counter()
        payload = {"from_config": current, "to_config": target, "version": version,
                   "requested": to or "previous configuration", **({"note": note[:500]} if note else {})}
        try:
            self._call(steps[0], done)  # the configuration is still there
            self._call(steps[1], done)
            self._wait(target, done)
        except Exception as exc:
            result.seconds = time.perf_counter() - t0
            self._record(actor, role, FAILED, {**payload, "action": "rollback", "calls": [c.operation for c in done],
                                               "error": f"{type(exc).__name__}: {exc}"[:500]},
                         evidence={"kind": "rollback_test", "ok": False, "payload": {**payload, "target": "sagemaker"},
                                   "summary": f"SageMaker rollback of {endpoint} to {target} failed"})
            raise _as_deploy_error(exc) from None
        result.seconds = time.perf_counter() - t0
        result.calls = done
        seconds = round(result.seconds, 3)
        self._record(actor, role, ROLLED_BACK, {**payload, "calls": [c.operation for c in done], "seconds": seconds},
                     evidence={"kind": "rollback_test", "ok": True,
                               "payload": {**payload, "target": "sagemaker", "endpoint": endpoint, "seconds": seconds},
                               "summary": f"SageMaker endpoint {endpoint} rolled back to {target} ({version}) "
                                          f"in {seconds} s"})
        return result


def _as_deploy_error(exc: Exception) -> DeployError:
    return exc if isinstance(exc, DeployError) else DeployError(f"{type(exc).__name__}: {exc}"[:500])
