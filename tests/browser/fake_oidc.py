"""A small, real OpenID Connect provider on loopback for the console's single sign-on tests.

It speaks the authorization-code flow the way Streamlit's ``st.login`` (Authlib) uses it:

* ``GET /.well-known/openid-configuration``: the discovery document (S256 PKCE advertised, so the
  client must use it);
* ``GET /jwks``: one RS256 public key (a fresh 2048-bit key per provider);
* ``GET /authorize``: checks ``client_id``, ``redirect_uri`` (exact match with a registered one),
  ``response_type=code``, the ``openid`` scope, ``state``, ``nonce`` and the PKCE challenge, then
  **auto-approves** ``provider.user`` (the test sets it before clicking "Sign in"; None answers
  ``error=access_denied``) and redirects back with a one-time code;
* ``POST /token``: client authentication (``client_secret_basic`` or ``_post``), the code (one use,
  same redirect URI, PKCE verifier), then an RS256 ``id_token`` with ``iss``, ``sub``, ``aud``,
  ``iat``, ``exp``, ``nonce``, the profile claims and the groups claim, and a bearer access token;
* ``GET /userinfo``: the claims for that access token;
* ``GET /logout``: RP-initiated logout (``end_session_endpoint``): redirects to a registered
  ``post_logout_redirect_uri``.

``provider.events`` records what happened (``("authorize", sub)``, ``("token", sub)``, ``("logout", "")``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

TOKEN_TTL = 300


@dataclass
class OidcUser:
    sub: str
    name: str
    email: str
    preferred_username: str
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True

    def claims(self, groups_claim: str = "groups") -> dict[str, Any]:
        return {"sub": self.sub, "name": self.name, "email": self.email, "email_verified": self.email_verified,
                "preferred_username": self.preferred_username, groups_claim: list(self.groups)}


@dataclass
class _Grant:
    user: OidcUser
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    expires: float


class FakeOidcProvider:
    def __init__(self, client_id: str = "creditrisk-console", client_secret: str | None = None,
                 groups_claim: str = "groups") -> None:
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.groups_claim = groups_claim
        self.redirect_uris: set[str] = set()
        self.user: OidcUser | None = None
        self.events: list[tuple[str, str]] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-oidc", daemon=True)

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> FakeOidcProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def allow_redirect(self, uri: str) -> None:
        self.redirect_uris.add(uri)

    # -- protocol pieces ---------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        i = self.issuer
        return {"issuer": i, "authorization_endpoint": f"{i}/authorize", "token_endpoint": f"{i}/token",
                "userinfo_endpoint": f"{i}/userinfo", "jwks_uri": f"{i}/jwks", "end_session_endpoint": f"{i}/logout",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "profile", "email"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"], "grant_types_supported": ["authorization_code"],
                "claims_supported": ["sub", "name", "email", "email_verified", "preferred_username",
                                     self.groups_claim]}

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**jwk, "kid": self._kid, "alg": "RS256", "use": "sig"}]}

    def authorize(self, q: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            return 400, {}, {"error": "invalid_request", "error_description": "unknown client or redirect_uri"}
        state = q.get("state", "")

        def back(**params: str) -> tuple[int, dict[str, str], None]:
            return 302, {"Location": f"{redirect_uri}?{urlencode({**params, 'state': state})}"}, None

        if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            return back(error="unsupported_response_type")
        if not state or not q.get("nonce"):
            return back(error="invalid_request", error_description="state and nonce are required")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return back(error="invalid_request", error_description="S256 PKCE is required")
        user = self.user
        if user is None:
            return back(error="access_denied")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(user, self.client_id, redirect_uri, q["nonce"], q["code_challenge"],
                                        time.time() + 60)
            self.events.append(("authorize", user.sub))
        return back(code=code)

    def token(self, form: dict[str, str], auth_header: str) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if auth_header.startswith("Basic "):
            raw = base64.b64decode(auth_header[6:]).decode()
            client_id, _, secret = (unquote_plus(p) for p in raw.partition(":"))
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # one use
        if grant is None or grant.expires < time.time() or grant.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or digest != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        claims = {**grant.user.claims(self.groups_claim), "iss": self.issuer, "aud": grant.client_id,
                  "iat": now, "exp": now + TOKEN_TTL, "auth_time": now, "nonce": grant.nonce}
        id_token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})
        access = secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = grant.user.claims(self.groups_claim)
            self.events.append(("token", grant.user.sub))
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_TTL, "id_token": id_token,
                     "scope": "openid profile email"}

    def userinfo(self, auth_header: str) -> tuple[int, dict[str, Any]]:
        claims = self._access.get(auth_header.removeprefix("Bearer ").strip())
        return (200, claims) if claims else (401, {"error": "invalid_token"})

    def logout(self, q: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        target = q.get("post_logout_redirect_uri", "")
        if target not in self.redirect_uris:
            return 400, {}, {"error": "invalid_request", "error_description": "unregistered post_logout_redirect_uri"}
        with self._lock:
            self.events.append(("logout", ""))
        return 302, {"Location": target}, None

    # -- HTTP ----------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._send(200, provider.discovery())
                elif url.path == "/jwks":
                    self._send(200, provider.jwks())
                elif url.path == "/authorize":
                    status, headers, body = provider.authorize(q)
                    self._send(status, body, headers)
                elif url.path == "/userinfo":
                    self._send(*provider.userinfo(self.headers.get("Authorization", "")))
                elif url.path == "/logout":
                    status, headers, body = provider.logout(q)
                    self._send(status, body, headers)
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                if urlparse(self.path).path != "/token":
                    self._send(404, {"error": "not_found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                self._send(*provider.token(form, self.headers.get("Authorization", "")))

        return Handler
