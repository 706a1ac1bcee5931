"""Model version artifacts: file names, integrity checks, calibration and the loaded model.

Every file of a version folder has its SHA-256 in ``checksums.json``; ``read_verified`` reads a
file's bytes once and checks them before anything parses them (no window between check and use).
Compiled models are rebuilt from ``.npz`` arrays with ``allow_pickle=False``; only
``LoadedModel.reference()`` unpickles (the fitted scikit-learn pipelines), after verification.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.model.compiled import from_arrays
from backend.model.encoder import FeatureEncoder

PD_FLOOR = 1e-4  # calibrated PDs are kept within [PD_FLOOR, 1 - PD_FLOOR]
MANIFEST, PRIMARY, FALLBACK = "manifest.json", "primary.npz", "fallback.npz"
REFERENCE, HOLDOUT, CHECKSUMS = "reference.joblib", "holdout.parquet", "checksums.json"
ARTIFACTS = (MANIFEST, PRIMARY, FALLBACK, REFERENCE, HOLDOUT)

MSG_TAMPERED = "artifact {file} of {name}/{version} failed its SHA-256 check; refusing to use it"
MSG_MISSING_FILE = "artifact {file} of {name}/{version} is missing"
MSG_UNLISTED = "artifact {file} of {name}/{version} has no recorded checksum"
MSG_NO_CHECKSUMS = "checksums.json of {name}/{version} is missing or unreadable; refusing to load"
MSG_CORRUPT = "artifact {file} of {name}/{version} is corrupt: {reason}"


class RegistryError(Exception):
    """A registry operation cannot be done; the message says why."""


class ArtifactIntegrityError(RegistryError):
    """An artifact is missing, tampered with, truncated or unreadable; ``file`` names it."""

    def __init__(self, message: str, file: str) -> None:
        super().__init__(message)
        self.file = file


def apply_calibration(spec: Mapping[str, Any], p: Any) -> Any:
    """Raw ensemble score(s) -> calibrated probability of default (same shape as ``p``)."""
    if isinstance(p, float) and spec["method"] == "platt":  # scalar fast path (single application)
        rs = min(max(p, PD_FLOOR), 1 - PD_FLOOR)
        z = spec["a"] * math.log(rs / (1 - rs)) + spec["b"]
        out_ = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        return min(max(out_, PD_FLOOR), 1 - PD_FLOOR)
    raw = np.asarray(p, dtype=np.float64)
    if spec["method"] == "isotonic":
        out = np.interp(raw, np.asarray(spec["x"], dtype=float), np.asarray(spec["y"], dtype=float))
    elif spec["method"] == "platt":
        r = np.clip(raw, PD_FLOOR, 1 - PD_FLOOR)
        out = 1.0 / (1.0 + np.exp(-(spec["a"] * np.log(r / (1 - r)) + spec["b"])))
    elif spec["method"] == "none":
        out = raw
    else:
        raise ValueError(f"unknown calibration method {spec['method']!r}")
    out = np.clip(out, PD_FLOOR, 1 - PD_FLOOR)
    return float(out) if out.ndim == 0 else out


def code_version() -> str:
    """``git describe`` of the source tree when available, else the installed package version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("creditrisk")
    except PackageNotFoundError:
        pkg = "0+unknown"
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],  # noqa: S607
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if out.returncode == 0 and out.stdout.strip():
            return f"{pkg}+{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return pkg


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def json_bytes(obj: Any) -> bytes:
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(f"not JSON-serialisable: {type(o).__name__}")

    return json.dumps(obj, indent=2, allow_nan=False, default=default).encode()


@dataclass
class LoadedModel:
    """A verified model version ready to score; nothing here was unpickled."""

    name: str
    version: str
    path: Path
    manifest: dict[str, Any]
    checksums: dict[str, str]
    encoder: FeatureEncoder
    primary: Any  # compiled StumpEnsemble, None if its artifact failed (allow_partial)
    fallback: Any  # compiled ForestEnsemble, None if its artifact failed (allow_partial)
    integrity_errors: dict[str, str] = field(default_factory=dict)
    _reference: dict[str, Any] | None = None

    @property
    def features(self) -> list[str]:
        return list(self.encoder.columns_)

    @property
    def ready(self) -> bool:
        return self.primary is not None or self.fallback is not None

    def calibrate(self, p: Any, *, model: str = "primary") -> Any:
        """Raw score of ``model`` (primary or fallback) -> calibrated probability of default."""
        return apply_calibration(self.manifest["calibration"][model], p)

    def _verified_bytes(self, file: str) -> bytes:
        return read_verified(self.path, file, self.checksums, self.name, self.version)

    def reference(self) -> dict[str, Any]:
        """The fitted scikit-learn pipelines (``primary``, ``fallback``, ``baseline``), unpickled
        lazily after re-verifying the file's checksum."""
        if self._reference is None:
            import joblib

            data = self._verified_bytes(REFERENCE)
            self._reference = joblib.load(io.BytesIO(data))
        return self._reference

    def holdout(self) -> pd.DataFrame:
        """The held-out rows stored with this version (checksum verified)."""
        return pd.read_parquet(io.BytesIO(self._verified_bytes(HOLDOUT)))

    def predict_raw(self, frame: pd.DataFrame, *, model: str = "primary") -> np.ndarray:
        """Raw probabilities of ``model`` for a DataFrame of raw features (compiled engine)."""
        compiled = self.primary if model == "primary" else self.fallback
        if compiled is None:
            raise RegistryError(f"{model} model of {self.name}/{self.version} is unavailable")
        return compiled.predict_proba(self.encoder.transform(frame))


def read_verified(folder: Path, file: str, checksums: Mapping[str, str], name: str, version: str) -> bytes:
    if file not in checksums:
        raise ArtifactIntegrityError(MSG_UNLISTED.format(file=file, name=name, version=version), file)
    try:
        data = (folder / file).read_bytes()
    except FileNotFoundError:
        raise ArtifactIntegrityError(
            MSG_MISSING_FILE.format(file=file, name=name, version=version), file
        ) from None
    if sha256_bytes(data) != checksums[file]:
        raise ArtifactIntegrityError(MSG_TAMPERED.format(file=file, name=name, version=version), file)
    return data


def load_compiled(data: bytes, file: str, name: str, version: str) -> Any:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return from_arrays({k: npz[k] for k in npz.files})
    except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt artifact
        raise ArtifactIntegrityError(
            MSG_CORRUPT.format(file=file, name=name, version=version, reason=f"{type(exc).__name__}: {exc}"),
            file,
        ) from None


def holdout_for_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """Mixed-type object columns become strings (missing stays missing) so Parquet accepts them."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            vals = out[col]
            types = {type(v) for v in vals.dropna()}
            if len(types) > 1:
                out[col] = vals.where(vals.isna(), vals.astype(str))
    return out


def read_checksums(folder: Path, name: str, version: str) -> dict[str, str]:
    """The recorded ``{file: sha256}`` of a version folder."""
    try:
        doc = json.loads((folder / CHECKSUMS).read_text())
        if not isinstance(doc, dict):
            raise ValueError("not a mapping")
        return {str(k): str(v) for k, v in doc.items()}
    except (OSError, ValueError):
        raise ArtifactIntegrityError(MSG_NO_CHECKSUMS.format(name=name, version=version), CHECKSUMS) from None


def load_version(
    folder: Path, name: str, version: str, *, status: str, allow_partial: bool = False
) -> LoadedModel:
    """Verify every checksum, then build the runtime model from JSON and ``.npz`` arrays only.

    With ``allow_partial`` a bad ``primary.npz`` or ``fallback.npz`` leaves that model ``None``
    (listed in ``integrity_errors``) instead of failing, so a service can serve the other one or
    report "not ready"; a bad manifest, or no usable model at all, always raises.
    """
    sums = read_checksums(folder, name, version)
    errors: dict[str, str] = {}
    blobs: dict[str, bytes] = {}
    for file in ARTIFACTS:  # every checksum first, before parsing anything
        try:
            blobs[file] = read_verified(folder, file, sums, name, version)
        except ArtifactIntegrityError as exc:
            if not allow_partial or file == MANIFEST:
                raise
            errors[file] = str(exc)
    manifest = json.loads(blobs[MANIFEST])
    manifest["status"] = status
    models: dict[str, Any] = {PRIMARY: None, FALLBACK: None}
    for file in (PRIMARY, FALLBACK):
        if file in blobs:
            try:
                models[file] = load_compiled(blobs[file], file, name, version)
            except ArtifactIntegrityError as exc:
                if not allow_partial:
                    raise
                errors[file] = str(exc)
    if models[PRIMARY] is None and models[FALLBACK] is None:
        raise ArtifactIntegrityError(
            f"{name}/{version} has no usable model: {'; '.join(errors.values())}", PRIMARY
        )
    return LoadedModel(
        name=name,
        version=version,
        path=folder,
        manifest=manifest,
        checksums=sums,
        encoder=FeatureEncoder.from_dict(manifest["encoder"]),
        primary=models[PRIMARY],
        fallback=models[FALLBACK],
        integrity_errors=errors,
    )
