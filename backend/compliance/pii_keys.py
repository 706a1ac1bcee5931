"""The PII key ring: AES-256-GCM field encryption and a keyed blind index.

Token format (what the database holds)::

    pii1:<kid>:<base64(nonce || ciphertext || tag)>

* ``kid`` names the key that encrypted the value; every key of the ring decrypts, the active one
  encrypts. A value without the ``pii1:`` prefix is a plaintext row written before migration 0007
  (readable until ``creditrisk pii rotate`` encrypts it).
* The associated data binds the token to its field and its row (``creditrisk/pii1/<field>/<row>``):
  a token copied into another column or another application fails authentication.
* Each master key is never used directly: HKDF-SHA256 derives an encryption key and, separately,
  an HMAC-SHA256 key for the blind index (equality lookups of the applicant id without decrypting).
  The blind index of a row is made with the key that encrypted its applicant id, so a rotation
  re-makes both together; a lookup computes the index under every key of the ring.

Error messages are constants and never contain key material or the protected value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_PREFIX = "pii1"  # noqa: S105 - a format tag, not a secret
KID_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,32}$")  # no '_' or '%': a kid is safe inside a SQL LIKE pattern
KEY_BYTES = 32
NONCE_BYTES = 12
MIN_DISTINCT_BYTES = 8  # a random 32-byte key has ~30 distinct byte values; a placeholder has few
_ENC_INFO = b"creditrisk pii1 field encryption"
_INDEX_INFO = b"creditrisk pii1 blind index"

KEYS_NOT_JSON = "must be a JSON object {key id: base64 key} (it is not valid JSON)"
KEYS_NOT_OBJECT = "must be a JSON object {key id: base64 key}"
KEYS_EMPTY = "holds no key"
KEY_ID_BAD = "key ids must be 1 to 32 letters, digits or '-' (one is not)"
KEY_BAD = "key {kid!r} is not the base64 of 32 bytes"
KEY_WEAK = ("key {kid!r} looks like a placeholder (too few distinct bytes); make a random one with "
            "`creditrisk pii keys new`")
ACTIVE_UNKNOWN = "the active key id {kid!r} is not in the ring"
ACTIVE_AMBIGUOUS = "the ring holds {n} keys: set CREDITRISK_PII__ACTIVE_KID to the one that encrypts"
ACTIVE_REMOVED = "key {kid!r} is the active key; make another key active first"
FILE_MALFORMED = "the PII key file is not {{\"active\": kid, \"keys\": {{kid: base64}}}}: {why}"
TOKEN_MALFORMED = "the value is not a pii1 token"  # noqa: S105 - a message
KEY_MISSING = "the value is encrypted under key {kid!r}, which is not in the ring"
TOKEN_INVALID = "the value failed authentication (wrong key, field or row, or it was altered)"  # noqa: S105


class PiiKeyError(ValueError):
    """The key ring cannot be built; the message never contains key material."""


class PiiDecryptError(ValueError):
    """A token cannot be decrypted; the message never contains the token or the value."""


def parse_keys(raw: str) -> dict[str, bytes]:
    """``{kid: base64}`` JSON → ``{kid: 32 bytes}``, or :class:`PiiKeyError`."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise PiiKeyError(KEYS_NOT_JSON) from None
    if not isinstance(data, dict):
        raise PiiKeyError(KEYS_NOT_OBJECT)
    if not data:
        raise PiiKeyError(KEYS_EMPTY)
    out: dict[str, bytes] = {}
    for kid, value in data.items():
        if not isinstance(kid, str) or not KID_PATTERN.match(kid):
            raise PiiKeyError(KEY_ID_BAD)
        try:
            key = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise PiiKeyError(KEY_BAD.format(kid=kid))
        if len(set(key)) < MIN_DISTINCT_BYTES:
            raise PiiKeyError(KEY_WEAK.format(kid=kid))
        out[kid] = key
    return out


def new_kid() -> str:
    return "k" + secrets.token_hex(4)


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(master)


def _aad(field: str, row: str) -> bytes:
    return f"creditrisk/{TOKEN_PREFIX}/{field}/{row}".encode()


def is_token(value: object) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX + ":")


def token_kid(value: object) -> str | None:
    """The key id of a token, or None for a plaintext value."""
    if not is_token(value):
        return None
    parts = str(value).split(":", 2)
    return parts[1] if len(parts) == 3 else None


class PiiKeyRing:
    """Keys by id and the active one. Built once (derives each key's AES and HMAC keys)."""

    def __init__(self, keys: Mapping[str, bytes], active: str | None = None) -> None:
        if not keys:
            raise PiiKeyError(KEYS_EMPTY)
        if not active:
            if len(keys) != 1:
                raise PiiKeyError(ACTIVE_AMBIGUOUS.format(n=len(keys)))
            active = next(iter(keys))
        if active not in keys:
            raise PiiKeyError(ACTIVE_UNKNOWN.format(kid=active))
        self._masters = dict(keys)
        self.active = active
        self._aead = {kid: AESGCM(_derive(k, _ENC_INFO)) for kid, k in keys.items()}
        self._index = {kid: _derive(k, _INDEX_INFO) for kid, k in keys.items()}

    def __repr__(self) -> str:  # never the keys
        return f"PiiKeyRing(kids={sorted(self._masters)}, active={self.active!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._masters)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> PiiKeyRing:
        kid = new_kid()
        return cls({kid: new_key()}, kid)

    def with_new_key(self) -> PiiKeyRing:
        """This ring plus a fresh random key, which becomes the active one."""
        kid = new_kid()
        while kid in self._masters:
            kid = new_kid()
        return PiiKeyRing({**self._masters, kid: new_key()}, kid)

    def with_active(self, kid: str) -> PiiKeyRing:
        """The same keys with ``kid`` active (:class:`PiiKeyError` when it is not in the ring)."""
        return PiiKeyRing(self._masters, kid)

    def without(self, kid: str) -> PiiKeyRing:
        """The ring with a retired key removed (never the active one: :class:`PiiKeyError`)."""
        if kid == self.active:
            raise PiiKeyError(ACTIVE_REMOVED.format(kid=kid))
        return PiiKeyRing({k: v for k, v in self._masters.items() if k != kid}, self.active)

    def to_json(self) -> str:
        """The key-file form (secret: write it with mode 0600)."""
        keys = {kid: base64.b64encode(k).decode() for kid, k in self._masters.items()}
        return json.dumps({"active": self.active, "keys": keys}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> PiiKeyRing:
        try:
            data = json.loads(text)
        except ValueError:
            raise PiiKeyError(FILE_MALFORMED.format(why="not JSON")) from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise PiiKeyError(FILE_MALFORMED.format(why="no 'keys' object"))
        active = data.get("active")
        return cls(parse_keys(json.dumps(data["keys"])), active if isinstance(active, str) else None)

    # -- encryption ----------------------------------------------------------------------------
    def encrypt(self, value: str, *, field: str, row: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        ct = self._aead[self.active].encrypt(nonce, value.encode("utf-8", "surrogatepass"), _aad(field, row))
        return f"{TOKEN_PREFIX}:{self.active}:{base64.b64encode(nonce + ct).decode()}"

    def decrypt(self, token: str, *, field: str, row: str) -> str:
        parts = token.split(":", 2) if is_token(token) else []
        if len(parts) != 3:
            raise PiiDecryptError(TOKEN_MALFORMED)
        kid = parts[1]
        aead = self._aead.get(kid)
        if aead is None:
            raise PiiDecryptError(KEY_MISSING.format(kid=kid[:32]))
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise PiiDecryptError(TOKEN_MALFORMED) from None
        if len(blob) < NONCE_BYTES + 16:
            raise PiiDecryptError(TOKEN_MALFORMED)
        try:
            plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(field, row))
        except InvalidTag:
            raise PiiDecryptError(TOKEN_INVALID) from None
        return plain.decode("utf-8", "surrogatepass")

    def reveal(self, stored: str, *, field: str, row: str) -> str:
        """A stored value in clear: a token is decrypted, a plaintext (pre-0007) value returned as is."""
        return self.decrypt(stored, field=field, row=row) if is_token(stored) else stored

    # -- blind index ---------------------------------------------------------------------------
    def blind_index(self, value: str, *, field: str = "applicant_id", kid: str | None = None) -> str:
        """HMAC-SHA256 of ``value`` under the index key of ``kid`` (the active key by default)."""
        key = self._index[kid or self.active]
        msg = field.encode() + b"\x00" + value.encode("utf-8", "surrogatepass")
        return hmac.new(key, msg, hashlib.sha256).hexdigest()

    def blind_indexes(self, value: str, *, field: str = "applicant_id") -> list[str]:
        """The index of ``value`` under every key (a lookup finds rows not yet rotated)."""
        return [self.blind_index(value, field=field, kid=kid) for kid in self._masters]
