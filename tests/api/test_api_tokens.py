"""OAuth 2.0 tokens: the token endpoint (password and client credentials), JWT attacks, key rotation."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import timedelta

import jwt
import pytest
from api_helpers import PASSWORD, assert_problem
from cryptography.hazmat.primitives import serialization

from backend.api import routes_oauth as O
from backend.container.settings import load_settings
from backend.identity import clients as C
from backend.identity.auth import LOGIN_FAILED
from backend.identity.tokens import (
    KEY_FILE,
    RING_PRODUCTION,
    KeyRing,
    KeyRingError,
    SigningKey,
    TokenInvalid,
    TokenService,
    load_key_ring,
    scopes_for_role,
)

ALL = {"score", "decisions:read", "explain", "override"}


def _claims(a, token):
    return jwt.decode(token, options={"verify_signature": False})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# -- password grant -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("user", "scopes"), [
    ("olivia", ALL), ("maria", ALL), ("ada", {"decisions:read", "explain"}),
])
def test_people_get_the_scopes_their_role_allows(api_sqlite, user, scopes):
    a = api_sqlite
    res = a.client.post("/oauth/token", data={"grant_type": "password", "username": user, "password": PASSWORD})
    assert res.status_code == 200 and res.headers["cache-control"] == "no-store"
    body = res.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == a.svc.settings.api.token_ttl_seconds
    assert set(body["scope"].split()) == scopes
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt" and header["kid"] == a.ctx.tokens.ring.active
    c = _claims(a, body["access_token"])
    assert c["sub"] == f"user:{a.users[user].id}" and c["role"] == a.users[user].role
    assert c["iss"] == "creditrisk" and c["aud"] == "creditrisk-api" and c["exp"] - c["iat"] == 900 and c["jti"]


@pytest.mark.parametrize("user", ["paul"])
def test_roles_without_api_permissions_get_no_token(api_sqlite, user):
    res = api_sqlite.client.post("/oauth/token", data={"grant_type": "password", "username": user,
                                                       "password": PASSWORD})
    assert res.status_code == 400 and res.json()["error"] == "invalid_scope"
    assert res.json()["error_description"] == O.MSG_NO_SCOPE


def test_the_ml_engineer_may_score_and_nothing_more(api_sqlite):
    """ML engineers score (to try a version as an officer would, issue 17's card): the token says so, no wider."""
    tok = api_sqlite.token("eve")
    assert _claims(api_sqlite, tok)["scope"] == "score"


def test_a_narrower_scope_may_be_asked_for_and_a_wider_one_is_refused(api_sqlite):
    a = api_sqlite
    tok = a.token("olivia", scope="score")
    assert _claims(a, tok)["scope"] == "score"
    res = a.client.post("/oauth/token", data={"grant_type": "password", "username": "ada", "password": PASSWORD,
                                              "scope": "score"})
    assert res.status_code == 400 and res.json()["error"] == "invalid_scope"


def test_wrong_password_is_invalid_grant_with_the_login_message_and_an_audit_row(api_sqlite):
    a = api_sqlite
    before = a.svc.audit.count()
    for name in ("olivia", "nobody"):
        res = a.client.post("/oauth/token", data={"grant_type": "password", "username": name, "password": "wrong!!"})
        assert res.status_code == 400
        body = res.json()
        assert body["error"] == "invalid_grant" and body["error_description"] == LOGIN_FAILED
        assert "wrong!!" not in res.text
    assert a.svc.audit.count() == before + 2
    assert a.svc.audit.recent(1)[0]["action"] == "login_failed"


def test_repeated_failures_lock_the_account_for_this_address(api_sqlite):
    a = api_sqlite
    for _ in range(int(a.svc.settings.auth.lockout_threshold)):
        a.client.post("/oauth/token", data={"grant_type": "password", "username": "oscar", "password": "bad"})
    res = a.client.post("/oauth/token", data={"grant_type": "password", "username": "oscar", "password": PASSWORD})
    assert res.status_code == 400 and res.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(("body", "ctype", "error"), [
    (b'{"grant_type": "password"}', "application/json", "invalid_request"),
    (b"grant_type=password&grant_type=client_credentials", O.FORM, "invalid_request"),
    (b"grant_type=password&username=olivia&password=x%00y", O.FORM, "invalid_request"),
    (b"username=olivia", O.FORM, "invalid_request"),
    (b"grant_type=authorization_code&code=abc", O.FORM, "unsupported_grant_type"),
    (b"grant_type=password&username=olivia", O.FORM, "invalid_request"),
    (b"grant_type=password&\xff\xfe=1", O.FORM, "invalid_request"),
])
def test_malformed_token_requests(api_sqlite, body, ctype, error):
    res = api_sqlite.client.post("/oauth/token", content=body, headers={"content-type": ctype})
    assert res.status_code == 400 and res.json()["error"] == error


# -- client credentials --------------------------------------------------------------------------------
def test_client_credentials_with_basic_or_body_but_not_both(api_sqlite):
    a = api_sqlite
    info, secret = a.ctx.clients.add("los-core", role="risk_manager", scopes=["score", "decisions:read"])
    with a.svc.db.read() as s:
        from backend.identity.clients_queries import ApiClientRepository

        stored = ApiClientRepository(s).by_client_id(info.client_id).secret_hash
    assert secret not in stored and stored.startswith("bcrypt-sha256$")
    basic = base64.b64encode(f"{info.client_id}:{secret}".encode()).decode()
    res = a.client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        headers={"Authorization": f"Basic {basic}"})
    assert res.status_code == 200 and set(res.json()["scope"].split()) == {"score", "decisions:read"}
    c = _claims(a, res.json()["access_token"])
    assert c["sub"] == f"client:{info.client_id}" and c["role"] == "risk_manager"
    res = a.client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": info.client_id,
                                              "client_secret": secret, "scope": "score"})
    assert res.status_code == 200 and res.json()["scope"] == "score"
    res = a.client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": info.client_id,
                                              "client_secret": secret}, headers={"Authorization": f"Basic {basic}"})
    assert res.status_code == 400 and res.json()["error_description"] == O.MSG_TWO_METHODS
    res = a.client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": info.client_id,
                                              "client_secret": secret, "scope": "explain"})
    assert res.status_code == 400 and res.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("how", ["bad secret", "unknown id", "garbled basic", "revoked"])
def test_client_authentication_failures_are_401_invalid_client(api_sqlite, how):
    a = api_sqlite
    info, secret = a.ctx.clients.add("los-core", role="loan_officer", scopes=["score"])
    cid = info.client_id
    if how == "bad secret":
        secret = secret[:-2] + "xx"
    elif how == "unknown id":
        cid = "crc_0000000000000000"
    elif how == "revoked":
        a.ctx.clients.revoke("los-core")
    headers = {"Authorization": "Basic !!!notbase64"} if how == "garbled basic" else {}
    data = {"grant_type": "client_credentials"} if headers else {"grant_type": "client_credentials",
                                                                   "client_id": cid, "client_secret": secret}
    res = a.client.post("/oauth/token", data=data, headers=headers)
    assert res.status_code == 401 and res.json()["error"] == "invalid_client"
    assert res.headers["www-authenticate"].startswith("Basic")
    assert secret not in res.text


def test_a_revoked_clients_tokens_stop_working(api_sqlite):
    a = api_sqlite
    info, secret = a.ctx.clients.add("los-core", role="risk_manager", scopes=["score"])
    tok = a.client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": info.client_id,
                                              "client_secret": secret}).json()["access_token"]
    h = {"Authorization": f"Bearer {tok}"}
    assert a.client.get("/v1/decisions/00000000-0000-0000-0000-000000000000", headers=h).status_code == 403
    a.ctx.clients.revoke(info.client_id)
    assert_problem(a.client.get("/v1/decisions/00000000-0000-0000-0000-000000000000", headers=h), 401)


@pytest.mark.parametrize(("role", "scopes", "message"), [
    ("loan_officer", ["override"], C.HUMAN_ONLY),
    ("admin", ["score"], C.ROLE_LACKS.format(role="admin", scope="score", allowed="decisions:read, explain")),
    ("wizard", ["score"], C.BAD_ROLE.format(role="wizard")),
    ("loan_officer", ["everything"], C.BAD_SCOPE.format(scope="everything")),
    ("loan_officer", [], C.NO_SCOPES),
])
def test_client_creation_refuses_scopes_beyond_the_role_and_override(api_sqlite, role, scopes, message):
    with pytest.raises(C.ClientError) as exc:
        api_sqlite.ctx.clients.add("los-core", role=role, scopes=scopes)
    assert str(exc.value) == message


# -- JWT attacks -----------------------------------------------------------------------------------------
def _forge(a, how: str) -> str:
    good = a.token("olivia")
    header = jwt.get_unverified_header(good)
    claims = _claims(a, good)
    key = a.ctx.tokens.ring.signing_key
    if how == "alg none":
        return f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': key.kid})}.{_b64(claims)}."
    if how == "hs256 with the public key":
        pem = key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        h, p, _ = good.split(".")
        import hashlib
        import hmac

        forged_h = _b64({**header, "alg": "HS256"})
        sig = hmac.new(pem, f"{forged_h}.{p}".encode(), hashlib.sha256).digest()
        return f"{forged_h}.{p}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    if how == "tampered payload":
        h, _, s = good.split(".")
        return f"{h}.{_b64({**claims, 'role': 'risk_manager', 'sub': 'user:' + str(a.users['maria'].id)})}.{s}"
    if how == "unknown kid":
        other = SigningKey.generate()
        return jwt.encode(claims, other.private, algorithm="ES256", headers={"kid": "k-stranger", "typ": "at+jwt"})
    if how == "foreign key, known kid":
        other = SigningKey.generate()
        return jwt.encode(claims, other.private, algorithm="ES256", headers={"kid": key.kid, "typ": "at+jwt"})
    sign = {"wrong audience": {"aud": "someone-else"}, "wrong issuer": {"iss": "evil"},
            "expired": {"exp": claims["iat"] - 60, "nbf": claims["iat"] - 960, "iat": claims["iat"] - 960},
            "not yet valid": {"nbf": claims["iat"] + 600}, "too long lived": {"exp": claims["iat"] + 10 * 86400},
            "unknown scope": {"scope": "score admin"}, "no jti": {"jti": None}}
    typ = "JWT" if how == "wrong typ" else "at+jwt"
    body = {k: v for k, v in {**claims, **sign.get(how, {})}.items() if v is not None}
    return jwt.encode(body, key.private, algorithm="ES256", headers={"kid": key.kid, "typ": typ})


ATTACKS = ["alg none", "hs256 with the public key", "tampered payload", "unknown kid", "foreign key, known kid",
           "wrong audience", "wrong issuer", "expired", "not yet valid", "too long lived", "unknown scope", "no jti",
           "wrong typ"]


@pytest.mark.parametrize("how", ATTACKS)
def test_forged_tokens_are_refused_with_401(api_sqlite, how):
    a = api_sqlite
    token = _forge(a, how)
    res = a.client.get("/v1/decisions/00000000-0000-0000-0000-000000000000",
                       headers={"Authorization": f"Bearer {token}"})
    body = assert_problem(res, 401, not_echoed=(token[:40],))
    assert 'error="invalid_token"' in res.headers["www-authenticate"]
    assert body["detail"] == "The access token is invalid or has expired; get a new one from POST /oauth/token."


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic b2xpdmlhOng=", "Bearer not.a.jwt",
                                    "Bearer " + "a" * 5000, "Bearer a.b", "Token abc"])
def test_missing_or_garbled_authorization_is_401(api_sqlite, header):
    res = api_sqlite.client.post("/v1/score", json={"loan_amount": 5000},
                                 headers={} if header is None else {"Authorization": header})
    assert_problem(res, 401)
    assert res.headers["www-authenticate"].startswith('Bearer realm="creditrisk"')


def test_a_token_expires_with_the_service_clock(api_sqlite, clock):
    a = api_sqlite
    h = a.auth("olivia")
    assert a.client.get("/v1/decisions/00000000-0000-0000-0000-000000000000", headers=h).status_code == 404
    clock.advance(seconds=a.svc.settings.api.token_ttl_seconds + a.svc.settings.api.clock_leeway_seconds)
    assert_problem(a.client.get("/v1/decisions/00000000-0000-0000-0000-000000000000", headers=h), 401)


def test_a_disabled_persons_token_stops_working(api_sqlite):
    a = api_sqlite
    h = a.auth("olivia")
    a.svc.users.set_disabled("olivia", True)
    assert_problem(a.client.post("/v1/score", json={"loan_amount": 5000}, headers=h), 401)


def test_scopes_follow_the_role_held_now_not_the_one_in_the_token(api_sqlite):
    a = api_sqlite
    h = a.auth("maria")
    from backend.platform.db.tables_access import User

    with a.svc.db.transaction() as s:
        s.get(User, a.users["maria"].id).role = "admin"
    res = a.client.post("/v1/score", json={"loan_amount": 5000}, headers=h)
    assert_problem(res, 403)


# -- key ring --------------------------------------------------------------------------------------------
def test_rotation_new_key_signs_old_key_verifies_until_removed(api_sqlite):
    a = api_sqlite
    svc = a.ctx.tokens
    old_token = a.token("olivia")
    old_kid = svc.ring.active
    svc.ring = svc.ring.rotated()
    new_token = a.token("olivia")
    assert jwt.get_unverified_header(new_token)["kid"] == svc.ring.active != old_kid
    url = "/v1/decisions/00000000-0000-0000-0000-000000000000"
    for tok in (old_token, new_token):
        assert a.client.get(url, headers={"Authorization": f"Bearer {tok}"}).status_code == 404
    svc.ring = svc.ring.without(old_kid)
    assert a.client.get(url, headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
    assert a.client.get(url, headers={"Authorization": f"Bearer {new_token}"}).status_code == 404
    jwks = a.client.get("/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == [svc.ring.active] and "d" not in jwks["keys"][0]


def test_dev_key_ring_is_created_once_with_mode_0600(tmp_path):
    s = load_settings(data_dir=tmp_path)
    ring = load_key_ring(s)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_key_ring(s).active == ring.active
    assert set(os.listdir(tmp_path)) == {KEY_FILE}  # no temporary file left behind


def test_configured_ring_is_used_and_production_needs_one(tmp_path):
    ring = KeyRing([SigningKey.generate("EdDSA", kid="ed1")], "ed1")
    s = load_settings(data_dir=tmp_path, api={"signing_keys": ring.to_json()})
    assert load_key_ring(s).active == "ed1" and not (tmp_path / KEY_FILE).exists()
    with pytest.raises(KeyRingError) as exc:
        load_key_ring(load_settings(data_dir=tmp_path, env="production", auth={"cookie_key": "x" * 40}))
    assert str(exc.value) == RING_PRODUCTION
    with pytest.raises(KeyRingError):
        KeyRing.from_json('{"active": "a", "keys": [{"kid": "a", "alg": "HS256", "secret": "s"}]}')


def test_eddsa_tokens_round_trip(tmp_path, clock):
    ring = KeyRing([SigningKey.generate("EdDSA", kid="ed1")], "ed1")
    svc = TokenService(ring, load_settings(data_dir=tmp_path).api, clock.now)
    token, _ = svc.issue(sub="user:x", role="loan_officer", scopes=scopes_for_role("loan_officer"))
    assert svc.verify(token).scopes == frozenset(ALL)
    clock.advance(seconds=1000)
    with pytest.raises(TokenInvalid, match="expired"):
        svc.verify(token)
    clock.at -= timedelta(seconds=2000)
    with pytest.raises(TokenInvalid, match="not yet valid"):
        svc.verify(token)
