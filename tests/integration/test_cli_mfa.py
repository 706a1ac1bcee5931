"""The command line's password prompt asks for the one-time code of an account with a second factor, and
`creditrisk users mfa-reset` (admins, never their own) forgets a factor, audited."""

from __future__ import annotations

import pytest
from mfa_helpers import MFA_ENV, code_at, enrol
from typer.testing import CliRunner

from backend.cli import app

PW = "a long enough password"
runner = CliRunner()


def run(*args: str, input: str | None = None):  # noqa: A002 - CliRunner's name
    res = runner.invoke(app, list(args), input=input)
    res.flat = " ".join(res.output.split())
    return res


@pytest.fixture
def svc(cli_env, monkeypatch):
    from backend.container import build_services, load_settings

    monkeypatch.setenv(MFA_ENV, "true")
    s = build_services(load_settings(), migrate=True)
    for name, role in (("ada", "admin"), ("bob", "admin"), ("olivia", "loan_officer")):
        s.users.add(name, role=role, password=PW)
    try:
        yield s
    finally:
        s.close()


def _last(svc, action):
    return next(r for r in svc.audit.recent(50) if r["action"] == action)


def test_password_prompt_then_code_prompt(svc):
    secret, codes = enrol(svc, "ada", PW)
    res = run("users", "disable", "olivia", "--as", "ada", input=f"{PW}\n{code_at(secret, steps=1)}\n")
    assert res.exit_code == 0, res.output
    assert "One-time code for ada" in res.output
    assert _last(svc, "user_disabled")["actor"] == "ada"
    assert _last(svc, "login_succeeded")["payload"]["second_factor"] == "totp"


@pytest.mark.parametrize("code", ["000000", "", "１２３４５６", "abc"])
def test_a_wrong_code_stops_the_command(svc, code):
    enrol(svc, "ada", PW)
    res = run("users", "disable", "olivia", "--as", "ada", input=f"{PW}\n{code}\n")
    assert res.exit_code != 0
    if code:  # an empty answer ends the prompt (no code, no attempt)
        assert _last(svc, "login_failed")["payload"]["reason"].startswith("mfa_")
    assert not [r for r in svc.audit.recent(50) if r["action"] == "user_disabled"]


def test_recovery_code_at_the_prompt_works_once(svc):
    _, codes = enrol(svc, "ada", PW)
    assert run("users", "disable", "olivia", "--as", "ada", input=f"{PW}\n{codes[0]}\n").exit_code == 0
    res = run("users", "enable", "olivia", "--as", "ada", input=f"{PW}\n{codes[0]}\n")
    assert res.exit_code == 2 and "not accepted" in res.flat


def test_an_account_that_never_enrolled_is_sent_to_the_console(svc):
    res = run("users", "disable", "olivia", "--as", "ada", input=f"{PW}\n")
    assert res.exit_code == 2 and "second factor first" in res.flat


def test_mfa_reset_by_another_admin(svc):
    ada_secret, _ = enrol(svc, "ada", PW)
    bob_secret, _ = enrol(svc, "bob", PW)
    own = run("users", "mfa-reset", "ada", "--as", "ada", input=f"{PW}\n{code_at(ada_secret, steps=1)}\n")
    assert own.exit_code == 2 and "own second factor" in own.flat
    res = run("users", "mfa-reset", "ada", "--as", "bob", input=f"{PW}\n{code_at(bob_secret, steps=1)}\n")
    assert res.exit_code == 0, res.output
    row = _last(svc, "mfa_reset")
    assert row["actor"] == "bob" and row["payload"]["username"] == "ada" and row["payload"]["had_factor"]
    assert "second factor" in run("users", "list").output


def test_demo_users_get_a_second_factor_and_demo_code_prints_it(cli_env, monkeypatch):
    """`creditrisk demo` enrols the demo users whose role requires it; `creditrisk demo-code NAME` gives a code
    that signs them in (once), from the mode-600 file, not from the database."""
    import os
    import stat

    from backend.container import build_services, load_settings
    from backend.simulation.demo import DemoService

    monkeypatch.setenv(MFA_ENV, "true")
    s = build_services(load_settings(), migrate=True)
    try:
        demo = DemoService(s)
        passwords = {u: p for u, _, p in demo.ensure_users()}
        assert demo.ensure_mfa() == ["officer", "officer2", "risk", "mlops", "admin"]  # not the product lead
        assert demo.ensure_mfa() == []  # idempotent
        assert stat.S_IMODE(os.stat(demo.mfa_path).st_mode) == 0o600
        res = run("demo-code", "risk")
        assert res.exit_code == 0, res.output
        code = res.output.split()[0]
        assert s.auth.authenticate("risk", passwords["risk"], code=code).ok
        assert s.auth.authenticate("risk", passwords["risk"], code=code).reason == "mfa_replayed"
        assert s.auth.authenticate("product", passwords["product"]).ok
        assert run("demo-code", "product").exit_code == 2
        assert next(r for r in s.audit.recent(30) if r["action"] == "mfa_provisioned")["actor"] == "demo-setup"
    finally:
        s.close()
