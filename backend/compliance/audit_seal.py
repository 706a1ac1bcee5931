"""The cryptography of the sealed audit log: keys, Merkle trees, the batch MAC and signed checkpoints.

* A **leaf** is ``SHA-256(0x00 || seq as 8 bytes || row_hash)`` and a node ``SHA-256(0x01 || left ||
  right)`` (RFC 6962 section 2.1; the seq binds each row to its place). A batch's ``root`` is the
  Merkle tree hash of its leaves in seq order; ``tags`` keeps 8 bytes of each leaf so verification
  can name the row that changed.
* A batch's ``mac`` is HMAC-SHA256, under a key kept outside the database, over its number, range,
  gaps, tags, root and the previous batch's ``mac``: whoever holds only the database cannot re-hash
  forward.
* A **checkpoint** (the "signed tree head" of Certificate Transparency) is the head (batch, last
  seq, mac, time) signed with Ed25519 and appended to a file outside the database; ``audit verify``
  holds the database to the newest one, so a deleted tail is caught even when its batches go too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from backend.compliance.config import AuditSettings
from backend.platform.secret_file import write_secret_file

GENESIS_MAC = "0" * 64
TAG_BYTES = 8
DEV_KEY_FILE = Path("secrets") / "audit_chain.json"
CHECKPOINT_FILE = "checkpoints.jsonl"
KEYS_REQUIRED = ("production needs the audit chain keys: set CREDITRISK_AUDIT__CHAIN_KEY and "
                 "CREDITRISK_AUDIT__SIGNING_KEY, or CREDITRISK_AUDIT__KEY_FILE")


class AuditKeyError(ValueError):
    pass


class ChainSettings(Protocol):
    @property
    def env(self) -> str: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def audit(self) -> AuditSettings: ...


@dataclass(frozen=True)
class ChainKeys:
    mac_key: bytes
    signing: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.signing.public_key()

    @classmethod
    def generate(cls) -> ChainKeys:
        return cls(os.urandom(32), Ed25519PrivateKey.generate())

    def to_json(self) -> str:
        raw = self.signing.private_bytes_raw()
        return json.dumps({"chain_key": base64.b64encode(self.mac_key).decode(),
                           "signing_key": base64.b64encode(raw).decode()})

    @classmethod
    def parse(cls, chain_key: str, signing_key: str) -> ChainKeys:
        try:
            mac = base64.b64decode(chain_key, validate=True)
            sign = base64.b64decode(signing_key, validate=True)
        except ValueError:
            raise AuditKeyError("the audit chain keys must be base64") from None
        if len(mac) < 32 or len(sign) != 32:
            raise AuditKeyError("the chain key needs 32+ bytes and the signing key exactly 32 (Ed25519)")
        return cls(mac, Ed25519PrivateKey.from_private_bytes(sign))


def load_chain_keys(settings: ChainSettings) -> ChainKeys:
    """The configured keys; outside production without any, the dev file under ``data_dir``."""
    a = settings.audit
    chain, sign = a.chain_key.get_secret_value().strip(), a.signing_key.get_secret_value().strip()
    if chain or sign:
        return ChainKeys.parse(chain, sign)
    path = a.key_file
    if path is None:
        if settings.env == "production":
            raise AuditKeyError(KEYS_REQUIRED)
        path = settings.data_dir / DEV_KEY_FILE
        if not path.exists():
            write_secret_file(path, ChainKeys.generate().to_json(), replace=False, prefix=".audit-")
    try:
        doc = json.loads(path.read_text())
        return ChainKeys.parse(str(doc["chain_key"]), str(doc["signing_key"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditKeyError(f"cannot read the audit key file {path}: {type(exc).__name__}") from None


def checkpoint_dir(settings: ChainSettings) -> Path:
    return settings.audit.checkpoint_dir or settings.data_dir / "audit_checkpoints"


# -- Merkle tree (RFC 6962) ---------------------------------------------------------------------------
def leaf_hash(seq: int, row_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + seq.to_bytes(8, "big") + bytes.fromhex(row_hash)).digest()


def merkle_root(leaves: Sequence[bytes]) -> str:
    """RFC 6962 Merkle tree hash (bottom-up: an odd last node moves up a level unchanged)."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = list(leaves)
    sha = hashlib.sha256
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def tags_of(leaves: Sequence[bytes]) -> bytes:
    return b"".join(leaf[:TAG_BYTES] for leaf in leaves)


def batch_mac(key: bytes, batch_no: int, first_seq: int, last_seq: int, size: int, gaps: str, tags: bytes,
              root: str, prev_mac: str) -> str:
    msg = f"creditrisk-audit-batch-v1|{batch_no}|{first_seq}|{last_seq}|{size}|{gaps}|{root}|{prev_mac}|"
    return hmac.new(key, msg.encode() + hashlib.sha256(tags).digest(), hashlib.sha256).hexdigest()


# -- signed checkpoints -----------------------------------------------------------------------------
def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Checkpoints:
    """What the checkpoint file says: the newest valid head, every signed archive, and problems."""

    latest: dict[str, Any] | None
    archives: list[dict[str, Any]]
    bad_lines: list[int]


class CheckpointLog:
    """Signed checkpoints, one JSON line each, appended to ``directory/checkpoints.jsonl``."""

    def __init__(self, directory: Path, keys: ChainKeys) -> None:
        self.path = directory / CHECKPOINT_FILE
        self.keys = keys

    def append(self, body: dict[str, Any]) -> dict[str, Any]:
        sig = base64.b64encode(self.keys.signing.sign(_canonical(body))).decode()
        line = json.dumps({"body": body, "sig": sig}, sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return body

    def read(self) -> Checkpoints:
        """Every line whose signature verifies; the head is the one with the highest batch."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return Checkpoints(None, [], [])
        except (OSError, UnicodeDecodeError):
            return Checkpoints(None, [], [0])
        latest: dict[str, Any] | None = None
        archives: list[dict[str, Any]] = []
        bad: list[int] = []
        for n, line in enumerate(lines, start=1):
            body = self._verified(line)
            if body is None:
                bad.append(n)
                continue
            if latest is None or (body["batch"], body["at"]) >= (latest["batch"], latest["at"]):
                latest = body
            if body.get("kind") == "archive":
                archives.append(body)
        return Checkpoints(latest, archives, bad)

    def _verified(self, line: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(line)
            body, sig = doc["body"], base64.b64decode(doc["sig"], validate=True)
            self.keys.public.verify(sig, _canonical(body))
            int(body["batch"]), int(body["last_seq"]), str(body["mac"]), str(body["at"])
        except (ValueError, KeyError, TypeError, InvalidSignature):
            return None
        return body if isinstance(body, dict) else None
