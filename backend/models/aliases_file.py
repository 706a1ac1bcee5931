"""``aliases.json``, signed: the registry's pointers (champion, challenger, history, status, canary, events)
carry an Ed25519 signature by the same keys as the versions (:mod:`backend.models.signing`), inside the file
under ``"_signature"`` (one atomic write: no window where file and signature disagree)::

    {"champion": "v...", ..., "_signature": {"format": "creditrisk-aliases-signature/1", "alg": "Ed25519",
                                               "kid": "<16 hex>", "name": "creditrisk", "signature": "<base64>"}}

The signed message is the format, the registry name and the SHA-256 of the document's canonical JSON
(sorted keys, no ``_signature``): an edited champion, status or canary is refused, and so is a file copied
from another registry name. Reading verifies before anything is trusted; a missing file is an empty registry
(nothing to serve), while an unsigned, garbage or mis-signed file is a :class:`RegistryError` with one line.
What a signature cannot tell is which signed document is the newest: putting back an older signed
``aliases.json`` (a rollback to an earlier champion) passes, as a restore from a backup would.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from backend.models.artifacts import RegistryError, json_bytes, read_regular, write_atomic
from backend.models.signing import ALG, ModelKeys, SignatureError

SIG_KEY = "_signature"
ALIASES_FORMAT = "creditrisk-aliases-signature/1"
ALIAS_SHAPE: dict[str, type | tuple[type, ...]] = {"champion": str, "challenger": str, "champion_history": list,
                                                   "status": dict, "events": list, "canary": dict}
MSG_BAD_ALIASES = "{path} is unreadable or malformed ({reason}); fix or restore it from a backup"
MSG_ALIASES_UNSIGNED = ("{path} is not signed; refusing to trust it (written before signing existed? "
                        "`creditrisk models sign-unsigned` on a registry you trust)")
MSG_ALIASES_BAD_SIG = "{path} failed its signature check ({reason}); refusing to trust it"


def _message(name: str, doc: dict[str, Any]) -> bytes:
    body = {k: v for k, v in doc.items() if k != SIG_KEY}
    canonical = json.dumps(json.loads(json_bytes(body)), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "\0".join((ALIASES_FORMAT, name, hashlib.sha256(canonical.encode()).hexdigest())).encode()


def sign_aliases(keys: ModelKeys, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its ``_signature`` (a new dict); :class:`SignatureError` without a signing key."""
    if keys.signer is None:
        from backend.models.signing import MSG_NO_SIGNER

        raise SignatureError(MSG_NO_SIGNER)
    body = {k: v for k, v in doc.items() if k != SIG_KEY}
    sig = keys.signer.sign(_message(name, body))
    return {**body, SIG_KEY: {"format": ALIASES_FORMAT, "alg": ALG, "kid": keys.active_kid, "name": name,
                              "signature": base64.b64encode(sig).decode()}}


def verify_aliases(keys: ModelKeys, name: str, doc: dict[str, Any], path: Path) -> str:
    """The key id that signed ``doc``; :class:`RegistryError` (one line naming ``path``) otherwise."""
    sig = doc.get(SIG_KEY)
    if sig is None:
        raise RegistryError(MSG_ALIASES_UNSIGNED.format(path=path))
    try:
        if not isinstance(sig, dict) or sig.get("format") != ALIASES_FORMAT or sig.get("alg") != ALG:
            raise ValueError(f"the signature is not {ALIASES_FORMAT}/{ALG}")
        raw = base64.b64decode(str(sig.get("signature")), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise RegistryError(MSG_ALIASES_BAD_SIG.format(path=path, reason=str(exc)[:120])) from None
    if sig.get("name") != name:
        raise RegistryError(MSG_ALIASES_BAD_SIG.format(path=path, reason=f"signed for {sig.get('name')!s:.40}"))
    kid = str(sig.get("kid"))
    public = keys.verifiers.get(kid)
    if public is None:
        raise RegistryError(MSG_ALIASES_BAD_SIG.format(path=path, reason=f"signed by key {kid[:32]}, which is not "
                                                       f"one of this deployment's verification keys"))
    try:
        public.verify(raw, _message(name, doc))
    except InvalidSignature:
        raise RegistryError(MSG_ALIASES_BAD_SIG.format(path=path, reason="the signature does not match its "
                                                       "content")) from None
    return kid


def parse_aliases(path: Path, *, name: str, keys: ModelKeys | None) -> dict[str, Any]:
    """The document in ``path`` with its defaults, verified first (``keys=None``: not verified, for adopting an
    unsigned file); a missing file is an empty registry."""
    try:
        data: bytes | None = read_regular(path)
    except FileNotFoundError:
        data = None
    except OSError as exc:  # a directory, unreadable, ...
        raise RegistryError(MSG_BAD_ALIASES.format(path=path, reason=type(exc).__name__)) from None
    return parse_aliases_data(data, path=path, name=name, keys=keys)


def parse_aliases_data(data: bytes | None, *, path: Path, name: str, keys: ModelKeys | None) -> dict[str, Any]:
    """:func:`parse_aliases` on bytes already read (``None``: no document yet), e.g. from a remote registry;
    ``path`` only names the document in errors."""
    try:
        doc = json.loads(data) if data is not None else {}
        found = data is not None
    except (ValueError, RecursionError) as exc:  # garbage, too deep, not UTF-8, ...
        raise RegistryError(MSG_BAD_ALIASES.format(path=path, reason=type(exc).__name__)) from None
    if not isinstance(doc, dict):
        raise RegistryError(MSG_BAD_ALIASES.format(path=path, reason="not a JSON object"))
    for key, kind in ALIAS_SHAPE.items():
        if key in doc and doc[key] is not None and not isinstance(doc[key], kind):
            raise RegistryError(MSG_BAD_ALIASES.format(path=path, reason=f"{key} is malformed"))
    if found and keys is not None:
        verify_aliases(keys, name, doc, path)
    doc.pop(SIG_KEY, None)
    for key, default in (("champion", None), ("challenger", None), ("champion_history", []), ("status", {}),
                         ("events", []), ("canary", None)):
        doc.setdefault(key, default)
    return doc


def save_aliases(path: Path, *, name: str, keys: ModelKeys, doc: dict[str, Any]) -> None:
    write_atomic(path, json_bytes(sign_aliases(keys, name, doc)))


def is_signed(path: Path) -> bool:
    try:
        doc = json.loads(read_regular(path))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and SIG_KEY in doc
