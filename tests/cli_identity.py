"""Proof of identity for CLI tests: a CLI token issued for a user, written with mode 0600 to a file that
``CREDITRISK_CLI_TOKEN_FILE`` names (what `creditrisk users cli-token issue --out` does for a person)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from backend.domain import Actor
from backend.platform.cli import TOKEN_FILE_ENV

ISSUER = Actor("test-admin", "admin")


def sign_in(svc: Any, username: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Issue ``username`` a CLI token and point the command line at it; returns the token."""
    user = svc.users.get(username)
    assert user is not None, username
    # long-lived: the test's services may run on a simulated clock far from the command line's system clock
    token = str(svc.auth.issue_cli_token(user, days=3650, issued_by=ISSUER))
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    monkeypatch.setenv(TOKEN_FILE_ENV, str(path))
    return token


def sign_in_as_named(svc: Any, args: list[str], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before a command with ``--as NAME``: a CLI token of NAME (when NAME exists), else none."""
    if "--as" in args and svc.users.get(args[args.index("--as") + 1]) is not None:
        sign_in(svc, args[args.index("--as") + 1], path, monkeypatch)
    else:
        monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
