"""``model.tar.gz`` for SageMaker: one registry version in the layout the serving container reads.

SageMaker downloads the artifact named by ``ModelDataUrl`` and extracts it into ``/opt/ml/model``::

    serving.json                 {"format", "name", "version", "code_version", "files": {path: sha256}}
    <name>/aliases.json          {"champion": "<version>", "status": {"<version>": "champion"}}
    <name>/<version>/            manifest.json, primary.npz, fallback.npz, checksums.json, signature.json
                                 (from the registry)

so the container opens ``/opt/ml/model`` as a one-version registry and serves its champion through the
same :class:`~backend.models.provider.ModelProvider` as the local path, signature and checksums verified
before anything is parsed (the container needs the verification key: ``CREDITRISK_MODEL__VERIFY_KEYS``). The scikit-learn pickle (``reference.joblib``) and the held-out rows
(``holdout.parquet``, which carry protected attributes) are not shipped: the runtime scorer does not
need them, and an artifact in S3 should not hold applicant data.

The archive is deterministic (sorted members, zero timestamps and owners, gzip mtime 0, no packing
time): packing the same version with the same code gives the same bytes, so its SHA-256 identifies the
version's serving artifact.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.models.aliases_file import sign_aliases
from backend.models.artifacts import CHECKSUMS, FALLBACK, HOLDOUT, MANIFEST, PRIMARY, REFERENCE, code_version
from backend.models.signing import SIGNATURE

PACKAGE_FORMAT = "creditrisk-sagemaker/1"
SERVING_JSON = "serving.json"
SHIPPED = (MANIFEST, PRIMARY, FALLBACK, CHECKSUMS, SIGNATURE)
NOT_SHIPPED = (REFERENCE, HOLDOUT)
MAX_PACKAGE_BYTES = 512 * 1024 * 1024

MSG_NOT_INTACT = "cannot package {name}/{version}: {errors}"
MSG_NO_PACKAGE = "{path} holds no {file}: not a model.tar.gz from `creditrisk deploy package` (extracted)"
MSG_BAD_PACKAGE = "{path}/{file} is not a {fmt} description: {reason}"
MSG_TAMPERED = "{path}: {file} does not match the SHA-256 recorded in serving.json"
MSG_UNSAFE = "{path}: refusing member {member!r} (absolute, parent or link path)"
MSG_TOO_BIG = "{path} is larger than {limit} bytes"


class PackageError(ValueError):
    """A package cannot be built or read; the message says why."""


@dataclass(frozen=True)
class PackageInfo:
    path: Path
    name: str
    version: str
    sha256: str
    size: int
    files: dict[str, str]


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def build_package(registry: Any, ref: str, out_path: Path) -> PackageInfo:
    """Write ``model.tar.gz`` for ``ref`` (a version id or an alias) of ``registry``
    (a :class:`~backend.models.registry.Registry`). Refuses a version whose artifacts fail their checksums."""
    version = registry.resolve(ref)
    errors = {f: e for f, e in registry.verify(version).items() if f in SHIPPED}
    if errors:
        raise PackageError(MSG_NOT_INTACT.format(name=registry.name, version=version, errors="; ".join(errors.values())))
    folder = Path(registry.path) / version
    blobs = {f"{registry.name}/{version}/{f}": (folder / f).read_bytes() for f in SHIPPED}
    aliases = {"champion": version, "challenger": None, "champion_history": [version],
               "status": {version: "champion"}, "events": [], "canary": None}
    signed = sign_aliases(registry.keys, registry.name, aliases)  # the container verifies it like any registry
    blobs[f"{registry.name}/aliases.json"] = json.dumps(signed, indent=1, sort_keys=True).encode()
    files = {path: hashlib.sha256(data).hexdigest() for path, data in sorted(blobs.items())}
    serving = {"format": PACKAGE_FORMAT, "name": registry.name, "version": version, "code_version": code_version(),
               "files": files}
    blobs[SERVING_JSON] = json.dumps(serving, indent=1, sort_keys=True).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(blobs):
            tar.addfile(*_member(path, blobs[path]))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    data = packed.getvalue()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out_path)
    return PackageInfo(out_path, registry.name, version, hashlib.sha256(data).hexdigest(), len(data), files)


def extract_package(tar_path: Path, dest: Path) -> Path:
    """Extract a ``model.tar.gz`` as SageMaker does (into ``dest``), refusing unsafe members."""
    if tar_path.stat().st_size > MAX_PACKAGE_BYTES:
        raise PackageError(MSG_TOO_BIG.format(path=tar_path, limit=MAX_PACKAGE_BYTES))
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                raise PackageError(MSG_UNSAFE.format(path=tar_path, member=m.name))
        tar.extractall(dest, filter="data")
    return dest


def read_package(model_dir: Path) -> dict[str, Any]:
    """The verified ``serving.json`` of an extracted package: every listed file's SHA-256 is checked."""
    path = Path(model_dir) / SERVING_JSON
    if not path.is_file():
        raise PackageError(MSG_NO_PACKAGE.format(path=model_dir, file=SERVING_JSON))
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or doc.get("format") != PACKAGE_FORMAT:
            raise ValueError(f"format is not {PACKAGE_FORMAT}")
        name, version, files = str(doc["name"]), str(doc["version"]), doc["files"]
        if not isinstance(files, dict) or not name or not version:
            raise ValueError("name, version and files are required")
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(MSG_BAD_PACKAGE.format(path=model_dir, file=SERVING_JSON, fmt=PACKAGE_FORMAT,
                                                  reason=str(exc)[:200])) from None
    root = Path(model_dir).resolve()
    for rel, digest in files.items():
        target = (root / str(rel)).resolve()
        if root not in target.parents or not target.is_file() \
                or hashlib.sha256(target.read_bytes()).hexdigest() != digest:
            raise PackageError(MSG_TAMPERED.format(path=model_dir, file=rel))
    return doc
