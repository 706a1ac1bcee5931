"""`creditrisk models verify`, `creditrisk models rotate-key` and `creditrisk models sign-unsigned`.

These read only the settings and the registry folder (no database): ``verify`` must answer even when
everything else is down, and with one line per problem, whatever garbage the folder holds (exit 1 when a
version fails, 2 when the registry cannot be read at all; never a traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

MSG_ENV_KEY = ("the signing key comes from CREDITRISK_MODEL__SIGNING_KEY: give the new one with --new-key-file "
               "(a file holding the base64 private key) and put it in the secret store after the rotation")


def _line(text: str) -> None:
    typer.echo(" ".join(str(text).split())[:1000], err=True)  # one line, whatever the message holds


def _die(exc: BaseException, code: int = 2) -> NoReturn:
    from backend.models.artifacts import RegistryError

    expected = isinstance(exc, RegistryError | ValueError | OSError) and str(exc)
    _line(f"error: {exc}" if expected else f"error: {type(exc).__name__}: {exc}")
    raise typer.Exit(code)


def _registry() -> Any:
    from backend.models.registry import Registry
    from backend.models.signing import model_keys
    from backend.platform.cli import services, settings

    s = settings()
    if s.model.registry_url:  # MLflow: the composition root's registry (no database is touched)
        return s, services(migrate=False).models.registry()
    return s, Registry(s.model.registry_dir, name=s.model.name,
                       keys=model_keys(s.model, data_dir=s.data_dir, env=s.env))


def register(models_app: typer.Typer) -> None:
    from backend.platform.cli import out

    @models_app.command("verify")
    def models_verify(
        ref: Annotated[str, typer.Argument(help="version id, champion, challenger or latest")] = "champion",
        all_versions: Annotated[bool, typer.Option("--all", help="Every version in the registry")] = False,
    ) -> None:
        """Check the signature of aliases.json, then each version's signature, every artifact's SHA-256 and that it
        parses (exit 1 if one fails)."""
        from backend.models.artifacts import RegistryError

        try:
            _, reg = _registry()
            try:  # the pointers first: a tampered or garbage aliases.json is one line, and nothing it names is trusted
                reg.aliases()
            except RegistryError as exc:
                _line(f"aliases.json: {exc}")
                raise typer.Exit(1) from None
            versions = reg.versions() if all_versions else [reg.resolve(ref)]
            failed = 0
            for version in versions:
                errors = reg.verify(version)
                for file, msg in errors.items():
                    _line(f"{version}: {file}: {msg}")
                if errors:
                    failed += 1
                else:
                    out.print(f"{version}: signature valid, all artifacts intact", highlight=False)
        except typer.Exit:
            raise
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback
            _die(exc)
        if not versions:
            out.print("no versions in the registry", highlight=False)
        if failed:
            raise typer.Exit(1)

    @models_app.command("rotate-key")
    def models_rotate_key(
        new_key_file: Annotated[Path | None, typer.Option(
            help="A file holding the new base64 Ed25519 private key (default: generate one)")] = None,
    ) -> None:
        """Re-sign every version under a new signing key, after each verified under the current keys.

        With the key file (default, or CREDITRISK_MODEL__SIGNING_KEY_FILE) the file is rewritten; with
        CREDITRISK_MODEL__SIGNING_KEY the new key must be given and then stored in the secret store."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from backend.models.signing import ModelKeys, key_file_path, key_id, private_from_b64, save_key_file
        from backend.models.signing_admin import rotate_key

        try:
            s, reg = _registry()
            from_env = bool(s.model.signing_key.get_secret_value().strip())
            if from_env and new_key_file is None:
                raise ValueError(MSG_ENV_KEY)
            if reg.keys.signer is None:
                raise ValueError("this deployment holds verification keys only; rotate where the signing key is")
            new = (private_from_b64(new_key_file.read_text(), str(new_key_file)) if new_key_file
                   else Ed25519PrivateKey.generate())
            path = key_file_path(s.model, s.data_dir)
            res = rotate_key(reg, new, save_keys=None if from_env else (lambda keys: save_key_file(path, keys)))
        except typer.Exit:
            raise
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback
            _die(exc)
        out.print(f"re-signed {len(res['versions'])} version(s) with key {res['kid']} (was {res['previous']})",
                  highlight=False)
        out.print(f"serving processes verify with CREDITRISK_MODEL__VERIFY_KEYS={ModelKeys.of(new).public_text()}",
                  highlight=False, soft_wrap=True)
        if from_env:
            out.print(f"now set CREDITRISK_MODEL__SIGNING_KEY to the key of {new_key_file} (key id "
                      f"{key_id(new.public_key())}) in the secret store", highlight=False)
        else:
            out.print(f"key file {path} holds the new key only (mode 0600)", highlight=False)

    @models_app.command("sign-unsigned")
    def models_sign_unsigned() -> None:
        """Sign versions (and an aliases.json) written before signing existed, when every file matches its
        checksums.json.

        Trust on first use: run it once after upgrading, on a registry you trust."""
        from backend.models.signing_admin import adopt_unsigned

        try:
            _, reg = _registry()
            res = adopt_unsigned(reg)
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback
            _die(exc)
        for line in res["refused"]:
            _line(f"not signed: {line}")
        if res["aliases"].startswith("refused"):
            _line(f"not signed: aliases.json: {res['aliases']}")
        out.print(f"signed {len(res['signed'])} version(s); {len(res['already'])} already signed; "
                  f"{len(res['refused'])} refused; aliases.json: {res['aliases'].split(':')[0]}", highlight=False)
        if res["refused"] or res["aliases"].startswith("refused"):
            raise typer.Exit(1)
