"""`creditrisk serve` (the scoring API under uvicorn) and `creditrisk api clients|keys`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

api_app = typer.Typer(help="Scoring API: machine clients and token signing keys.", no_args_is_help=True)
clients_app = typer.Typer(help="Machine clients (OAuth 2.0 client credentials).", no_args_is_help=True)
keys_app = typer.Typer(help="The key ring that signs access tokens.", no_args_is_help=True)
api_app.add_typer(clients_app, name="clients")
api_app.add_typer(keys_app, name="keys")
AS_HELP = "Act as this user (an admin); proven by their CLI token or a password prompt"
CONFIGURED_RING = ("The key ring comes from CREDITRISK_API__SIGNING_KEYS: change it in your secret store "
                   "(`creditrisk api keys rotate --print` prints a rotated ring to paste there).")


WORKER_START_S = 120  # seconds a worker may take to start (imports, model, kernels) or to answer a health check


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes", min=1, max=64)] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run the scoring API (OpenAPI docs at /docs). The schema is migrated and the key ring loaded first."""
    import uvicorn

    from backend.api.logconfig import log_config
    from backend.identity import KeyRingError, load_key_ring
    from backend.platform.cli import fail, out, services

    if log_level not in ("debug", "info", "warning", "error"):
        fail("--log-level must be debug, info, warning or error")
    svc = services(migrate=True)  # once, before the workers start
    try:
        ring = load_key_ring(svc.settings)  # creates the dev ring once, so workers share it
    except KeyRingError as exc:
        fail(str(exc))
        return
    finally:
        svc.close()
    out.print(f"creditrisk API on http://{host}:{port} ({workers} worker(s)); docs at /docs; "
              f"signing key {ring.active}", highlight=False, soft_wrap=True)
    # With several workers uvicorn's supervisor pings each one and kills any that has not answered within
    # timeout_worker_healthcheck (5 s by default): a worker spends longer than that importing the product and
    # loading the model, so every worker was killed while starting, again and again, and none ever served.
    uvicorn.run("backend.api:create_app", factory=True, host=host, port=port, workers=workers,
                log_config=log_config(log_level), log_level=log_level, access_log=False, server_header=False,
                proxy_headers=False,  # forwarded headers: only from api.trusted_proxies (see create_app)
                timeout_worker_healthcheck=WORKER_START_S)


@clients_app.command("add")
def clients_add(
    name: str,
    role: Annotated[str, typer.Option(help="The role the client acts with (its access level)")] = "loan_officer",
    scopes: Annotated[str, typer.Option(help="Comma-separated: score, decisions:read, explain")] = "score",
    as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
) -> None:
    """Create a machine client (admins); its secret is printed once (only a hash is stored)."""
    from backend.domain import Perm
    from backend.identity import ClientError
    from backend.platform.cli import guarded, out, require, services

    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "creating an API client", as_user)
    clients = svc.api_clients
    info, secret = guarded(lambda: clients.add(name, role=role, scopes=scopes.split(","),
                                               actor=actor.username), ClientError)
    out.print(f"created client {info.name} ({info.role}; scopes {' '.join(info.scopes)})", highlight=False)
    out.print(f"client_id     {info.client_id}", highlight=False)
    out.print(f"client_secret {secret}   (shown once: store it now)", highlight=False, soft_wrap=True)


@clients_app.command("list")
def clients_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List machine clients (never their secrets)."""
    from backend.platform.cli import out, services

    rows = services().api_clients.list()
    if as_json:
        out.print_json(json.dumps([{"client_id": c.client_id, "name": c.name, "role": c.role, "scopes": c.scopes,
                                    "created_at": c.created_at, "revoked_at": c.revoked_at} for c in rows], default=str))
        return
    table = Table("name", "client_id", "role", "scopes", "created", "state")
    for c in rows:
        table.add_row(c.name, c.client_id, c.role, " ".join(c.scopes), f"{c.created_at:%Y-%m-%d}",
                      "active" if c.active else f"[red]revoked {c.revoked_at:%Y-%m-%d}[/]")
    out.print(table)


@clients_app.command("revoke")
def clients_revoke(ref: Annotated[str, typer.Argument(help="Client name or client_id")],
                   as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None) -> None:
    """Revoke a client (admins): its tokens are refused at once (within the API's short status cache)."""
    from backend.domain import Perm
    from backend.identity import ClientError
    from backend.platform.cli import guarded, out, require, services

    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "revoking an API client", as_user)
    info = guarded(lambda: svc.api_clients.revoke(ref, actor=actor.username), ClientError)
    out.print(f"revoked {info.name} ({info.client_id})", highlight=False)


@keys_app.command("list")
def keys_list() -> None:
    """The key ring's key ids; the active one signs, all verify."""
    from backend.identity import KeyRingError, load_key_ring
    from backend.platform.cli import fail, out, settings

    try:
        ring = load_key_ring(settings())
    except KeyRingError as exc:
        fail(str(exc))
        return
    for kid, key in ring.keys.items():
        role = "signs and verifies" if kid == ring.active else "verifies" + ("" if key.private else " (public only)")
        out.print(f"{kid}  {key.alg}  {role}", highlight=False)


@keys_app.command("rotate")
def keys_rotate(
    alg: Annotated[str, typer.Option(help="ES256 or EdDSA")] = "ES256",
    print_ring: Annotated[bool, typer.Option("--print", help="Print the rotated ring (JSON) instead of saving")] = False,
) -> None:
    """Add a new signing key and make it active; older keys keep verifying until removed. Restart the API."""
    from backend.identity import KeyRingError, key_file, load_key_ring, write_key_file
    from backend.platform.cli import fail, guarded, out, settings

    cfg = settings()
    ring = guarded(lambda: load_key_ring(cfg).rotated(alg), KeyRingError)
    if print_ring:
        print(ring.to_json())  # noqa: T201 - meant for a secret store, not for the terminal's markup
        return
    if cfg.api.signing_keys.get_secret_value().strip():
        fail(CONFIGURED_RING)
    write_key_file(key_file(cfg), ring, replace=True)
    out.print(f"new signing key {ring.active}; {len(ring.keys)} keys verify. Restart the API to use it.",
              highlight=False)


@keys_app.command("remove")
def keys_remove(kid: str) -> None:
    """Remove a retired key: tokens it signed stop verifying. Restart the API."""
    from backend.identity import KeyRingError, key_file, load_key_ring, write_key_file
    from backend.platform.cli import fail, guarded, out, settings

    cfg = settings()
    if cfg.api.signing_keys.get_secret_value().strip():
        fail(CONFIGURED_RING)
    ring = guarded(lambda: load_key_ring(cfg).without(kid), KeyRingError)
    write_key_file(key_file(cfg), ring, replace=True)
    out.print(f"removed {kid}; {len(ring.keys)} key(s) left. Restart the API.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(api_app, name="api")
