"""`creditrisk sso write-secrets|check`: the console's single sign-on (OpenID Connect through st.login)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from backend.identity.sso_secrets import DEFAULT_SECRETS_PATH

sso_app = typer.Typer(help="Console single sign-on (OpenID Connect): write Streamlit's auth secrets, check them.",
                      no_args_is_help=True)
PATH_HELP = "The secrets.toml Streamlit reads (default .streamlit/secrets.toml; git-ignored, mode 0600)"
DISCOVERY_TIMEOUT = 5.0


@sso_app.command("write-secrets")
def write_secrets(path: Annotated[Path, typer.Option(help=PATH_HELP)] = DEFAULT_SECRETS_PATH) -> None:
    """Write the auth table st.login needs from CREDITRISK_SSO__* (other content of the file is kept)."""
    from backend.identity.sso_secrets import SecretsError
    from backend.identity.sso_secrets import write_secrets as write
    from backend.platform.cli import fail, out, settings

    cfg = settings().sso
    try:
        written = write(cfg, path)
    except SecretsError as exc:
        fail(escape(str(exc)))
        return
    out.print(f"wrote [auth] and [auth.{cfg.provider}] to {written} (mode 0600); restart the console to load it",
              highlight=False, soft_wrap=True, markup=False)


@sso_app.command("check")
def check(path: Annotated[Path, typer.Option(help=PATH_HELP)] = DEFAULT_SECRETS_PATH) -> None:
    """Compare the secrets file with the settings and fetch the provider's discovery document."""
    import httpx

    from backend.identity.sso_secrets import SSO_DISABLED, mismatches
    from backend.platform.cli import fail, out, settings

    cfg = settings().sso
    if not cfg.enabled:
        fail(SSO_DISABLED)
    try:
        loaded = tomllib.loads(path.read_text(encoding="utf-8")).get("auth") if path.exists() else None
    except tomllib.TOMLDecodeError as exc:
        fail(escape(f"{path} is not valid TOML: {exc}"))
        return
    diff = mismatches(cfg, loaded)
    if diff:
        fail(escape(f"{path} does not match the settings ({', '.join(diff)}): run `creditrisk sso write-secrets`"), code=1)
    try:
        resp = httpx.get(cfg.server_metadata_url, timeout=DISCOVERY_TIMEOUT)
        resp.raise_for_status()
        meta = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        fail(escape(f"cannot read the discovery document {cfg.server_metadata_url}: {type(exc).__name__}: {exc}"),
             code=1)
        return
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri") if not meta.get(k)]
    if missing:
        fail(f"the discovery document lacks {', '.join(missing)}", code=1)
    out.print(f"ok: {path} matches the settings; provider {cfg.provider!r} issuer {meta['issuer']}", highlight=False,
              soft_wrap=True, markup=False)
    for group, role in sorted(cfg.group_roles.items()):
        out.print(f"  group {group!r} -> {role}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(sso_app, name="sso")
