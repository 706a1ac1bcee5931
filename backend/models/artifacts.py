"""Model version artifacts: file names, integrity checks, calibration and the loaded model.

Every file of a version folder has its SHA-256 in ``checksums.json``, and ``signature.json`` holds an
Ed25519 signature over the version's name, id and ``checksums.json`` (:mod:`backend.models.signing`).
:func:`read_checksums` verifies the signature before it parses the checksums; ``read_verified`` reads a
file's bytes once and checks them against those signed checksums before anything parses them (no window
between check and use). Compiled models are rebuilt from ``.npz`` arrays with ``allow_pickle=False``;
only ``LoadedModel.reference()`` unpickles (the fitted scikit-learn pipelines), after both checks.
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

from backend.models.compiled import from_arrays
from backend.models.encoder import FeatureEncoder
from backend.models.signing import SIGNATURE, ModelKeys, SignatureError

PD_FLOOR = 1e-4  # calibrated PDs are kept within [PD_FLOOR, 1 - PD_FLOOR]
MANIFEST, PRIMARY, FALLBACK = "manifest.json", "primary.npz", "fallback.npz"
REFERENCE, HOLDOUT, CHECKSUMS = "reference.joblib", "holdout.parquet", "checksums.json"
ARTIFACTS = (MANIFEST, PRIMARY, FALLBACK, REFERENCE, HOLDOUT)

MSG_TAMPERED = "artifact {file} of {name}/{version} failed its SHA-256 check; refusing to use it"
MSG_MISSING_FILE = "artifact {file} of {name}/{version} is missing"
MSG_UNLISTED = "artifact {file} of {name}/{version} has no recorded checksum"
MSG_NO_CHECKSUMS = "checksums.json of {name}/{version} is missing or unreadable; refusing to load"
MSG_CORRUPT = "artifact {file} of {name}/{version} is corrupt: {reason}"
MSG_UNREADABLE = "artifact {file} of {name}/{version} cannot be read: {reason}"


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


MAX_FILE_BYTES = 1 << 30  # no artifact comes near 1 GiB; a bigger "file" is garbage (or /dev/zero behind a link)


def read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes. A FIFO, a device, a directory (behind a symlink or not) or a file over ``limit``
    raises ``OSError`` without blocking or reading it: a registry folder is written by others."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once instead of waiting for a writer
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(f"{path.name} is not a regular file") if stat.S_ISDIR(st.st_mode) \
                else OSError(f"{path.name} is not a regular file")
        if st.st_size > limit:
            raise OSError(f"{path.name} is larger than {limit} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise OSError(f"{path.name} is larger than {limit} bytes")
        return data
    finally:
        os.close(fd)


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
        """The fitted scikit-learn pipelines (``primary``, ``fallback``, ``baseline``), unpickled lazily after
        re-verifying the file's checksum, through an allow-list (:mod:`backend.models.safe_pickle`)."""
        if self._reference is None:
            from backend.models.safe_pickle import UnsafePickle, restricted_load

            data = self._verified_bytes(REFERENCE)  # checksums.json was signature-verified at load
            try:
                self._reference = restricted_load(data)  # an allow-list of classes: a second wall
            except UnsafePickle as exc:
                raise ArtifactIntegrityError(MSG_CORRUPT.format(file=REFERENCE, name=self.name, version=self.version,
                                                                reason=str(exc)), REFERENCE) from None
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
        data = read_regular(folder / file)
    except FileNotFoundError:
        raise ArtifactIntegrityError(
            MSG_MISSING_FILE.format(file=file, name=name, version=version), file
        ) from None
    except OSError as exc:  # a directory where the file should be, no permission, ...
        raise ArtifactIntegrityError(MSG_UNREADABLE.format(file=file, name=name, version=version,
                                                           reason=type(exc).__name__), file) from None
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


def _read_optional(path: Path) -> bytes | None:
    try:
        return read_regular(path)
    except FileNotFoundError:
        return None


def read_checksums(folder: Path, name: str, version: str, keys: ModelKeys) -> dict[str, str]:
    """The recorded ``{file: sha256}`` of a version folder, after its signature verified with ``keys``."""
    try:
        raw = read_regular(folder / CHECKSUMS)
    except OSError:
        raise ArtifactIntegrityError(MSG_NO_CHECKSUMS.format(name=name, version=version), CHECKSUMS) from None
    try:
        keys.verify(name, version, raw, _read_optional(folder / SIGNATURE))
    except SignatureError as exc:
        raise ArtifactIntegrityError(str(exc), SIGNATURE) from None
    except OSError as exc:
        raise ArtifactIntegrityError(MSG_UNREADABLE.format(file=SIGNATURE, name=name, version=version,
                                                           reason=type(exc).__name__), SIGNATURE) from None
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("not a mapping")
        return {str(k): str(v) for k, v in doc.items()}
    except (ValueError, RecursionError):
        raise ArtifactIntegrityError(MSG_NO_CHECKSUMS.format(name=name, version=version), CHECKSUMS) from None


def parse_manifest(data: bytes, name: str, version: str) -> dict[str, Any]:
    """A manifest's JSON object, which must name this version (anything else is a corrupt manifest)."""
    try:
        manifest = json.loads(data)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        if manifest.get("name") != name or manifest.get("version") != version:
            raise ValueError(f"it describes {manifest.get('name')!s:.40}/{manifest.get('version')!s:.40}")
        for section in ("encoder", "calibration"):
            if not isinstance(manifest.get(section), dict):
                raise ValueError(f"no {section} section")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactIntegrityError(MSG_CORRUPT.format(file=MANIFEST, name=name, version=version,
                                                        reason=str(exc)[:200]), MANIFEST) from None
    return manifest


def load_version(
    folder: Path, name: str, version: str, *, status: str, keys: ModelKeys, allow_partial: bool = False
) -> LoadedModel:
    """Verify the signature and every checksum, then build the runtime model from JSON and ``.npz`` arrays only.

    With ``allow_partial`` a bad ``primary.npz`` or ``fallback.npz`` leaves that model ``None``
    (listed in ``integrity_errors``) instead of failing, so a service can serve the other one or
    report "not ready"; a bad manifest, or no usable model at all, always raises.
    """
    sums = read_checksums(folder, name, version, keys)
    errors: dict[str, str] = {}
    blobs: dict[str, bytes] = {}
    for file in ARTIFACTS:  # every checksum first, before parsing anything
        try:
            blobs[file] = read_verified(folder, file, sums, name, version)
        except ArtifactIntegrityError as exc:
            if not allow_partial or file == MANIFEST:
                raise
            errors[file] = str(exc)
    manifest = parse_manifest(blobs[MANIFEST], name, version)
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
    try:
        encoder = FeatureEncoder.from_dict(manifest["encoder"])
    except Exception as exc:  # noqa: BLE001 - a malformed encoder spec is a corrupt manifest
        raise ArtifactIntegrityError(MSG_CORRUPT.format(file=MANIFEST, name=name, version=version,
                                                        reason=f"encoder: {type(exc).__name__}"), MANIFEST) from None
    return LoadedModel(
        name=name,
        version=version,
        path=folder,
        manifest=manifest,
        checksums=sums,
        encoder=encoder,
        primary=models[PRIMARY],
        fallback=models[FALLBACK],
        integrity_errors=errors,
    )
