"""What every feature's commands share: the consoles, one-line errors, and the services they act on.

Features register their commands on the root command (``backend.cli``) with ``register(app)``. They
reach the configured services through :func:`services`, which calls the factory the root command
installed (the composition root's ``build_services``): features never import the container.
"""

from __future__ import annotations

import getpass
import math
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from backend.domain import Actor
from backend.platform.ports import ProgressCallback

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

#: Installed by the root command: ``settings()`` and ``services(migrate)`` of the composition root.
_settings_factory: Callable[[], Any] | None = None
_services_factory: Callable[[bool], Any] | None = None
_settings_errors: tuple[type[Exception], ...] = ()
_opened: list[Any] = []  # the services built by the running command, closed by close_opened()


def install(settings_factory: Callable[[], Any], services_factory: Callable[[bool], Any],
            settings_errors: tuple[type[Exception], ...]) -> None:
    """Called once by the root command with the composition root's factories."""
    global _settings_factory, _services_factory, _settings_errors
    _settings_factory, _services_factory, _settings_errors = settings_factory, services_factory, settings_errors


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def settings() -> Any:
    """The settings, or one line naming the malformed variable (exit 2)."""
    if _settings_factory is None:  # pragma: no cover - the root command installs it at import
        raise RuntimeError("backend.cli was not imported: no settings factory installed")
    try:
        return _settings_factory()
    except _settings_errors as exc:
        fail(str(exc))
        raise  # unreachable


def services(migrate: bool = True) -> Any:
    """The services bundle built from the settings, or one clear line when a backend cannot be opened."""
    if _services_factory is None:  # pragma: no cover - the root command installs it at import
        raise RuntimeError("backend.cli was not imported: no services factory installed")
    cfg = settings()
    try:
        svc = _services_factory(migrate) if cfg is not None else None
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        fail(f"cannot open the backends: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    if svc is not None:
        _opened.append(svc)
    return svc


def close_opened() -> None:
    """Close the services this command opened (the root command calls it when the command ends: a SQLite book
    then folds its write-ahead log back into the file and removes it, and metrics are flushed)."""
    while _opened:
        svc = _opened.pop()
        try:
            svc.close()
        except Exception as exc:  # noqa: BLE001 - the command's own outcome stands; say what was not closed
            err.print(f"[yellow]warning:[/] closing the backends failed: {type(exc).__name__}: {exc}",
                      highlight=False)


def guarded(fn: Callable[[], T], *errors: type[Exception]) -> T:
    try:
        return fn()
    except errors as exc:
        fail(str(exc))
        raise  # unreachable


def progress_bar(description: str, *, console: Console | None = None) -> ProgressCallback:
    """The CLI's one progress style: a :data:`~backend.platform.ports.ProgressCallback` drawn with rich (on
    stderr, so ``--json`` output stays clean). The bar appears at the first report, shows the step just
    done, and closes when ``done`` reaches ``total``; a later report starts a new bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    state: dict[str, Any] = {}

    def report(step: str, done: int, total: int) -> None:
        bar: Progress | None = state.get("bar")
        if bar is None:
            bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TextColumn("{task.fields[step]}", markup=False), console=console or err,
                           auto_refresh=False)  # redrawn on each report: no refresh thread to leave behind
            bar.start()
            state["bar"], state["task"] = bar, bar.add_task(description, total=total, step="")
        bar.update(state["task"], completed=done, total=total, step=step)
        bar.refresh()
        if done >= total:
            bar.stop()
            state.clear()

    return report


def os_login() -> str:
    """``cli:<login>``: how commands run without a proven user are attributed in the audit trail (a claim
    of the environment, not a proof: :func:`operator` gives such an actor no role once an admin exists)."""
    return f"cli:{getpass.getuser()}"[:64]


# -- who runs a command: a proven user ------------------------------------------------------------------
#: The file holding the caller's CLI token (``creditrisk users cli-token issue``): readable by its owner only.
TOKEN_FILE_ENV = "CREDITRISK_CLI_TOKEN_FILE"  # noqa: S105 - the name of a variable
DEFAULT_TOKEN_FILE = "~/.config/creditrisk/cli-token"  # noqa: S105 - a path
PROOF_HELP = ("sign in with a CLI token issued by an admin (`creditrisk users cli-token issue NAME --out FILE`, "
              f"file mode 0600, in {DEFAULT_TOKEN_FILE} or ${TOKEN_FILE_ENV}) or name yourself with --as NAME "
              "(password prompt)")


def token_path() -> Path:
    return Path(os.environ.get(TOKEN_FILE_ENV) or DEFAULT_TOKEN_FILE).expanduser()


def _read_token(path: Path) -> str | None:
    """The token in ``path``; None when there is no such file. A file another account owns, or that
    others may read or write, is refused (its token may be known to them)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        fail(f"cannot read the CLI token file {path}: {exc.strerror} (a symbolic link is refused)")
        raise  # unreachable
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        fail(f"the CLI token file {path} is not a regular file")
    with os.fdopen(fd) as fh:
        if st.st_uid != os.geteuid():
            fail(f"the CLI token file {path} belongs to another account")
        if st.st_mode & 0o077:
            fail(f"the CLI token file {path} may be read by others (mode {stat.S_IMODE(st.st_mode):o}): "
                 f"ask an admin to revoke it and issue a new one, and keep it with chmod 600")
        token = fh.read(4096).strip()
    return token or None


def signed_in(svc: Any) -> Actor | None:
    """The user the CLI token file proves, or None without a file. A token that is expired, revoked, or
    whose user is disabled stops the command (exit 2), rather than running it unproven."""
    path = token_path()
    token = _read_token(path)
    if token is None:
        return None
    user: Actor | None = svc.auth.validate(token)
    if user is None:
        fail(f"the CLI token in {path} is expired or revoked, or its user is disabled: ask an admin for a new one")
    return user


def prove(svc: Any, username: str) -> Actor:
    """``username``, proven now: by the CLI token file when it is theirs, else by their password (prompted,
    not echoed; checked like a console login: throttled, audited) and, for an account with a second factor,
    its one-time code (prompted after the password). Anything else stops the command (exit 2)."""
    name = svc.users.normalize(username)
    current = signed_in(svc)
    if current is not None:
        if current.username == name:
            return current
        fail(f"the CLI token in {token_path()} is {current.username}'s: it cannot act as {name}")
    try:
        password = typer.prompt(f"Password for {name}", hide_input=True, err=True)
    except (typer.Abort, EOFError):
        fail(f"acting as {name} needs proof: {PROOF_HELP}")
        raise  # unreachable
    client = os_login()
    result = svc.auth.authenticate(name, password, client=client, two_step=True)
    if result.reason == "mfa_pending":  # the password is right; the second factor decides
        if result.needs != "code":
            fail("this account must set up its second factor first: sign in to the console once to enrol "
                 "an authenticator app")
        try:
            code = typer.prompt(f"One-time code for {name} (or a recovery code)", hide_input=True, err=True)
        except (typer.Abort, EOFError):
            fail(f"acting as {name} needs its one-time code too: {PROOF_HELP}")
            raise  # unreachable
        result = svc.auth.second_factor(result.ticket, code, client=client)
    if not result.ok or result.user is None:
        fail(result.message)
    return result.user  # type: ignore[no-any-return]


def bootstrapping(svc: Any) -> bool:
    """No enabled administrator exists yet (a fresh install): the operator sets up the first one."""
    return not svc.users.has_admin()


def operator(svc: Any, *, role_without_proof: str = "") -> Actor:
    """Who runs a command that names nobody: the user of the CLI token file; else the operating-system
    login (``cli:<login>``, unproven), which holds ``role_without_proof`` only while no admin exists
    (bootstrap) and no role after that, so every permission check refuses it."""
    user = signed_in(svc)
    if user is not None:
        return user
    return Actor(os_login(), role_without_proof if bootstrapping(svc) else "")


def require(svc: Any, perm: Any, what: str, as_user: str | None = None) -> Actor:
    """The proven actor allowed ``perm`` (``--as NAME``, the CLI token, or the bootstrap operator), or exit 2."""
    from backend.domain import allowed

    actor = prove(svc, as_user) if as_user else operator(svc, role_without_proof="admin")
    if not allowed(actor.role, perm):
        who = actor.username if actor.role else f"{actor.username} (not proven)"
        fail(f"{what} needs a user allowed to {perm}; {who} is not. To act as one, {PROOF_HELP}.")
    return actor


#: Commands run without a named user act as this operator with the risk manager's view (every officer's
#: applications), attributed to the operating-system login.
CLI_ACTOR_ID = uuid.UUID(int=0)
CLI_ROLE = "risk_manager"


def cli_actor(svc: Any = None) -> Actor:
    """Who reads through the command line: with ``svc``, the CLI token's user (their own view), else the
    operator with the risk manager's view only while no admin exists (bootstrap), after that with none."""
    if svc is not None:
        user = signed_in(svc)
        if user is not None:
            return user
        if not bootstrapping(svc):
            return Actor(os_login(), "", None, "command line (not proven)")
    return Actor(os_login(), CLI_ROLE, CLI_ACTOR_ID, "command line")


def acting(svc: Any, name: str | None, *, role_without_name: str = "ml_engineer") -> Actor:
    """Who a command acts as: the user named by ``--as``, proven (:func:`prove`: their CLI token or their
    password); without ``--as`` the CLI token's user, else the operating-system login, with
    ``role_without_name`` only on an install without an admin yet (:func:`operator`)."""
    svc = svc if svc is not None else services()
    if name:
        return prove(svc, name)
    return operator(svc, role_without_proof=role_without_name)


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN and infinities as ``None`` (JSON has no such numbers)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def metric(v: Any) -> str:
    """A metric for a table: three decimals, or an en dash when there is none."""
    return f"{v:.3f}" if isinstance(v, int | float) and math.isfinite(v) else "–"
