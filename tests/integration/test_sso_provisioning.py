"""Single sign-on against the real database (SQLite and PostgreSQL): just-in-time provisioning, role
changes, refusals, and that every outcome is audited in the same transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from backend.compliance.audit_queries import AuditRepository
from backend.identity.config import SsoSettings
from backend.identity.queries import UserRepository
from backend.identity.sso import (
    ACCOUNT_DISABLED,
    IDENTITY_EXPIRED,
    NO_MAPPED_GROUP,
    USERNAME_TAKEN,
    SsoService,
    is_sso_account,
)

ISSUER = "https://idp.example"
CFG = SsoSettings(enabled=True, provider="okta", server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
                  client_id="console", client_secret="client-secret", cookie_secret="c" * 40,
                  redirect_uri="https://console.example/oauth2callback", senior_groups=["senior-officers"],
                  group_roles={"creditrisk-officers": "loan_officer", "creditrisk-risk": "risk_manager"})


@pytest.fixture
def sso(services: Any) -> SsoService:
    return SsoService(services.db, CFG, services.clock)


def _claims(services: Any, groups: list[str], **kw: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "sub": "00u-olivia", "preferred_username": "olivia.okafor", "name": "Olivia Okafor",
            "email": "olivia.okafor@bank.example", "groups": groups, "iat": int(services.clock.now().timestamp()),
            "is_logged_in": True, "provider": "okta"}
    return {**base, **kw}


def _audit(services: Any, actor: str) -> list[tuple[str, dict[str, Any]]]:
    with services.db.read() as s:
        return [(r.action, dict(r.payload)) for r in reversed(AuditRepository(s).recent(50, actor=actor))]


def test_first_sign_in_provisions_the_user_who_can_never_use_a_password(services: Any, sso: SsoService) -> None:
    out = sso.sign_in(_claims(services, ["all-staff", "creditrisk-officers", "senior-officers"]), client="10.0.0.7")
    assert out.ok and out.user is not None and out.reason == "ok"
    assert (out.user.username, out.user.role, out.user.display_name, out.user.senior) == \
        ("olivia.okafor", "loan_officer", "Olivia Okafor", True)
    with services.db.read() as s:
        row = UserRepository(s).by_username("olivia.okafor")
        assert row is not None and is_sso_account(row.password_hash) and not row.disabled
    acts = _audit(services, "olivia.okafor")
    assert [a for a, _ in acts] == ["sso_user_provisioned", "sso_login"]
    assert acts[0][1]["role"] == "loan_officer" and acts[0][1]["groups"] == ["all-staff", "creditrisk-officers",
                                                                            "senior-officers"]
    assert acts[1][1]["client"] == "10.0.0.7" and acts[1][1]["provider"] == "okta"

    for guess in ("", "olivia.okafor", out.user.username, "sso$"):
        assert not services.auth.authenticate("olivia.okafor", guess, client="t").ok
    assert services.auth.validate(services.auth.start_session(out.user)) == out.user  # the page guards' user


def test_a_new_group_changes_the_role_on_the_next_sign_in(services: Any, sso: SsoService) -> None:
    assert sso.sign_in(_claims(services, ["creditrisk-officers"])).ok
    out = sso.sign_in(_claims(services, ["creditrisk-risk"], name="Olivia Okafor-Chen"))
    assert out.ok and out.user is not None
    assert (out.user.role, out.user.display_name) == ("risk_manager", "Olivia Okafor-Chen")
    acts = _audit(services, "olivia.okafor")
    assert [a for a, _ in acts] == ["sso_user_provisioned", "sso_login", "sso_role_changed", "sso_login"]
    change = acts[2][1]
    assert (change["from_role"], change["to_role"]) == ("loan_officer", "risk_manager")
    assert sso.sign_in(_claims(services, ["creditrisk-risk"])).ok  # unchanged: no role row
    assert [a for a, _ in _audit(services, "olivia.okafor")].count("sso_role_changed") == 1


def test_unmapped_or_ambiguous_groups_are_refused_and_audited(services: Any, sso: SsoService) -> None:
    cases = [(["marketing"], "no_mapped_group"), (["creditrisk-officers", "creditrisk-risk"], "ambiguous_groups")]
    for groups, reason in cases:
        out = sso.sign_in(_claims(services, groups))
        assert not out.ok and out.user is None and out.reason == reason
    assert out.message.startswith("Sign-in refused: your groups map to more than one console role (Loan officer, ")
    assert sso.sign_in(_claims(services, ["marketing"])).message == NO_MAPPED_GROUP
    assert services.users.get("olivia.okafor") is None
    acts = _audit(services, "olivia.okafor")
    assert [(a, p["reason"]) for a, p in acts] == [("sso_login_refused", "no_mapped_group"),
                                                   ("sso_login_refused", "ambiguous_groups"),
                                                   ("sso_login_refused", "no_mapped_group")]
    assert acts[1][1]["groups"] == ["creditrisk-officers", "creditrisk-risk"]


def test_a_local_password_account_or_another_identity_is_never_taken_over(services: Any, sso: SsoService) -> None:
    services.users.add("olivia.okafor", role="admin", password="correct horse battery staple")
    out = sso.sign_in(_claims(services, ["creditrisk-officers"]))
    assert not out.ok and out.reason == "local_account"
    assert out.message == USERNAME_TAKEN.format(username="olivia.okafor")
    assert services.users.get("olivia.okafor").role == "admin"  # unchanged
    assert services.auth.authenticate("olivia.okafor", "correct horse battery staple", client="t").ok

    assert sso.sign_in(_claims(services, ["creditrisk-officers"], preferred_username="omar", sub="00u-omar")).ok
    other = sso.sign_in(_claims(services, ["creditrisk-risk"], preferred_username="omar", sub="00u-impostor"))
    assert not other.ok and other.reason == "username_taken"
    assert services.users.get("omar").role == "loan_officer"
    assert ("sso_login_refused", "username_taken") in [(a, p.get("reason")) for a, p in _audit(services, "omar")]


def test_disabled_accounts_and_old_identities_are_refused(services: Any, sso: SsoService) -> None:
    assert sso.sign_in(_claims(services, ["creditrisk-officers"])).ok
    services.users.set_disabled("olivia.okafor", True)
    out = sso.sign_in(_claims(services, ["creditrisk-officers"]))
    assert not out.ok and out.reason == "disabled" and out.message == ACCOUNT_DISABLED

    old = int((services.clock.now() - timedelta(hours=CFG.max_identity_age_hours + 1)).timestamp())
    stale = sso.sign_in(_claims(services, ["creditrisk-officers"], sub="00u-x", preferred_username="xavier", iat=old))
    assert not stale.ok and stale.reason == "identity_expired" and stale.message == IDENTITY_EXPIRED
    no_iat = _claims(services, ["creditrisk-officers"], sub="00u-y", preferred_username="yara")
    del no_iat["iat"]
    assert sso.sign_in(no_iat).reason == "identity_expired"
    assert services.users.get("xavier") is None and services.users.get("yara") is None


# -- `creditrisk sso write-secrets|check` ---------------------------------------------------------------
def _fake_provider_class() -> Any:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "browser" / "fake_oidc.py"
    spec = importlib.util.spec_from_file_location("fake_oidc_for_cli", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module.FakeOidcProvider


def test_cli_writes_and_checks_streamlit_secrets(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import stat
    import tomllib

    from typer.testing import CliRunner

    from backend.cli import app
    from backend.identity.sso_secrets import SSO_DISABLED

    for k in list(os.environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    runner = CliRunner()
    res = runner.invoke(app, ["sso", "write-secrets"])
    assert res.exit_code == 2 and SSO_DISABLED.split(" (")[0] in res.output

    provider = _fake_provider_class()().start()
    try:
        env = {"ENABLED": "true", "PROVIDER": "okta", "SERVER_METADATA_URL": provider.metadata_url,
               "CLIENT_ID": provider.client_id, "CLIENT_SECRET": provider.client_secret, "COOKIE_SECRET": "k" * 40,
               "REDIRECT_URI": "https://console.example/oauth2callback",
               "GROUP_ROLES": '{"creditrisk-officers": "loan_officer"}'}
        for k, v in env.items():
            monkeypatch.setenv(f"CREDITRISK_SSO__{k}", v)
        res = runner.invoke(app, ["sso", "write-secrets"])
        assert res.exit_code == 0, res.output
        path = tmp_path / ".streamlit" / "secrets.toml"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert tomllib.loads(path.read_text())["auth"]["okta"]["client_id"] == provider.client_id
        assert provider.client_secret not in res.output

        res = runner.invoke(app, ["sso", "check"])
        assert res.exit_code == 0 and f"issuer {provider.issuer}" in res.output, res.output
        assert "'creditrisk-officers' -> loan_officer" in res.output

        monkeypatch.setenv("CREDITRISK_SSO__CLIENT_SECRET", "rotated-secret")
        res = runner.invoke(app, ["sso", "check"])
        assert res.exit_code == 1 and "auth.okta.client_secret" in res.output and "rotated" not in res.output
    finally:
        provider.stop()
    monkeypatch.setenv("CREDITRISK_SSO__CLIENT_SECRET", provider.client_secret)
    res = runner.invoke(app, ["sso", "check"])  # the provider is gone
    assert res.exit_code == 1 and "cannot read the discovery document" in res.output
