"""Single sign-on, pure parts: claims → one role, usernames, email rules, settings, Streamlit's [auth] secrets."""

from __future__ import annotations

import os
import stat
import tomllib

import pytest
from pydantic import ValidationError

from backend.container.settings import load_settings
from backend.identity.config import BAD_PROVIDER, BAD_REDIRECT, SSO_NO_GROUPS, SsoSettings
from backend.identity.passwords import verify_password
from backend.identity.sso import (
    AMBIGUOUS_GROUPS,
    EMAIL_DOMAIN_REFUSED,
    NO_MAPPED_GROUP,
    SsoRefused,
    groups_of,
    identity_from_claims,
    is_sso_account,
    role_for_groups,
    sso_marker,
    username_from,
)
from backend.identity.sso_secrets import (
    FOREIGN_AUTH,
    SSO_DISABLED,
    SecretsError,
    auth_section,
    mismatches,
    write_secrets,
)
from backend.platform.config import SettingsError

ROLES = {"creditrisk-officers": "loan_officer", "CreditRisk-Risk": "risk_manager", "risk-admins": "risk_manager",
         "creditrisk-product": "product_lead"}
COOKIE = "c" * 40


def _cfg(**kw: object) -> SsoSettings:
    base: dict[str, object] = dict(enabled=True, provider="okta", server_metadata_url="https://idp.example/.well-known/openid-configuration",
                                   client_id="console", client_secret="s3cret-client", cookie_secret=COOKIE,
                                   redirect_uri="https://console.example/oauth2callback", group_roles=ROLES)
    return SsoSettings(**{**base, **kw})  # type: ignore[arg-type]


# -- groups → role -------------------------------------------------------------------------------
def test_one_mapped_group_gives_its_role_and_unmapped_groups_are_ignored() -> None:
    assert role_for_groups(["all-staff", "vpn-users", "creditrisk-officers"], ROLES) == "loan_officer"
    assert role_for_groups(["creditrisk-risk"], ROLES) == "risk_manager"  # case-insensitive match
    assert role_for_groups(["creditrisk-risk", "risk-admins"], ROLES) == "risk_manager"  # two groups, one role


def test_no_mapped_group_and_two_roles_are_refused() -> None:
    with pytest.raises(SsoRefused) as none:
        role_for_groups(["all-staff"], ROLES)
    assert none.value.reason == "no_mapped_group" and none.value.message == NO_MAPPED_GROUP
    with pytest.raises(SsoRefused) as both:
        role_for_groups(["creditrisk-product", "creditrisk-risk"], ROLES)
    assert both.value.reason == "ambiguous_groups"
    assert both.value.message == AMBIGUOUS_GROUPS.format(roles="Product lead, Risk manager")
    with pytest.raises(SsoRefused):
        role_for_groups([], ROLES)


@pytest.mark.parametrize("claims,path,expected", [
    ({"groups": ["a", "b", "a"]}, "groups", ("a", "b")),
    ({"groups": "solo"}, "groups", ("solo",)),
    ({"realm_access": {"roles": ["x"]}}, "realm_access.roles", ("x",)),
    ({"groups": None}, "groups", ()),
    ({"groups": {"not": "a list"}}, "groups", ()),
    ({}, "groups", ()),
    ({"groups": ["ok", {"nested": 1}, "", 7]}, "groups", ("ok", "7")),
])
def test_groups_claim_shapes(claims: dict[str, object], path: str, expected: tuple[str, ...]) -> None:
    assert groups_of(claims, path) == expected


# -- usernames and identity ----------------------------------------------------------------------
@pytest.mark.parametrize("claims,expected", [
    ({"preferred_username": "Olivia.Okafor", "email": "x@y.z", "sub": "1"}, "olivia.okafor"),
    ({"preferred_username": "olivia@bank.example"}, "olivia_bank.example"),
    ({"preferred_username": "ab", "email": "olivia@bank.example"}, "olivia_bank.example"),  # too short: next one
    ({"sub": "00u1f2e3d4"}, "00u1f2e3d4"),
    ({"preferred_username": "x" * 100}, "x" * 64),
])
def test_username_from_claims(claims: dict[str, object], expected: str) -> None:
    assert username_from(claims) == expected


def test_unusable_username_and_missing_subject_are_refused() -> None:
    with pytest.raises(SsoRefused) as exc:
        username_from({"preferred_username": "-", "sub": "__"})
    assert exc.value.reason == "no_username"
    with pytest.raises(SsoRefused) as exc2:
        identity_from_claims({"preferred_username": "olivia"}, _cfg())
    assert exc2.value.reason == "missing_subject"


def test_allowed_email_domains() -> None:
    cfg = _cfg(allowed_email_domains=["@Bank.Example"])
    ok = identity_from_claims({"sub": "1", "email": "olivia@bank.example", "name": " Olivia ", "iat": 1}, cfg)
    assert ok.username == "olivia_bank.example" and ok.display_name == "Olivia" and ok.issued_at is not None
    for claims, reason in [({"sub": "1", "email": "olivia@evil.example"}, "email_domain"),
                           ({"sub": "1", "email": "olivia@bank.example.evil.example"}, "email_domain"),
                           ({"sub": "1"}, "email_domain"),
                           ({"sub": "1", "email": "olivia@bank.example", "email_verified": False}, "email_unverified")]:
        with pytest.raises(SsoRefused) as exc:
            identity_from_claims(claims, cfg)
        assert exc.value.reason == reason
    assert EMAIL_DOMAIN_REFUSED.startswith("Sign-in refused")


def test_sso_marker_never_verifies_as_a_password() -> None:
    marker = sso_marker("https://idp.example", "00u1")
    assert is_sso_account(marker) and len(marker) <= 128
    assert marker != sso_marker("https://other.example", "00u1")
    assert not verify_password("", marker) and not verify_password(marker, marker)


# -- settings ------------------------------------------------------------------------------------
def test_disabled_by_default_and_complete_when_enabled() -> None:
    assert SsoSettings().enabled is False
    with pytest.raises(ValidationError, match="CREDITRISK_SSO__CLIENT_ID must be set"):
        _cfg(client_id="")
    with pytest.raises(ValidationError, match="CREDITRISK_SSO__COOKIE_SECRET must be a random value"):
        _cfg(cookie_secret="short")
    with pytest.raises(ValidationError, match=SSO_NO_GROUPS):
        _cfg(group_roles={})
    with pytest.raises(ValidationError, match=BAD_PROVIDER.split("(")[0].strip()):
        _cfg(provider="my_idp")
    with pytest.raises(ValidationError, match="unknown role 'superuser'"):
        _cfg(group_roles={"g": "superuser"})
    with pytest.raises(ValidationError) as exc:
        _cfg(redirect_uri="https://console.example/callback")
    assert BAD_REDIRECT in str(exc.value)
    assert _cfg(redirect_uri="http://127.0.0.1:{port}/oauth2callback/").redirect_uri.endswith("{port}/oauth2callback")


def test_environment_variables_name_the_bad_setting(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_SSO__ENABLED", "true")
    with pytest.raises(SettingsError, match="CREDITRISK_SSO__SERVER_METADATA_URL must be set"):
        load_settings()
    monkeypatch.setenv("CREDITRISK_SSO__GROUP_ROLES", '{"g": "nobody"}')
    with pytest.raises(SettingsError, match="Invalid setting CREDITRISK_SSO__GROUP_ROLES"):
        load_settings()
    for k, v in {"GROUP_ROLES": '{"creditrisk-officers": "loan_officer"}', "CLIENT_ID": "console",
                 "SERVER_METADATA_URL": "https://idp.example/.well-known/openid-configuration",
                 "CLIENT_SECRET": "s3cret", "COOKIE_SECRET": COOKIE, "ALLOWED_EMAIL_DOMAINS": '["bank.example"]',
                 "REDIRECT_URI": "https://console.example/oauth2callback"}.items():
        monkeypatch.setenv(f"CREDITRISK_SSO__{k}", v)
    s = load_settings()
    assert s.sso.enabled and s.sso.group_roles == {"creditrisk-officers": "loan_officer"}
    assert s.sso.allowed_email_domains == ["bank.example"]
    assert COOKIE not in repr(s) and "s3cret" not in repr(s)


# -- Streamlit's [auth] secrets ------------------------------------------------------------------
def test_write_secrets_round_trips_with_mode_0600(tmp_path) -> None:  # noqa: ANN001
    cfg = _cfg(client_secret='quote"back\\slash', scope="openid profile email groups", prompt="login")
    path = write_secrets(cfg, tmp_path / ".streamlit" / "secrets.toml")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = tomllib.loads(path.read_text())["auth"]
    assert loaded == auth_section(cfg)
    assert loaded["okta"]["client_kwargs"] == {"scope": "openid profile email groups", "prompt": "login"}
    assert mismatches(cfg, loaded) == []
    no_prompt = _cfg(client_secret='quote"back\\slash', scope="openid profile email groups")
    assert mismatches(no_prompt, loaded) == ["auth.okta.client_kwargs.prompt"]


def test_write_secrets_keeps_other_content_and_replaces_its_own_block(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "secrets.toml"
    path.write_text('api_token = "keep-me"\n\n[connections.db]\nurl = "x"\n')
    write_secrets(_cfg(client_id="first"), path)
    write_secrets(_cfg(client_id="second"), path)
    data = tomllib.loads(path.read_text())
    assert data["api_token"] == "keep-me" and data["connections"] == {"db": {"url": "x"}}
    assert data["auth"]["okta"]["client_id"] == "second"
    assert path.read_text().count("[auth]") == 1


def test_write_secrets_refuses_a_foreign_auth_table_and_disabled_sso(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "secrets.toml"
    path.write_text('[auth]\nredirect_uri = "hand-written"\n')
    with pytest.raises(SecretsError) as exc:
        write_secrets(_cfg(), path)
    assert str(exc.value) == FOREIGN_AUTH.format(path=path)
    assert path.read_text() == '[auth]\nredirect_uri = "hand-written"\n'  # untouched
    with pytest.raises(SecretsError, match=SSO_DISABLED.split("(")[0].strip()):
        write_secrets(SsoSettings(), tmp_path / "other.toml")
    assert not (tmp_path / "other.toml").exists()


def test_mismatches_name_keys_never_values() -> None:
    cfg = _cfg()
    loaded = auth_section(cfg)
    loaded["cookie_secret"] = "another-cookie-secret-of-some-length"
    loaded["okta"] = {**loaded["okta"], "client_secret": "leaked?"}
    diff = mismatches(cfg, loaded)
    assert diff == ["auth.cookie_secret", "auth.okta.client_secret"]
    assert not any("leaked" in d or "another" in d for d in diff)
    assert mismatches(cfg, None) == ["auth.redirect_uri", "auth.cookie_secret", "auth.okta"]
    assert mismatches(_cfg(provider="azure"), auth_section(cfg)) == ["auth.azure"]
