"""The command line acts as a named user who proves it: a CLI token (issued by an admin, in a file only
its owner may read) or the user's password (prompted). Audit rows name that user; changes that need a
role are refused without one. Before the first admin exists, the operator bootstraps one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli_identity import sign_in
from typer.testing import CliRunner

from backend.cli import app
from backend.domain import Actor
from backend.platform.cli import TOKEN_FILE_ENV

PW = "a long enough password"
runner = CliRunner()


def run(*args: str, input: str | None = None):  # noqa: A002 - CliRunner's name
    res = runner.invoke(app, list(args), input=input)
    res.flat = " ".join(res.output.split())
    return res


@pytest.fixture
def svc(cli_env):
    """A fresh install (SQLite under tmp) with an admin ``ada`` and an officer ``olivia``; the same database
    the commands open."""
    from backend.container import build_services, load_settings

    s = build_services(load_settings(), migrate=True)
    s.users.add("ada", role="admin", password=PW)
    s.users.add("olivia", role="loan_officer", password=PW)
    try:
        yield s
    finally:
        s.close()


def _audit(svc, action: str) -> list[dict]:
    return [r for r in svc.audit.recent(200) if r["action"] == action]


def _users(svc) -> set[str]:
    return {u["username"] for u in svc.users.list()}


def test_an_unproven_operator_cannot_create_an_admin(svc, monkeypatch):
    monkeypatch.setenv("LOGNAME", "ada")  # what getpass reads first: anyone can set it
    monkeypatch.setenv("USER", "ada")
    res = run("users", "add", "shadowadmin", "--role", "admin")
    assert res.exit_code == 2 and "manage_users" in res.flat and "cli:ada (not proven)" in res.flat
    assert "shadowadmin" not in _users(svc)
    assert [r["payload"]["username"] for r in _audit(svc, "user_created")] == ["olivia", "ada"]  # the fixture's


def test_a_wrong_password_or_someone_elses_token_is_refused(svc, cli_env, monkeypatch):
    res = run("users", "add", "shadowadmin", "--role", "admin", "--as", "ada", input="guess\n")
    assert res.exit_code == 2 and "Login failed" in res.flat
    assert _audit(svc, "login_failed")[0]["actor"] == "ada"  # the guess is audited and throttled like a login
    sign_in(svc, "olivia", cli_env / "olivia.token", monkeypatch)
    res = run("users", "add", "shadowadmin", "--role", "admin")  # an officer's token: no such permission
    assert res.exit_code == 2 and "olivia is not" in res.flat
    res = run("users", "add", "shadowadmin", "--role", "admin", "--as", "ada")  # olivia's token is not ada's
    assert res.exit_code == 2 and "olivia's: it cannot act as ada" in res.flat
    assert "shadowadmin" not in _users(svc)


def test_an_admin_proven_by_password_or_token_is_named_in_the_audit(svc, cli_env, monkeypatch):
    res = run("users", "add", "carol", "--role", "risk_manager", "--as", "ada", input=f"{PW}\n")
    assert res.exit_code == 0, res.output
    created = _audit(svc, "user_created")[0]
    assert (created["actor"], created["role"]) == ("ada", "admin")
    sign_in(svc, "ada", cli_env / "ada.token", monkeypatch)
    assert run("users", "disable", "carol").exit_code == 0
    disabled = _audit(svc, "user_disabled")[0]
    assert (disabled["actor"], disabled["role"]) == ("ada", "admin")
    res = run("api", "clients", "add", "los", "--scopes", "score")
    assert res.exit_code == 0, res.output
    assert _audit(svc, "api_client_created")[0]["actor"] == "ada"
    who = run("whoami")
    assert who.exit_code == 0 and "ada (admin)" in who.flat


def test_admins_issue_tokens_into_private_files_and_revoking_ends_them(svc, cli_env, monkeypatch):
    path = cli_env / "tokens" / "olivia"
    assert run("users", "cli-token", "issue", "olivia", "--out", str(path)).exit_code == 2  # unproven
    res = run("users", "cli-token", "issue", "olivia", "--out", str(path), "--as", "ada", input=f"{PW}\n")
    assert res.exit_code == 0, res.output
    assert (path.stat().st_mode & 0o777) == 0o600 and path.read_text().startswith("crcli_")
    issued = _audit(svc, "cli_token_issued")[0]
    assert issued["actor"] == "ada" and issued["payload"]["username"] == "olivia"
    monkeypatch.setenv(TOKEN_FILE_ENV, str(path))
    assert "olivia (loan_officer)" in run("whoami").flat
    monkeypatch.delenv(TOKEN_FILE_ENV)
    assert run("users", "cli-token", "revoke", "olivia", "--as", "ada", input=f"{PW}\n").exit_code == 0
    monkeypatch.setenv(TOKEN_FILE_ENV, str(path))
    res = run("whoami")
    assert res.exit_code == 2 and "expired or revoked" in res.flat


def test_a_disabled_users_token_stops_working(svc, cli_env, monkeypatch):
    sign_in(svc, "olivia", cli_env / "t", monkeypatch)
    svc.users.set_disabled("olivia", True, actor=Actor("ada", "admin"))
    res = run("whoami")
    assert res.exit_code == 2 and "disabled" in res.flat


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_token_file_others_may_read_or_write_is_refused(svc, cli_env, monkeypatch, mode):
    path = cli_env / "t"
    sign_in(svc, "ada", path, monkeypatch)
    os.chmod(path, mode)
    res = run("users", "add", "x-user", "--role", "admin")
    assert res.exit_code == 2 and "may be read by others" in res.flat
    assert "x-user" not in _users(svc)


def test_a_symlinked_empty_or_foreign_token_file_is_refused(svc, cli_env, monkeypatch):
    real = cli_env / "real"
    sign_in(svc, "ada", real, monkeypatch)
    link = cli_env / "link"
    link.symlink_to(real)
    monkeypatch.setenv(TOKEN_FILE_ENV, str(link))
    assert run("whoami").exit_code == 2
    monkeypatch.setenv(TOKEN_FILE_ENV, str(cli_env))  # a directory
    assert run("whoami").exit_code == 2
    forged = cli_env / "forged"
    forged.write_text("crcli_" + "A" * 43)
    forged.chmod(0o600)
    monkeypatch.setenv(TOKEN_FILE_ENV, str(forged))
    res = run("users", "add", "x-user", "--role", "admin")
    assert res.exit_code == 2 and "expired or revoked" in res.flat
    if os.geteuid() == 0 and shutil.which("runuser"):
        shutil.chown(real, "postgres")
        monkeypatch.setenv(TOKEN_FILE_ENV, str(real))
        res = run("whoami")
        assert res.exit_code == 2 and "belongs to another account" in res.flat
    assert "x-user" not in _users(svc)


def test_without_proof_the_operator_is_the_os_login_with_no_role(svc, cli_env, monkeypatch):
    from backend.platform.cli import acting, operator

    monkeypatch.setenv("LOGNAME", "ada")  # claims to be the admin
    assert operator(svc, role_without_proof="admin") == Actor("cli:ada", "")  # an admin exists: no role
    assert acting(svc, None) == Actor("cli:ada", "")  # what `models promote`, `retrain`... act as
    sign_in(svc, "olivia", cli_env / "t", monkeypatch)
    assert operator(svc).username == "olivia" and acting(svc, None).role == "loan_officer"


def test_the_first_admin_is_bootstrapped_then_proof_is_needed(cli_env):
    res = run("users", "add", "root-admin", "--role", "admin", "--password-stdin", input=f"{PW}\n")
    assert res.exit_code == 0, res.output  # a fresh install: nobody to prove anything to yet
    res = run("users", "add", "second-admin", "--role", "admin")
    assert res.exit_code == 2 and "manage_users" in res.flat
    res = run("users", "add", "second-admin", "--role", "admin", "--as", "root-admin", input=f"{PW}\n")
    assert res.exit_code == 0, res.output
    from backend.container import build_services, load_settings

    s = build_services(load_settings(), migrate=False)
    try:
        rows = [r for r in s.audit.recent(50) if r["action"] == "user_created"]
        assert [r["actor"] for r in rows] == ["root-admin", f"cli:{__import__('getpass').getuser()}"[:64]]
    finally:
        s.close()


def test_the_token_file_path_defaults_under_the_home_directory(monkeypatch, tmp_path):
    from backend.platform.cli import token_path

    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert token_path() == Path(tmp_path) / ".config" / "creditrisk" / "cli-token"


def test_reading_decisions_or_finding_applicants_needs_a_proven_user_once_an_admin_exists(svc, cli_env, monkeypatch):
    res = run("explain", "--decision", "00000000-0000-0000-0000-000000000000")
    assert res.exit_code == 2 and "needs a proven user" in res.flat
    res = run("pii", "find", input="CUS-000123\n")
    assert res.exit_code == 2 and "needs a proven user" in res.flat
    sign_in(svc, "ada", cli_env / "t", monkeypatch)  # an admin may search applicants (with an audit row)
    res = run("pii", "find", input="CUS-000123\n")
    assert res.exit_code == 0, res.output
