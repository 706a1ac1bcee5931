"""Where backups live: a folder of backup folders, a ``.tar.gz`` archive, or S3 (``s3://bucket/prefix``).

A backup is always built as a local folder first, then published: renamed into place, packed
into an archive (written under a temporary name, then renamed) or uploaded to S3 with the manifest
last. Either way, a backup without its manifest is never taken for a complete one.

boto3 is imported only when an S3 location is used; tests pass their own client.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.operations.adapters.s3 import S3ClientFactory
from backend.operations.backup_format import MANIFEST, NOT_A_BACKUP, BackupError

NO_S3_CLIENT = "an s3:// location needs an S3 client (give the restore its s3 client factory)"

ARCHIVE_SUFFIX = ".tar.gz"
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
NO_BACKUP_FOUND = "no backup found at {where}; make one with `creditrisk backup`"
BACKUP_MISSING = "no backup at {where}"
BAD_S3_URL = "{url} is not an S3 location; use s3://bucket/prefix"
ARCHIVE_UNSAFE = "archive {where} holds an unsafe member {name!r}; refusing to open it"
ARCHIVE_UNREADABLE = "archive {where} is unreadable or truncated ({detail}); refusing to restore"



@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    @classmethod
    def parse(cls, url: str) -> S3Url:
        if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
            raise BackupError(BAD_S3_URL.format(url=url))
        bucket, _, prefix = url[5:].partition("/")
        return cls(bucket, prefix.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def is_archive(location: str) -> bool:
    return location.endswith(ARCHIVE_SUFFIX)


# ------------------------------------------------------------------------------------------ publish
def next_id(taken: Callable[[str], bool], stamp: str) -> str:
    """``stamp`` (a UTC timestamp), or ``stamp-2``, ``stamp-3``... when a backup of that name exists."""
    name, n = stamp, 1
    while taken(name):
        n += 1
        name = f"{stamp}-{n}"
    return name


def publish_folder(build: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    build.rename(dest)


def pack_archive(build: Path, dest: Path) -> None:
    """``build``'s files into ``dest`` (a .tar.gz), the manifest first; written then renamed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    files = sorted(p for p in build.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name != MANIFEST)  # manifest first: cheap to read, listing stays fast
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:  # table files are gzipped already
        for p in files:
            tar.add(p, arcname=p.relative_to(build).as_posix(), recursive=False)
    tmp.replace(dest)


def unpack_archive(archive: Path, into: Path) -> Path:
    """Extract a backup archive (regular files and folders only) into ``into``."""
    where = str(archive)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar.getmembers():
                if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in Path(m.name).parts:
                    raise BackupError(ARCHIVE_UNSAFE.format(where=where, name=m.name))
            tar.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(ARCHIVE_UNREADABLE.format(where=where, detail=str(exc)[:200])) from None
    return into


def upload_folder(client: Any, url: S3Url, build: Path, backup_id: str) -> None:
    """Upload every file under ``prefix/<id>/``; the manifest last, so a partial upload is not a backup."""
    files = sorted(p for p in build.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == MANIFEST)
    for p in files:
        client.upload_file(str(p), url.bucket, url.key(backup_id, p.relative_to(build).as_posix()))


def _list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    token: str | None = None
    while True:
        kw: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kw["ContinuationToken"] = token
        page = client.list_objects_v2(**kw)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = page.get("NextContinuationToken")


def download_folder(client: Any, url: S3Url, into: Path) -> Path:
    """Download every object under ``url`` (one backup) into ``into``."""
    prefix = url.key() + "/" if url.prefix else ""
    keys = [k for k in _list_keys(client, url.bucket, prefix) if not k.endswith("/")]
    if not keys:
        raise BackupError(BACKUP_MISSING.format(where=str(url)))
    root = into.resolve()
    for k in keys:
        dest = (into / k[len(prefix):]).resolve()
        if not dest.is_relative_to(root):
            raise BackupError(ARCHIVE_UNSAFE.format(where=str(url), name=k))
        dest.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(url.bucket, k, str(dest))
    return into


# ------------------------------------------------------------------------------------------ newest
def newest_local(root: Path) -> Path | None:
    """The newest complete backup directly under ``root`` (a folder with a manifest, or an archive)."""
    if not root.is_dir():
        return None
    found: list[tuple[str, Path]] = []
    for p in root.iterdir():
        if p.is_dir() and ID_PATTERN.match(p.name) and (p / MANIFEST).is_file():
            found.append((p.name, p))
        elif p.is_file() and p.name.endswith(ARCHIVE_SUFFIX) and ID_PATTERN.match(p.name[: -len(ARCHIVE_SUFFIX)]):
            found.append((p.name[: -len(ARCHIVE_SUFFIX)], p))
    return max(found, key=_order)[1] if found else None


def _order(item: tuple[str, Any]) -> tuple[str, int]:
    stamp, _, n = item[0].partition("-")
    return stamp, int(n or 1)


def newest_s3(client: Any, url: S3Url) -> S3Url | None:
    """The newest complete backup under an S3 prefix (its manifest uploaded)."""
    prefix = url.key() + "/" if url.prefix else ""
    ids = set()
    for k in _list_keys(client, url.bucket, prefix):
        parts = k[len(prefix):].split("/")
        if len(parts) == 2 and parts[1] == MANIFEST and ID_PATTERN.match(parts[0]):
            ids.add(parts[0])
    if not ids:
        return None
    best = max(((i, None) for i in ids), key=_order)[0]
    return S3Url(url.bucket, url.key(best))


def has_manifest_s3(client: Any, url: S3Url) -> bool:
    return bool(client.list_objects_v2(Bucket=url.bucket, Prefix=url.key(MANIFEST)).get("KeyCount", 0))


class Fetched:
    """A backup made available as a local folder (extracted or downloaded into a temporary one)."""

    def __init__(self, location: str, s3: S3ClientFactory | None) -> None:
        self.location = location
        self._tmp: Path | None = None
        if is_s3(location):
            if s3 is None:
                raise BackupError(NO_S3_CLIENT)
            client, url = s3(), S3Url.parse(location)
            if not has_manifest_s3(client, url):  # before downloading anything
                raise BackupError(NOT_A_BACKUP.format(where=location, manifest=MANIFEST))
            self.folder = download_folder(client, url, self._temp())
        elif is_archive(location):
            if not Path(location).is_file():
                raise BackupError(BACKUP_MISSING.format(where=location))
            self.folder = unpack_archive(Path(location), self._temp())
        else:
            self.folder = Path(location)
            if not self.folder.is_dir():
                raise BackupError(BACKUP_MISSING.format(where=location))

    def _temp(self) -> Path:
        self._tmp = Path(tempfile.mkdtemp(prefix="creditrisk-restore-"))
        return self._tmp

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
