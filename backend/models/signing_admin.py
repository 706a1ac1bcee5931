"""Key rotation and signing of versions made before signatures existed.

:func:`rotate_key` re-signs every version under a new key after each verified under the current keys.
A version that fails refuses the whole rotation, naming it: re-signing would launder a tampered
version into a trusted one. The steps survive a crash at any point: the key file first holds the new key
as active *and* the old ones as verify-only, then every ``signature.json`` is replaced atomically, each
re-verified under the new key alone, and only then does the key file drop the old keys.

:func:`adopt_unsigned` signs versions that have no ``signature.json`` yet (a registry written before
this release) when every file matches ``checksums.json``: trust on first use, said out loud by the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.models.aliases_file import is_signed, parse_aliases, save_aliases
from backend.models.artifacts import CHECKSUMS, RegistryError, write_atomic
from backend.models.signing import MSG_NO_SIGNER, SIGNATURE, ModelKeys

MSG_NOT_VERIFIED = "refusing to rotate: {n} version(s) fail verification under the current keys: {detail}"
MSG_RESIGN_FAILED = "{version} does not verify under the new key after re-signing: {error}"
MSG_REMOTE = ("{what} re-signs version folders in place; with an MLflow registry (CREDITRISK_MODEL__REGISTRY_URL) "
              "that is not supported: register the versions again under the new key")


def _local_only(registry: Any, what: str) -> None:
    if getattr(registry, "remote", False):
        raise RegistryError(MSG_REMOTE.format(what=what))


ALIASES = "aliases.json"


def _resign_aliases(registry: Any, keys: ModelKeys, *, verify_with: ModelKeys | None) -> None:
    """Re-sign ``aliases.json`` with ``keys`` (after verifying it with ``verify_with``; None: unsigned, adopted)."""
    path = Path(registry.path) / ALIASES
    if not path.exists():
        return
    with registry._locked():
        doc = parse_aliases(path, name=registry.name, keys=verify_with)
        save_aliases(path, name=registry.name, keys=keys, doc=doc)


def _all_errors(registry: Any) -> dict[str, str]:
    bad: dict[str, str] = {}
    try:
        registry.aliases()
    except RegistryError as exc:
        bad[ALIASES] = str(exc)
    for version in registry.versions():
        errors = registry.verify(version)
        if errors:
            bad[version] = "; ".join(errors.values())
    return bad


def _resign(registry: Any, version: str, keys: ModelKeys) -> None:
    folder = Path(registry.path) / version
    write_atomic(folder / SIGNATURE, keys.sign(registry.name, version, (folder / CHECKSUMS).read_bytes()))


def rotate_key(registry: Any, new_signer: Any, *, save_keys: Callable[[ModelKeys], None] | None = None
               ) -> dict[str, Any]:
    """Re-sign every version of ``registry`` with ``new_signer`` (an Ed25519 private key).

    ``save_keys(keys)`` is called twice when given: first with the transitional keys (new signer, old keys
    verify too) before any signature changes, then with the final keys (new key only) after every version
    re-verified; a key-file deployment writes them, an environment-key deployment passes ``None`` and
    moves the secret itself. Returns ``{"kid", "previous", "versions"}``."""
    _local_only(registry, "rotate-key")
    old = registry.keys
    bad = _all_errors(registry)
    if bad:
        detail = "; ".join(f"{v}: {e}" for v, e in list(bad.items())[:5])
        raise RegistryError(MSG_NOT_VERIFIED.format(n=len(bad), detail=detail)[:2000])
    transitional = ModelKeys.of(new_signer, *old.verifiers.values(), source=old.source)
    final = ModelKeys.of(new_signer, source=old.source)
    if save_keys is not None:
        save_keys(transitional)
    versions = registry.versions()
    for version in versions:
        _resign(registry, version, transitional)
    _resign_aliases(registry, transitional, verify_with=transitional)
    registry._keys = final
    registry.aliases()  # verifies under the new key alone (RegistryError otherwise)
    for version in versions:
        errors = registry.verify(version)
        if errors:
            registry._keys = transitional
            raise RegistryError(MSG_RESIGN_FAILED.format(version=version, error="; ".join(errors.values())))
    if save_keys is not None:
        save_keys(final)
    return {"kid": final.active_kid, "previous": old.active_kid, "versions": versions}


def adopt_unsigned(registry: Any) -> dict[str, Any]:
    """Sign every version without ``signature.json`` whose files all match its checksums.

    An unsigned ``aliases.json`` is signed too when it is well formed. Returns ``{"signed": [...], "refused":
    ["<version>: <why>", ...], "already": [...], "aliases": "signed" | "already signed" | "none" | "refused: <why>"}``."""
    _local_only(registry, "adopt-unsigned")
    if registry.keys.signer is None:
        raise RegistryError(MSG_NO_SIGNER)
    out: dict[str, Any] = {"signed": [], "refused": [], "already": [], "aliases": "none"}
    path = Path(registry.path) / ALIASES
    if path.exists():
        if is_signed(path):
            out["aliases"] = "already signed"
        else:
            try:
                _resign_aliases(registry, registry.keys, verify_with=None)
                out["aliases"] = "signed"
            except RegistryError as exc:
                out["aliases"] = f"refused: {exc}"
    for version in registry.versions():
        folder = Path(registry.path) / version
        if (folder / SIGNATURE).exists():
            out["already"].append(version)
            continue
        try:
            raw = (folder / CHECKSUMS).read_bytes()
            (folder / SIGNATURE).write_bytes(registry.keys.sign(registry.name, version, raw))
        except OSError as exc:
            out["refused"].append(f"{version}: {exc}")
            continue
        errors = registry.verify(version)
        if errors:
            (folder / SIGNATURE).unlink(missing_ok=True)
            out["refused"].append(f"{version}: {'; '.join(errors.values())}")
        else:
            out["signed"].append(version)
    return out
