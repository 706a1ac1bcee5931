"""SSO accounts rely on the identity provider's MFA; the console checks the ID token's ``amr`` / ``acr``
where the provider sends them, and refuses (audited) a sign-in it says was single-factor."""

from __future__ import annotations

from typing import Any

import pytest

from backend.identity.config import SsoSettings
from backend.identity.sso import MFA_MISSING, SsoService, multi_factor

ISSUER = "https://idp.example"
BASE = dict(enabled=True, provider="okta", server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
            client_id="console", client_secret="client-secret", cookie_secret="c" * 40,
            redirect_uri="https://console.example/oauth2callback",
            group_roles={"creditrisk-officers": "loan_officer", "creditrisk-admins": "admin"})
CFG = SsoSettings(**BASE)


def _claims(services: Any, **kw: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "sub": "00u-ada", "preferred_username": "ada", "groups": ["creditrisk-admins"],
            "iat": int(services.clock.now().timestamp()), **kw}


@pytest.mark.parametrize(("amr", "acr", "expected"), [
    (["pwd", "otp"], None, True), (["mfa"], None, True), (["hwk"], None, True), ("swk", None, True),
    (["PWD", "MFA"], None, True), (["pwd"], None, False), (["pin"], None, False), ([], None, False),
    (["kba", "pwd"], None, False), ([None, 3, {"x": 1}], None, False), (None, None, None),
    (None, "urn:okta:loa:1fa:any", None), ("pwd", "urn:okta:loa:2fa:any", False),
])
def test_what_counts_as_a_second_factor(amr, acr, expected):
    claims = {k: v for k, v in (("amr", amr), ("acr", acr)) if v is not None}
    assert multi_factor(claims, CFG) is expected


def test_an_acr_counts_only_when_configured():
    cfg = SsoSettings(**BASE, mfa_acr=["urn:okta:loa:2fa:any"])
    assert multi_factor({"acr": "urn:okta:loa:2fa:any"}, cfg) is True
    assert multi_factor({"acr": "urn:okta:loa:1fa:any"}, cfg) is False
    assert multi_factor({"acr": "urn:okta:loa:2fa:any", "amr": ["pwd"]}, cfg) is True


def test_a_single_factor_sign_in_is_refused_and_audited(services):
    sso = SsoService(services.db, CFG, services.clock)
    out = sso.sign_in(_claims(services, amr=["pwd"]), client="10.0.0.7")
    assert not out.ok and out.reason == "mfa_missing" and out.message == MFA_MISSING
    assert services.users.get("ada") is None  # nobody provisioned
    refused = [r for r in services.audit.recent(10) if r["action"] == "sso_login_refused"]
    assert refused and refused[0]["payload"]["reason"] == "mfa_missing"
    assert sso.sign_in(_claims(services, amr=["pwd", "otp"])).ok


def test_silence_is_accepted_unless_the_claim_is_required(services):
    assert SsoService(services.db, CFG, services.clock).sign_in(_claims(services)).ok
    strict = SsoService(services.db, SsoSettings(**BASE, mfa_claim_required=True), services.clock)
    out = strict.sign_in(_claims(services, sub="00u-other", preferred_username="other"))
    assert not out.ok and out.reason == "mfa_missing"
    off = SsoService(services.db, SsoSettings(**BASE, mfa_required=False), services.clock)
    assert off.sign_in(_claims(services, amr=["pwd"])).ok
