"""Serving models: resolve ``champion``/``challenger``/a version in the registry, load it once
(checksums verified by the registry), and hand the scoring service a small, typed view of it.

An alias change (promotion, rollback) is seen on the next call: aliases are re-read when the
aliases file changes, and cache keys carry the version so entries of another version are never
served for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.domain import Policy, PolicySettings
from backend.models.artifacts import RegistryError
from backend.models.config import ModelSettings
from backend.models.reasons import ReasonMapper
from backend.models.signing import ModelKeys

log = logging.getLogger(__name__)
NO_MODEL = "no {ref} model in the registry at {root}: run `creditrisk train` (and `creditrisk models promote`)"


class ModelUnavailable(RuntimeError):
    """No usable model: nothing registered, or the artifact failed its integrity check."""


@dataclass
class ServingModel:
    name: str
    version: str
    columns: list[str]
    kinds: dict[str, str]
    categories: dict[str, list[str]]
    encoder: Any
    primary: Any
    fallback: Any
    calibrate: Callable[..., np.ndarray]  # calibrate(raw, model="primary"|"fallback")
    policy: Policy
    manifest: Mapping[str, Any]
    reasons: ReasonMapper
    _loaded: Any = None

    @property
    def integrity_errors(self) -> dict[str, str]:
        return dict(getattr(self._loaded, "integrity_errors", {}) or {})

    def reference_proba(self, rows: Sequence[Mapping[str, Any]], *, role: str = "primary") -> np.ndarray:
        """scikit-learn's own predict_proba (unpickles the reference pipelines on first use)."""
        pipelines = self._loaded.reference()
        pipe = pipelines[role] if isinstance(pipelines, Mapping) else pipelines[0 if role == "primary" else 1]
        return np.asarray(pipe.predict_proba(pd.DataFrame(list(rows)))[:, 1], dtype=np.float64)

    def reference_frame_proba(self, frame: pd.DataFrame, *, role: str = "primary") -> np.ndarray:
        """:meth:`reference_proba` of a whole frame of validated features (batch files: no dict per row)."""
        pipelines = self._loaded.reference()
        pipe = pipelines[role] if isinstance(pipelines, Mapping) else pipelines[0 if role == "primary" else 1]
        return np.asarray(pipe.predict_proba(frame)[:, 1], dtype=np.float64)


class ModelProvider:
    def __init__(self, settings: ModelSettings, policy: PolicySettings, *, server: Any = None,
                 keys: ModelKeys | None = None, registry_factory: Callable[[ModelKeys], Any] | None = None) -> None:
        """``server``: the remote model server when ``settings.server`` is ``sagemaker`` (the composition root
        passes the configured :class:`~backend.models.adapters.sagemaker_runtime.SageMakerModelServer`; tests
        pass theirs). ``keys``: the model signing keys (:func:`backend.models.signing.model_keys`; default: from
        the environment). ``registry_factory``: builds the registry from the keys (the composition root passes the
        MLflow one when ``registry_url`` is set); default: the folder ``registry_dir``."""
        self.keys = keys
        self._registry_factory = registry_factory
        self._read_at = 0.0
        self.settings = settings
        self.policy_settings = policy
        self._lock = threading.Lock()
        self._by_version: dict[str, ServingModel] = {}
        self._aliases: tuple[float, dict[str, str]] | None = None
        self._server = server

    def model_server(self) -> Any:
        """The SageMaker model server when ``settings.server`` is ``sagemaker``, else None (local model)."""
        if self.settings.server != "sagemaker":
            return None
        if self._server is None:
            raise ModelUnavailable("CREDITRISK_MODEL__SERVER=sagemaker, but no SageMaker model server was given "
                                   "(build the services with backend.container.build_services)")
        return self._server

    def registry(self) -> Any:
        from backend.models.registry import Registry

        if self.keys is None:
            from backend.models.signing import keys_from_environment

            self.keys = keys_from_environment()
        if self._registry_factory is not None:
            return self._registry_factory(self.keys)
        return Registry(self.settings.registry_dir, name=self.settings.name, keys=self.keys)

    @property
    def remote(self) -> bool:
        return self._registry_factory is not None

    def aliases_file(self) -> Path:
        """The lifecycle document on this host (a remote registry's local mirror, kept by its reads)."""
        if self.remote:
            from backend.models.adapters.mlflow_registry import CACHE_DIR

            return Path(self.settings.registry_dir) / CACHE_DIR / self.settings.name / "aliases.json"
        return Path(self.settings.registry_dir) / self.settings.name / "aliases.json"

    def resolve(self, ref: str) -> str:
        if ref not in ("champion", "challenger"):
            return ref
        path = self.aliases_file()
        mtime = path.stat().st_mtime_ns if path.exists() else -1.0
        stale = self.remote and time.monotonic() - self._read_at >= self.settings.registry_refresh_seconds
        if self._aliases is None or self._aliases[0] != mtime or stale:
            self._read_at = time.monotonic()
            try:
                doc = self.registry().aliases()
            except RegistryError as exc:
                if not (self.remote and self._aliases is not None):
                    raise ModelUnavailable(str(exc)) from None
                # MLflow unreachable: keep serving the champion/challenger last read (their verified copies are
                # cached); lifecycle actions still fail with the error until it answers again
                log.warning("model registry unreachable, serving the last lifecycle read: %s", exc)
                doc = self._aliases[1]
            if self.remote:  # the read refreshed the local mirror
                mtime = path.stat().st_mtime_ns if path.exists() else -1.0
            self._aliases = (mtime, doc)
        version = self._aliases[1].get(ref)
        if not version:
            raise ModelUnavailable(NO_MODEL.format(ref=ref, root=self.settings.registry_dir))
        return version

    def get(self, ref: str = "champion") -> ServingModel:
        version = self.resolve(ref)
        with self._lock:
            cached = self._by_version.get(version)
            if cached is not None:
                return cached
            try:
                loaded = self.registry().load(version, allow_partial=True)
            except Exception as exc:
                raise ModelUnavailable(f"model {version} cannot be served: {exc}") from exc
            if not loaded.ready:
                raise ModelUnavailable(f"model {version} cannot be served: "
                                       + "; ".join(loaded.integrity_errors.values()))
            model = self._serving(loaded)
            self._by_version[version] = model
            return model

    def invalidate(self) -> None:
        with self._lock:
            self._by_version.clear()
            self._aliases = None

    def _serving(self, loaded: Any) -> ServingModel:
        manifest = loaded.manifest
        enc = loaded.encoder
        spec = enc.to_dict()
        stored = manifest.get("policy") or {}
        p = self.policy_settings
        policy = Policy(score_cutoff=float(stored.get("score_cutoff", p.score_cutoff)),
                        confidence_threshold=p.confidence_threshold, loan_amount_cap=p.loan_amount_cap,
                        disagreement_threshold=p.disagreement_threshold)
        model = ServingModel(
            name=manifest.get("name", self.settings.name), version=manifest["version"],
            columns=list(spec["columns"]), kinds=dict(spec["kinds"]),
            categories={k: list(v) for k, v in spec.get("categories", {}).items()},
            encoder=enc, primary=loaded.primary, fallback=loaded.fallback, calibrate=loaded.calibrate,
            policy=policy, manifest=manifest, reasons=ReasonMapper(spec["columns"], (manifest.get("data") or {}).get("reason_codes"),
                                 protected=manifest.get("protected") or (), floor=p.reason_floor),
            _loaded=loaded)
        server = self.model_server()
        if server is None:
            return model
        from backend.models.adapters.sagemaker_remote import (
            remote_model,  # the primary answers from SageMaker
        )

        return remote_model(model, server)
