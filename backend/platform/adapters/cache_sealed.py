"""A cache whose entries cannot be forged: every value carries an HMAC-SHA256 tag over its key and its bytes.

Whoever can write to Redis (or the process memory of a shared cache) can otherwise turn a cached denial
into an approval. Each stored value is ``MAGIC + tag + value`` with::

    tag = HMAC-SHA256(deployment key, "creditrisk-cache-mac/1" NUL len(key) key value)

The key of a cached score holds the model name and version, the engine, the policy and the features'
hash (``score:<name>:<version>:<engine>:<policy>:<feature hash>``), so the tag binds the answer to the
model version and the applicant's features: an entry rewritten, forged, or copied under another key
fails. A failure is a miss, never a served answer: the entry is deleted, the
``cache_integrity_failures`` counter counts it (by backend and key space) and a WARNING goes to the
``creditrisk.security`` log (key space and a short digest of the key; never the value).

The key (:func:`cache_mac_key`): ``CREDITRISK_CACHE__MAC_KEY`` (a secret of at least 32 characters, the
same on every instance sharing a Redis); else, outside production, a key created once under
``<data_dir>/secrets/cache_mac.key`` (mode 0600). Production with a shared (Redis) cache refuses to
start without it; production with the in-process cache uses a random key per process (nobody else reads
that cache).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backend.platform.adapters.metrics_cache import keyspace
from backend.platform.metrics_catalog import CACHE_INTEGRITY_FAILURES
from backend.platform.ports import Cache, Metrics
from backend.platform.secret_file import write_secret_file

security_log = logging.getLogger("creditrisk.security")

MAGIC = b"crm1"
TAG_BYTES = 32
DOMAIN = b"creditrisk-cache-mac/1\0"
DEV_KEY_FILE = Path("secrets") / "cache_mac.key"
MIN_KEY_CHARS = 32
MSG_KEY_REQUIRED = ("CREDITRISK_CACHE__MAC_KEY must be set in production with a shared cache (Redis): every instance "
                    "signs and checks cached decisions with it (a random value of at least 32 characters)")
MSG_SHORT_KEY = "CREDITRISK_CACHE__MAC_KEY must hold at least 32 characters"
LOG_MISMATCH = "cache entry failed its MAC check, treated as a miss and deleted: backend=%s keyspace=%s key_sha256=%s reason=%s"


def cache_mac_key(configured: str, *, data_dir: Path, env: str, shared: bool) -> bytes:
    """The deployment's cache MAC key (see the module docstring)."""
    text = configured.strip()
    if text:
        if len(text) < MIN_KEY_CHARS:
            raise ValueError(MSG_SHORT_KEY)
        return hashlib.sha256(b"creditrisk-cache-key\0" + text.encode()).digest()
    if env == "production":
        if shared:
            raise ValueError(MSG_KEY_REQUIRED)
        return secrets.token_bytes(32)
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        write_secret_file(path, secrets.token_hex(32), replace=False, prefix=".cache-mac-")
    return cache_mac_key(path.read_text(), data_dir=data_dir, env=env, shared=shared)


class SealedCache:
    """A :class:`~backend.platform.ports.Cache` that tags what it stores and refuses what it did not tag."""

    def __init__(self, inner: Cache, key: bytes, metrics: Metrics | None = None) -> None:
        if len(key) < 16:
            raise ValueError("the cache MAC key must be at least 16 bytes")
        self.inner = inner
        self.backend = inner.backend
        self._key = key
        self.metrics = metrics
        self.integrity_failures = 0

    def _tag(self, key: str, value: bytes) -> bytes:
        k = key.encode()
        msg = DOMAIN + len(k).to_bytes(4, "big") + k + value
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def seal(self, key: str, value: bytes) -> bytes:
        """What is stored for ``value`` under ``key``."""
        return MAGIC + self._tag(key, value) + value

    def open(self, key: str, stored: bytes) -> bytes | None:
        """The value when ``stored`` is what :meth:`seal` made for ``key``, else None (the failure is reported)."""
        head = len(MAGIC) + TAG_BYTES
        if not isinstance(stored, bytes | bytearray) or len(stored) < head or stored[:len(MAGIC)] != MAGIC:
            self._refused(key, "untagged")
            return None
        value = bytes(stored[head:])
        if not hmac.compare_digest(bytes(stored[len(MAGIC):head]), self._tag(key, value)):
            self._refused(key, "bad tag")
            return None
        return value

    def _refused(self, key: str, reason: str) -> None:
        self.integrity_failures += 1
        space = keyspace(key)
        security_log.warning(LOG_MISMATCH, self.backend, space, hashlib.sha256(key.encode()).hexdigest()[:16], reason)
        if self.metrics is not None:
            try:
                self.metrics.inc(CACHE_INTEGRITY_FAILURES, {"backend": self.backend, "keyspace": space})
            except Exception:  # noqa: BLE001, S110 - counting never fails a read
                pass
        self.inner.delete(key)

    def get(self, key: str) -> bytes | None:
        stored = self.inner.get(key)
        return None if stored is None else self.open(key, stored)

    def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> bool:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError("cache values must be bytes; serialise before caching")
        return self.inner.set(key, self.seal(key, bytes(value)), ttl_seconds)

    def delete(self, key: str) -> bool:
        return self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)

    def health(self) -> Mapping[str, Any]:
        return self.inner.health()

    def __getattr__(self, name: str) -> Any:  # adapter-specific extras (close, stats, ...) of the wrapped cache
        return getattr(self.inner, name)


def sealed_cache(cache: Cache, key: bytes, metrics: Metrics | None = None) -> Cache:
    """``cache`` with tagged entries (a cache that is already sealed, or counted around a sealed one, is kept)."""
    inner = getattr(cache, "inner", None)
    if isinstance(cache, SealedCache) or isinstance(inner, SealedCache):
        return cache
    return SealedCache(cache, key, metrics)
