"""Signed model versions: an Ed25519 signature over each version's name, id and ``checksums.json``.

``checksums.json`` lists the SHA-256 of every other file (the manifest included), so one signature
covers the whole version. ``signature.json`` sits beside it::

    {"format": "creditrisk-model-signature/1", "alg": "Ed25519", "kid": "<16 hex>",
     "name": "creditrisk", "version": "v2026...", "signature": "<base64>"}

The signed message is ``creditrisk-model-signature/1 NUL name NUL version NUL sha256(checksums.json)``:
binding name and version means a signed folder copied under another version id is refused.

Keys (:func:`model_keys`): the private key signs (registration, ``creditrisk models rotate-key``);
the public keys verify (every serving process). Where they come from, first match wins:

1. ``CREDITRISK_MODEL__SIGNING_KEY``: base64 of the 32-byte Ed25519 private key (a secret store);
2. ``CREDITRISK_MODEL__SIGNING_KEY_FILE``: a JSON key file ``{"active": kid, "keys": {kid: {"private": b64,
   "public": b64}}}`` (a mounted secret);
3. outside production only: ``<data_dir>/secrets/model_signing.json``, created once with mode 0600.

``CREDITRISK_MODEL__VERIFY_KEYS`` (comma-separated base64 public keys) adds keys that only verify: a
serving process may hold those alone and no private key at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backend.platform.secret_file import write_secret_file

SIGNATURE = "signature.json"
SIGNATURE_FORMAT = "creditrisk-model-signature/1"
ALG = "Ed25519"
DEV_KEY_FILE = Path("secrets") / "model_signing.json"

MSG_UNSIGNED = ("{name}/{version} is not signed (no signature.json); refusing to load it (written before signing "
                "existed? `creditrisk models sign-unsigned` on a registry you trust)")
MSG_BAD_SIGNATURE = "{name}/{version} failed its signature check ({reason}); refusing to load it"
MSG_UNKNOWN_KID = "signed by key {kid}, which is not one of this deployment's verification keys ({known})"
MSG_NO_SIGNER = ("no model signing key: set CREDITRISK_MODEL__SIGNING_KEY or CREDITRISK_MODEL__SIGNING_KEY_FILE "
                 "(this process holds verification keys only)")
MSG_KEYS_REQUIRED = ("CREDITRISK_MODEL__SIGNING_KEY, CREDITRISK_MODEL__SIGNING_KEY_FILE or CREDITRISK_MODEL__VERIFY_KEYS "
                     "must be set in production: model versions are verified with it")
MSG_KEY_FILE = "the model signing key file {path} (CREDITRISK_MODEL__SIGNING_KEY_FILE) cannot be read ({reason})"
MSG_BAD_KEY = "{source} is not a valid Ed25519 key ({reason})"


class SignatureError(Exception):
    """A signature is missing, malformed, made by an unknown key or does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, source: str, size: int = 32) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise ValueError(MSG_BAD_KEY.format(source=source, reason="not base64")) from None
    if len(raw) != size:
        raise ValueError(MSG_BAD_KEY.format(source=source, reason=f"{len(raw)} bytes, expected {size}"))
    return raw


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(public_raw(public)).hexdigest()[:16]


def private_from_b64(text: str, source: str = "the signing key") -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_unb64(text, source))


def private_to_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    return _b64(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))


def public_from_b64(text: str, source: str = "a verification key") -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_unb64(text, source))


def message(name: str, version: str, checksums: bytes) -> bytes:
    """What is signed: the format, the name, the version id and the SHA-256 of ``checksums.json``'s bytes."""
    digest = hashlib.sha256(checksums).hexdigest()
    return "\0".join((SIGNATURE_FORMAT, name, version, digest)).encode()


@dataclass
class ModelKeys:
    """The signing key (optional) and every verification key, by key id."""

    signer: Ed25519PrivateKey | None = None
    verifiers: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def generate(cls) -> ModelKeys:
        return cls.of(Ed25519PrivateKey.generate(), source="generated")

    @classmethod
    def of(cls, signer: Ed25519PrivateKey | None, *publics: Ed25519PublicKey, source: str = "") -> ModelKeys:
        keys = cls(signer=signer, source=source)
        for pub in ([signer.public_key()] if signer else []) + list(publics):
            keys.verifiers[key_id(pub)] = pub
        return keys

    @property
    def active_kid(self) -> str | None:
        return key_id(self.signer.public_key()) if self.signer else None

    def public_text(self) -> str:
        """Every verification key, base64, comma-separated: the value of ``CREDITRISK_MODEL__VERIFY_KEYS``."""
        return ",".join(_b64(public_raw(p)) for p in self.verifiers.values())

    def sign(self, name: str, version: str, checksums: bytes) -> bytes:
        """The ``signature.json`` bytes of a version whose ``checksums.json`` holds ``checksums``."""
        if self.signer is None:
            raise SignatureError(MSG_NO_SIGNER)
        sig = self.signer.sign(message(name, version, checksums))
        doc = {"format": SIGNATURE_FORMAT, "alg": ALG, "kid": self.active_kid, "name": name, "version": version,
               "signature": _b64(sig)}
        return json.dumps(doc, indent=2, sort_keys=True).encode()

    def verify(self, name: str, version: str, checksums: bytes, signature: bytes | None) -> str:
        """The key id that signed; raises :class:`SignatureError` (the message names the version)."""
        if signature is None:
            raise SignatureError(MSG_UNSIGNED.format(name=name, version=version))
        try:
            doc = json.loads(signature)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            if doc.get("format") != SIGNATURE_FORMAT or doc.get("alg") != ALG:
                raise ValueError(f"format/alg is not {SIGNATURE_FORMAT}/{ALG}")
            kid, sig = str(doc.get("kid")), base64.b64decode(str(doc.get("signature")), validate=True)
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
            raise SignatureError(MSG_BAD_SIGNATURE.format(name=name, version=version,
                                                          reason=f"unreadable signature.json: {exc}"[:200])) from None
        if doc.get("name") != name or doc.get("version") != version:
            raise SignatureError(MSG_BAD_SIGNATURE.format(
                name=name, version=version, reason=f"signed as {doc.get('name')!s:.40}/{doc.get('version')!s:.40}"))
        public = self.verifiers.get(kid)
        if public is None:
            reason = MSG_UNKNOWN_KID.format(kid=kid[:32], known=", ".join(self.verifiers) or "none")
            raise SignatureError(MSG_BAD_SIGNATURE.format(name=name, version=version, reason=reason))
        try:
            public.verify(sig, message(name, version, checksums))
        except InvalidSignature:
            raise SignatureError(MSG_BAD_SIGNATURE.format(
                name=name, version=version, reason="the signature does not match checksums.json")) from None
        return kid

    # -- the key-file form -------------------------------------------------------------------------
    def to_json(self) -> str:
        """``{"active": kid, "keys": {kid: {"private": b64, "public": b64}}}`` (secret: mode 0600); the other
        verification keys are kept public-only (they verify, never sign)."""
        if self.signer is None:
            raise SignatureError(MSG_NO_SIGNER)
        keys: dict[str, Any] = {k: {"public": _b64(public_raw(p))} for k, p in self.verifiers.items()}
        keys[str(self.active_kid)] = {"private": private_to_b64(self.signer),
                                      "public": _b64(public_raw(self.signer.public_key()))}
        return json.dumps({"active": self.active_kid, "keys": keys}, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str) -> ModelKeys:
        try:
            doc = json.loads(text)
            active, entries = doc["active"], doc["keys"]
            if not isinstance(entries, dict) or active not in entries:
                raise ValueError("the active key is not in keys")
            signer = private_from_b64(entries[active]["private"], source)
            publics = [public_from_b64(e["public"], source) for k, e in entries.items() if k != active]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(MSG_BAD_KEY.format(source=source, reason=str(exc)[:200])) from None
        return cls.of(signer, *publics, source=source)


def save_key_file(path: Path, keys: ModelKeys) -> None:
    """Write the key file of ``keys`` (mode 0600, atomically)."""
    write_secret_file(path, keys.to_json(), replace=True, prefix=".model-signing-")


def key_file_path(settings: Any, data_dir: Path) -> Path:
    return Path(settings.signing_key_file) if settings.signing_key_file else data_dir / DEV_KEY_FILE


def model_keys(settings: Any, *, data_dir: Path, env: str = "dev") -> ModelKeys:
    """The keys of a deployment from its :class:`~backend.models.config.ModelSettings` (see the module docstring)."""
    extra = [public_from_b64(k, "CREDITRISK_MODEL__VERIFY_KEYS") for k in settings.verify_keys.split(",") if k.strip()]
    secret = settings.signing_key.get_secret_value().strip()
    if secret:
        return ModelKeys.of(private_from_b64(secret, "CREDITRISK_MODEL__SIGNING_KEY"), *extra,
                            source="CREDITRISK_MODEL__SIGNING_KEY")
    if settings.signing_key_file is not None:
        try:
            text = Path(settings.signing_key_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(MSG_KEY_FILE.format(path=settings.signing_key_file, reason=type(exc).__name__)) from None
        keys = ModelKeys.from_json(text, str(settings.signing_key_file))
    elif extra:
        return ModelKeys.of(None, *extra, source="CREDITRISK_MODEL__VERIFY_KEYS")
    elif env == "production":
        raise ValueError(MSG_KEYS_REQUIRED)
    else:
        path = key_file_path(settings, data_dir)
        if not path.exists():
            write_secret_file(path, ModelKeys.generate().to_json(), replace=False, prefix=".model-signing-")
        keys = ModelKeys.from_json(path.read_text(), str(path))
    for pub in extra:
        keys.verifiers[key_id(pub)] = pub
    return keys


def keys_from_environment() -> ModelKeys:
    """:func:`model_keys` from the ``CREDITRISK_*`` variables and ``.env`` (read as the root settings read them), for
    code that has no settings at hand (a :class:`~backend.models.registry.Registry` built without ``keys``)."""
    from pydantic_settings import BaseSettings, SettingsConfigDict

    from backend.models.config import ModelSettings

    class _Deployment(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="CREDITRISK_", env_nested_delimiter="__", env_file=".env",
                                          env_file_encoding="utf-8", extra="ignore")
        env: str = "dev"
        data_dir: Path = Path("var")
        model: ModelSettings = ModelSettings()

    d = _Deployment()
    return model_keys(d.model, data_dir=d.data_dir, env=d.env)
