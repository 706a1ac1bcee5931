"""What registering a trained model writes: its manifest and its version folder, written once.

``checksums.json`` holds every file's SHA-256 and ``signature.json`` the Ed25519 signature over it
(:mod:`backend.models.signing`): a version is signed when it is written, never afterwards. The folder is written under a temporary name and renamed into place only when every file and
``checksums.json`` are on disk, so a version folder is either complete or absent. The aliases
document (status, the ``challenger`` alias, the event) is the registry's business
(:meth:`backend.models.registry.Registry.register`).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from backend.models.artifacts import (
    ARTIFACTS,
    CHECKSUMS,
    FALLBACK,
    HOLDOUT,
    MANIFEST,
    PRIMARY,
    REFERENCE,
    apply_calibration,
    code_version,
    holdout_for_parquet,
    json_bytes,
    sha256_bytes,
)
from backend.models.signing import SIGNATURE, ModelKeys


def new_version_id(now: datetime) -> str:
    """``v<date>-<time><ms>-<random>``: sorts by creation time, never collides."""
    return f"v{now:%Y%m%d}-{now:%H%M%S}{now.microsecond // 1000:03d}-{secrets.token_hex(3)}"


def build_manifest(name: str, version: str, now: datetime, result: Any, *, gate_results: Sequence[Any],
                   context: Mapping[str, Any], config: Any, lineage: Mapping[str, Any] | None) -> dict[str, Any]:
    """The manifest of a trained ``TrainResult`` registered as ``version`` (status ``candidate``)."""
    from backend.models.gates import all_passed

    calib, cutoff = result.calibration, result.params["cutoff"]
    return {
        "name": name, "version": version, "created_at": now.isoformat(timespec="seconds"),
        "code_version": code_version(), "status": "candidate",
        "features": [{"name": c, "kind": result.encoder_spec["kinds"][c]} for c in result.encoder_spec["columns"]],
        "target": result.dataset.target, "positive": result.dataset.positive,
        "protected": list(result.dataset.protected.columns),
        "encoder": result.encoder_spec, "calibration": calib,
        "policy": {"cutoff": cutoff, "cutoff_applies_to": "raw primary score",
                   "pd_cutoff": apply_calibration(calib["primary"], cutoff)},
        "models": {"primary": {"kind": result.compiled_primary.kind, "file": PRIMARY},
                   "fallback": {"kind": result.compiled_fallback.kind, "file": FALLBACK}},
        "training": result.params,
        "data": {k: v for k, v in result.report["dataset"].items() if k != "features"},
        "metrics": result.report["summary"], "evaluation": result.report,
        "gates_config": config.to_dict(), "gates": [g.to_dict() for g in gate_results],
        "gates_passed": all_passed(gate_results), "gates_context": dict(context),
        "lineage": {**dict(lineage or {}), "parent_champion": context.get("champion_version")},
        "files": [*ARTIFACTS],
    }


def write_version_folder(path: Path, version: str, manifest: Mapping[str, Any], result: Any, keys: ModelKeys) -> None:
    """Write ``path/version`` (every artifact, its checksum and the signature by ``keys``); nothing is left
    behind on failure."""
    import joblib

    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".tmp-{version}"
    tmp.mkdir()
    try:
        (tmp / MANIFEST).write_bytes(json_bytes(manifest))
        np.savez(tmp / PRIMARY, **result.compiled_primary.to_arrays())
        np.savez(tmp / FALLBACK, **result.compiled_fallback.to_arrays())
        joblib.dump(
            {"primary": result.primary, "fallback": result.fallback, "baseline": result.baseline},
            tmp / REFERENCE,
        )
        holdout_for_parquet(result.holdout).to_parquet(tmp / HOLDOUT, index=False)
        sums = {f: sha256_bytes((tmp / f).read_bytes()) for f in ARTIFACTS}
        (tmp / CHECKSUMS).write_bytes(json_bytes(sums))
        (tmp / SIGNATURE).write_bytes(keys.sign(str(manifest["name"]), version, (tmp / CHECKSUMS).read_bytes()))
        os.replace(tmp, path / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
