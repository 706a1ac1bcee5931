"""Serving models: resolve ``champion``/``challenger``/a version in the registry, load it once
(checksums verified by the registry), and hand the scoring service a small, typed view of it.

An alias change (promotion, rollback) is seen on the next call: aliases are re-read when the
aliases file changes, and cache keys carry the version so entries of another version are never
served for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.config import ModelSettings, PolicySettings
from backend.model.policy import Policy
from backend.model.reasons import ReasonMapper

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


class ModelProvider:
    def __init__(self, settings: ModelSettings, policy: PolicySettings, *, server: Any = None) -> None:
        """``server``: the remote model server to use when ``settings.server`` is ``sagemaker`` (tests
        inject one; otherwise a :class:`~backend.adapters.model_sagemaker.SageMakerModelServer` is built
        from the settings on first use)."""
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
            from backend.adapters.model_sagemaker import SageMakerModelServer

            self._server = SageMakerModelServer.from_settings(self.settings)
        return self._server

    def registry(self) -> Any:
        from backend.model.registry import Registry

        return Registry(self.settings.registry_dir, name=self.settings.name)

    def _aliases_file(self) -> Path:
        return Path(self.settings.registry_dir) / self.settings.name / "aliases.json"

    def resolve(self, ref: str) -> str:
        if ref not in ("champion", "challenger"):
            return ref
        path = self._aliases_file()
        mtime = path.stat().st_mtime_ns if path.exists() else -1.0
        if self._aliases is None or self._aliases[0] != mtime:
            self._aliases = (mtime, self.registry().aliases())
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
            policy=policy, manifest=manifest, reasons=ReasonMapper(spec["columns"]), _loaded=loaded)
        server = self.model_server()
        if server is None:
            return model
        from backend.adapters.model_sagemaker_remote import remote_model  # the primary answers from SageMaker

        return remote_model(model, server)
