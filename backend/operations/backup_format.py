"""The backup format: a folder holding a manifest, one gzipped JSON Lines file per table and the
model registry's files byte for byte.

::

    <id>/manifest.json                 what is inside, sha256 of every file, row counts, its own checksum
    <id>/settings.json                 the non-secret settings needed to rebuild (secrets omitted, listed)
    <id>/db/NN_<table>.jsonl.gz        one JSON array per row, columns as listed in the manifest
    <id>/registry/<path>               every file of the model registry, unchanged

Values are encoded per column kind so they come back exactly: floats as JSON numbers (Python's
shortest round-tripping repr; NaN and infinities as strings), datetimes as ISO 8601 with offset and
microseconds, UUIDs as strings, JSON columns as their stored text, bytes in base64. The manifest is
written last: a folder without one is an incomplete backup.

This module knows files and JSON only; which kind a database column is encoded as is decided from its
SQLAlchemy type in :func:`backend.operations.backup_queries.column_kind`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from uuid import UUID

FORMAT, VERSION = "creditrisk-backup", 1
MANIFEST, SETTINGS_FILE = "manifest.json", "settings.json"

NOT_A_BACKUP = "{where} is not a creditrisk backup, or an incomplete one: {manifest} is missing; refusing to restore"
MANIFEST_UNREADABLE = "the manifest of {where} is unreadable ({detail}); refusing to restore"
MANIFEST_CORRUPT = "the manifest of {where} does not match its checksum (corrupted or edited); refusing to restore"
FILE_MISSING = "backup {id} is incomplete: {file} is missing; refusing to restore"
FILE_CORRUPT = "backup {id} is corrupted: {file} does not match its checksum; refusing to restore"
UNSAFE_PATH = "backup {id} lists an unsafe file path {file!r}; refusing to restore"
UNKNOWN_TYPE = "column {table}.{column} has a type the backup cannot encode ({type})"
UNSUPPORTED_VERSION = "{where} is a backup of format version {version}; this version of creditrisk reads version {ours}"


class BackupError(ValueError):
    """A backup cannot be made, read or restored; the message says which file or table and why."""


# ------------------------------------------------------------------------------------------ codecs
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _enc_float(v: Any) -> Any:
    f = float(v)
    if math.isfinite(f):
        return f
    return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")


ENCODERS: dict[str, Callable[[Any], Any]] = {
    "int": int, "bool": bool, "str": str, "json": str, "float": _enc_float, "uuid": str,
    "datetime": lambda v: v.isoformat(timespec="microseconds"), "date": lambda v: v.isoformat(),
    "decimal": str, "bytes": lambda v: base64.b64encode(bytes(v)).decode("ascii"),
}
DECODERS: dict[str, Callable[[Any], Any]] = {
    "int": int, "bool": bool, "str": str, "json": str,
    "float": lambda v: _NONFINITE[v] if isinstance(v, str) else float(v),
    "uuid": UUID, "datetime": datetime.fromisoformat, "date": date.fromisoformat,
    "decimal": Decimal, "bytes": base64.b64decode,
}


def encode_row(row: Sequence[Any], kinds: Sequence[str]) -> bytes:
    vals = [None if v is None else ENCODERS[k](v) for v, k in zip(row, kinds, strict=True)]
    return json.dumps(vals, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8", "surrogatepass") + b"\n"


def decode_row(line: bytes, kinds: Sequence[str]) -> tuple[Any, ...]:
    vals = json.loads(line.decode("utf-8", "surrogatepass"))
    return tuple(None if v is None else DECODERS[k](v) for v, k in zip(vals, kinds, strict=True))


# ------------------------------------------------------------------------------------------ files
class HashingWriter(io.RawIOBase):
    """Writes through to a file while computing its sha256 and size."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.h, self.size = fh, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.h.update(data)
        self.size += len(data)
        self.fh.write(data)
        return len(data)


def file_sha256(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def write_gzip_blocks(path: Path, blocks: Iterator[bytes]) -> tuple[str, int]:
    """Write blocks of lines gzipped (deterministic header); returns sha256 and size of the file written."""
    with path.open("wb") as raw:
        hw = HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=hw, mtime=0, compresslevel=4) as gz:
            for block in blocks:
                gz.write(block)
    return hw.h.hexdigest(), hw.size


def read_gzip_lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as gz:
        yield from gz


# ------------------------------------------------------------------------------------------ manifest
@dataclass
class TableEntry:
    name: str
    file: str
    columns: list[str]
    kinds: list[str]
    rows: int = 0


@dataclass
class Manifest:
    id: str
    created_at: str  # when the backup was complete
    snapshot_at: str  # the point in time the database copy shows (start of its read transaction)
    source: dict[str, str]  # dialect, database (credentials removed)
    alembic_revision: str | None
    newest_data_at: str | None  # newest at / created_at / recorded_at value in the copy
    tables: list[TableEntry] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {"sha256", "bytes"}
    registry: dict[str, Any] = field(default_factory=dict)  # dir, files, bytes
    format: str = FORMAT
    version: int = VERSION

    def body(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(int(f["bytes"]) for f in self.files.values())

    def snapshot_time(self) -> datetime:
        return datetime.fromisoformat(self.snapshot_at)


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_manifest(folder: Path, m: Manifest) -> Path:
    body = m.body()
    path = folder / MANIFEST
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({**body, "manifest_sha256": _checksum(body)}, indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def read_manifest(folder: Path, where: str) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(NOT_A_BACKUP.format(where=where, manifest=MANIFEST))
    try:
        data = json.loads(path.read_text())
        claimed = data.pop("manifest_sha256")
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        raise BackupError(MANIFEST_UNREADABLE.format(where=where, detail=str(exc)[:200])) from None
    if _checksum(data) != claimed:
        raise BackupError(MANIFEST_CORRUPT.format(where=where))
    if data.get("version") != VERSION:
        raise BackupError(UNSUPPORTED_VERSION.format(where=where, version=data.get("version"), ours=VERSION))
    data["tables"] = [TableEntry(**t) for t in data["tables"]]
    return Manifest(**data)


def verify_folder(folder: Path, where: str) -> Manifest:
    """The manifest of a backup folder after checking it and every file it lists (size and sha256).

    Raises :class:`BackupError` naming the first missing or corrupted file.
    """
    m = read_manifest(folder, where)
    root = folder.resolve()
    for rel, info in sorted(m.files.items()):
        path = (folder / rel).resolve()
        if not path.is_relative_to(root) or rel.startswith("/"):
            raise BackupError(UNSAFE_PATH.format(id=m.id, file=rel))
        if not path.is_file():
            raise BackupError(FILE_MISSING.format(id=m.id, file=rel))
        digest, size = file_sha256(path)
        if digest != info["sha256"] or size != info["bytes"]:
            raise BackupError(FILE_CORRUPT.format(id=m.id, file=rel))
    for t in m.tables:
        if t.file not in m.files:
            raise BackupError(FILE_MISSING.format(id=m.id, file=t.file))
    return m
