"""MLflow as the model registry (``CREDITRISK_MODEL__REGISTRY_URL=mlflow+http://host:port``).

The same registry as :class:`backend.models.registry.Registry` (the console, the CLI and the services use one
port: ``ModelProvider.registry()``), with MLflow as the place of record:

- **each training run is an MLflow run** in the experiment ``creditrisk/<name>``: the training parameters and
  data facts as params, the held-out summary metrics as metrics, and as artifacts the signed version folder
  (``model/``: manifest, compiled models, reference pipelines, holdout, ``checksums.json``, ``signature.json``),
  ``reports/evaluation.json``, ``reports/fairness.json`` and ``reports/gates.json``;
- **each version is an MLflow model version** of the registered model ``<name>``, tagged ``creditrisk.version``
  (our version id), ``creditrisk.state`` (candidate/challenger/canary/champion/retired/rolled back for cause,
  :mod:`backend.models.states`), ``creditrisk.cause`` (the reason of a rollback for cause) and
  ``creditrisk.gates_passed``; the registered model's aliases ``champion``, ``challenger`` and ``canary`` point
  at the versions holding them;
- **the lifecycle document** (what ``aliases.json`` holds for the local registry: history, events, causes,
  overrides, the running canary) is the artifact ``lifecycle/aliases.json`` of one run tagged
  ``creditrisk.kind=lifecycle`` (named by the registered model's tag ``creditrisk.lifecycle_run``); every change
  rewrites it, then brings the aliases and tags above in line with it.

A version fetched from MLflow lands in a local cache (``<registry_dir>/mlflow-cache/<name>/<version>/``) only
after its signature and every checksum verified (:mod:`backend.models.signing`): a version altered in MLflow's
artifact store is refused, naming the file, and never cached; what loads is read from the cache and verified
again, as for the local registry. The cache also mirrors the lifecycle document so that the serving path's
change detection (``aliases.json`` stamps) works unchanged.

Limits: changes are serialised by a file lock on this host only (MLflow has no compare-and-swap); aliases or
tags moved by hand in MLflow's UI are overwritten by the next lifecycle action, the document being the record.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from backend.models import states
from backend.models.aliases_file import sign_aliases
from backend.models.artifacts import (
    ARTIFACTS,
    ArtifactIntegrityError,
    RegistryError,
    json_bytes,
    read_checksums,
    read_verified,
    write_atomic,
)
from backend.models.registry import ALIASES as ALIASES_FILE
from backend.models.registry import Registry
from backend.models.signing import ModelKeys

TAG_VERSION, TAG_STATE, TAG_CAUSE = "creditrisk.version", "creditrisk.state", "creditrisk.cause"
TAG_GATES, TAG_KIND, TAG_LIFECYCLE_RUN = "creditrisk.gates_passed", "creditrisk.kind", "creditrisk.lifecycle_run"
LIFECYCLE_DIR, LIFECYCLE_FILE, MODEL_DIR = "lifecycle", "lifecycle/aliases.json", "model"
MLFLOW_ALIASES = ("champion", "challenger", "canary")
MAX_PARAMS, MAX_PARAM_CHARS = 100, 6000
CACHE_DIR = "mlflow-cache"

MSG_NO_CLIENT = ("CREDITRISK_MODEL__REGISTRY_URL={url} needs the MLflow client: "
                 "pip install 'mlflow-skinny==3.18.0' (pinned in requirements-dev.txt)")
MSG_DOWN = ("the MLflow registry at {uri} is unreachable ({reason}); check CREDITRISK_MODEL__REGISTRY_URL "
            "and that the MLflow server runs")
MSG_REFUSED = "the MLflow registry at {uri} refused to {what}: {reason}"
MSG_NOT_IN_MLFLOW = "version {version} is not a model version of {name} in the MLflow registry at {uri}"


def tracking_uri(url: str) -> str:
    """``mlflow+http://host:port`` -> ``http://host:port`` (what MLflow's client is given)."""
    return url.strip().removeprefix("mlflow+").rstrip("/")


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", text)[:250]


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


class MlflowRegistry(Registry):
    """The registry kept in an MLflow tracking server (see the module docstring)."""

    remote = True

    def __init__(self, url: str, cache_root: str | Path, name: str = "creditrisk", *, keys: ModelKeys | None = None,
                 timeout: float = 10.0, client: Any = None) -> None:
        super().__init__(cache_root, name=name, keys=keys)
        self.url, self.uri, self.timeout = url, tracking_uri(url), timeout
        self._client_obj = client
        self._lifecycle_run: str | None = None
        self._mv: dict[str, Any] | None = None

    # ------------------------------------------------------------------ MLflow calls
    @property
    def client(self) -> Any:
        if self._client_obj is None:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # a dead server: one clear error, soon
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(self.timeout))))
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stdout stays the CLI's (--json)
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            try:
                from mlflow import MlflowClient
            except ImportError:
                raise RegistryError(MSG_NO_CLIENT.format(url=self.url)) from None
            self._ping()
            self._client_obj = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client_obj

    def _ping(self) -> None:
        import httpx

        try:
            r = httpx.get(f"{self.uri}/health", timeout=min(self.timeout, 5.0))
        except httpx.HTTPError as exc:
            raise RegistryError(MSG_DOWN.format(uri=self.uri, reason=type(exc).__name__)) from None
        if r.status_code != 200:
            raise RegistryError(MSG_DOWN.format(uri=self.uri, reason=f"/health answered HTTP {r.status_code}"))

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with MLflow's and the network's errors as one :class:`RegistryError`."""
        self.client  # noqa: B018 - see _registered_model
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except (MlflowException, OSError) as exc:
            self._ping()  # raises "unreachable" when the server went away
            reason = str(getattr(exc, "message", None) or exc).splitlines()[0][:300]
            raise RegistryError(MSG_REFUSED.format(uri=self.uri, what=what, reason=reason)) from None

    def _experiment(self) -> str:
        name = f"creditrisk/{self.name}"
        exp = self._call("read an experiment", self.client.get_experiment_by_name, name)
        if exp is not None:
            return str(exp.experiment_id)
        return str(self._call("create an experiment", self.client.create_experiment, name))

    def _registered_model(self) -> Any:
        self.client  # noqa: B018 - the client first: a missing package or a dead server is one clear line
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                return self._call("read the registered model", self.client.get_registered_model, self.name)
        try:
            return self.client.create_registered_model(
                self.name, description="creditrisk models (lifecycle: tags creditrisk.*, aliases champion/"
                "challenger/canary)")
        except MlflowException:  # created meanwhile by another process
            return self._call("read the registered model", self.client.get_registered_model, self.name)

    def _lifecycle(self) -> str:
        """The run holding the lifecycle document (made on first use)."""
        if self._lifecycle_run is None:
            rm = self._registered_model()
            run_id = (rm.tags or {}).get(TAG_LIFECYCLE_RUN)
            if not run_id:
                run = self._call("create the lifecycle run", self.client.create_run, self._experiment(),
                                 run_name=f"{self.name} lifecycle", tags={TAG_KIND: "lifecycle"})
                run_id = run.info.run_id
                self._call("end the lifecycle run", self.client.set_terminated, run_id)
                self._call("tag the registered model", self.client.set_registered_model_tag, self.name,
                           TAG_LIFECYCLE_RUN, run_id)
            self._lifecycle_run = str(run_id)
        return self._lifecycle_run

    def model_versions(self, *, refresh: bool = False) -> dict[str, Any]:
        """Our version id -> MLflow ``ModelVersion`` (versions without a ``creditrisk.version`` tag are not ours)."""
        if self._mv is None or refresh:
            self._registered_model()
            name = self.name.replace("'", "")
            found = self._call("list model versions", self.client.search_model_versions, f"name='{name}'")
            self._mv = {mv.tags[TAG_VERSION]: mv for mv in found if (mv.tags or {}).get(TAG_VERSION)}
        return self._mv

    # ------------------------------------------------------------------ the registry port
    def versions(self) -> list[str]:
        """Read from MLflow once per registry object (the services make one per action), then on a miss."""
        return sorted(self.model_versions())

    def resolve(self, ref: str = "champion") -> str:
        try:
            version = super().resolve(ref)
        except RegistryError:  # registered since this object listed the versions?
            self._mv = None
            version = super().resolve(ref)
        self._fetch(version)
        return version

    def _aliases_bytes(self) -> bytes:
        run_id = self._lifecycle()
        listed = self._call("list the lifecycle document", self.client.list_artifacts, run_id, LIFECYCLE_DIR)
        if not any(f.path == LIFECYCLE_FILE for f in listed):
            raise FileNotFoundError(LIFECYCLE_FILE)
        with tempfile.TemporaryDirectory() as tmp:
            local = self._call("read the lifecycle document", self.client.download_artifacts, run_id,
                               LIFECYCLE_FILE, tmp)
            data = Path(local).read_bytes()
        self._mirror(data)
        return data

    def _mirror(self, data: bytes) -> None:
        path = self.path / ALIASES_FILE
        try:
            same = path.read_bytes() == data
        except OSError:
            same = False
        if not same:
            self.path.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)

    def _save_aliases(self, doc: dict[str, Any]) -> None:
        data = json_bytes(sign_aliases(self.keys, self.name, doc))  # signed like the folder's aliases.json
        self._call("write the lifecycle document", self.client.log_text, self._lifecycle(), data.decode(),
                   LIFECYCLE_FILE)
        self._mirror(data)
        self._sync(doc)

    def _sync(self, doc: Mapping[str, Any]) -> None:
        """MLflow's aliases and version tags brought in line with the lifecycle document."""
        c = self.client
        mvs = self.model_versions(refresh=True)
        for version, mv in mvs.items():
            caused = states.cause(doc, version)
            want = {TAG_STATE: states.state(doc, version), TAG_CAUSE: str(caused.get("reason")) if caused else None}
            for key, value in want.items():
                have = (mv.tags or {}).get(key)
                if value is not None and have != value:
                    self._call("tag a model version", c.set_model_version_tag, self.name, mv.version, key, value)
                elif value is None and have is not None:
                    self._call("untag a model version", c.delete_model_version_tag, self.name, mv.version, key)
        current = dict(getattr(self._registered_model(), "aliases", None) or {})
        for alias in MLFLOW_ALIASES:
            target = (doc.get("canary") or {}).get("version") if alias == "canary" else doc.get(alias)
            number = str(mvs[target].version) if target in mvs else None
            if number and str(current.get(alias)) != number:
                self._call(f"set the alias {alias}", c.set_registered_model_alias, self.name, alias, number)
            elif number is None and alias in current:
                self._call(f"remove the alias {alias}", c.delete_registered_model_alias, self.name, alias)

    def _store_version(self, version: str, manifest: dict[str, Any], result: Any) -> None:
        """The signed folder into the cache, then an MLflow run (params, metrics, reports, the folder) and a
        model version; the lifecycle document changes only after both exist."""
        super()._store_version(version, manifest, result)
        folder = self.path / version
        try:
            run_id = self._log_run(version, manifest, folder)
            self._registered_model()
            tags = {TAG_VERSION: version, TAG_GATES: str(bool(manifest.get("gates_passed"))).lower(),
                    TAG_STATE: states.CHALLENGER}
            run = self._call("read the training run", self.client.get_run, run_id)
            self._call("register a model version", self.client.create_model_version, self.name,
                       f"{run.info.artifact_uri}/{MODEL_DIR}", run_id=run_id, tags=tags,
                       description=f"{version}: {manifest.get('data', {}).get('source') or 'training data'}")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._mv = None

    def _log_run(self, version: str, manifest: Mapping[str, Any], folder: Path) -> str:
        c = self.client
        from mlflow.entities import Metric, Param

        run = self._call("create a training run", c.create_run, self._experiment(), run_name=version,
                         tags={TAG_VERSION: version, TAG_KIND: "training"})
        run_id = run.info.run_id
        try:
            data = {k: v for k, v in (manifest.get("data") or {}).items() if not isinstance(v, list | dict)}
            flat = _flat({"training": manifest.get("training") or {}, "data": data,
                          "target": manifest.get("target"), "code_version": manifest.get("code_version"),
                          "features": len(manifest.get("features") or [])})
            params = [Param(_key(k), str(v)[:MAX_PARAM_CHARS]) for k, v in sorted(flat.items())][:MAX_PARAMS]
            now = int(time.time() * 1000)
            metrics = [Metric(_key(k), float(v), now, 0) for k, v in _flat(manifest.get("metrics") or {}).items()
                       if isinstance(v, int | float) and not isinstance(v, bool)]
            metrics.append(Metric("gates_passed", float(bool(manifest.get("gates_passed"))), now, 0))
            self._call("log parameters and metrics", c.log_batch, run_id, metrics=metrics, params=params)
            evaluation = manifest.get("evaluation") or {}
            fairness = {role: (ev or {}).get("fairness", {}) for role, ev in (evaluation.get("test") or {}).items()
                        if isinstance(ev, Mapping)}
            for doc, file in ((evaluation, "reports/evaluation.json"), (fairness, "reports/fairness.json"),
                              ({"passed": manifest.get("gates_passed"), "gates": manifest.get("gates")},
                               "reports/gates.json")):
                self._call("log a report", c.log_text, run_id, json_bytes(doc).decode(), file)
            self._call("log the signed artifacts", c.log_artifacts, run_id, str(folder), MODEL_DIR)
        except BaseException:
            self._call("end the failed run", c.set_terminated, run_id, "FAILED")
            raise
        self._call("end the training run", c.set_terminated, run_id)
        return str(run_id)

    def _fetch(self, version: str) -> None:
        """Download ``version`` into the cache unless it is there; refused (and not cached) unless its signature
        and every checksum verify."""
        if (self.path / version).is_dir():
            return
        mv = self.model_versions().get(version) or self.model_versions(refresh=True).get(version)
        if mv is None:
            raise RegistryError(MSG_NOT_IN_MLFLOW.format(version=version, name=self.name, uri=self.uri))
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{version}-", dir=self.path))
        try:
            self._call("download a version", self.client.download_artifacts, mv.run_id, MODEL_DIR, str(tmp))
            folder = tmp / MODEL_DIR
            sums = read_checksums(folder, self.name, version, self.keys)  # the signature first
            for file in ARTIFACTS:
                read_verified(folder, file, sums, self.name, version)
            try:
                os.replace(folder, self.path / version)
            except OSError:  # fetched meanwhile by another process
                if not (self.path / version).is_dir():
                    raise
        except ArtifactIntegrityError as exc:
            raise ArtifactIntegrityError(f"{exc} (fetched from the MLflow registry at {self.uri})", exc.file) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def open_mlflow_registry(url: str, registry_dir: str | Path, name: str, *, keys: ModelKeys | None = None,
                         timeout: float = 10.0) -> MlflowRegistry:
    """The MLflow registry at ``url`` with its verified cache under ``registry_dir/mlflow-cache``."""
    return MlflowRegistry(url, Path(registry_dir) / CACHE_DIR, name, keys=keys, timeout=timeout)
