"""OAuth 2.0 token endpoint (RFC 6749): password grant for people, client credentials for machines.

The body is ``application/x-www-form-urlencoded``; a repeated parameter is refused (RFC 6749 3.2).
People are checked by :meth:`AuthService.authenticate` (bcrypt, lockout per username and address,
an audit row per attempt); clients by their hashed secret, sent with HTTP Basic or in the body (not
both). Errors follow RFC 6749 5.2 (``error``, ``error_description``) and carry the problem-details
members too. The endpoint is rate limited per remote address (the TCP peer, or what a proxy named
in ``api.trusted_proxies`` forwards) and, for client credentials, per client id. The public keys are served as a JWKS.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from backend.api.deps import ApiContext, get_ctx
from backend.api.jsonbody import StrictJSONRoute
from backend.api.problems import problem_body
from backend.api.schemas import OAuthErrorOut, ProblemOut, TokenOut
from backend.identity import CLIENT_SCOPES, LOGIN_FAILED, MAX_PASSWORD_LENGTH, SCOPES, scopes_for_role

router = APIRouter(tags=["oauth"], route_class=StrictJSONRoute)
FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 10
MAX_VALUE = MAX_PASSWORD_LENGTH
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MSG_FORM = f"The token request must be sent as {FORM}."
MSG_PARAMS = "The form is malformed, repeats a parameter, has too many or too long parameters, or contains NUL."
MSG_GRANT = "grant_type is required: password or client_credentials."
MSG_UNSUPPORTED = "Only the password and client_credentials grants are supported."
MSG_MISSING = "{names} required for this grant."
MSG_TWO_METHODS = "Send the client credentials once: with HTTP Basic or in the body, not both."
MSG_CLIENT = "Client authentication failed."
MSG_SCOPE = "The requested scope is not allowed for this account: it may hold {allowed}."
MSG_NO_SCOPE = "This account's role has no access to the scoring API."

TOKEN_FORM_SCHEMA = {"requestBody": {"required": True, "content": {FORM: {"schema": {
    "type": "object", "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["password", "client_credentials"]},
        "username": {"type": "string", "maxLength": 64}, "password": {"type": "string", "maxLength": MAX_VALUE},
        "otp": {"type": "string", "maxLength": 64,
                "description": "password grant: the account's current TOTP code or a recovery code, when it has "
                               "a second factor (the roles that approve, override, promote or administer must)"},
        "client_id": {"type": "string", "maxLength": 64}, "client_secret": {"type": "string", "maxLength": 200},
        "scope": {"type": "string", "maxLength": 200, "description": "space-separated: " + " ".join(SCOPES)},
    }}}}}}


def oauth_error(request: Request, status: int, error: str, description: str,
                headers: dict[str, str] | None = None) -> JSONResponse:
    state = request.scope.setdefault("state", {})
    state["problem"] = f"oauth-{error}"
    body: dict[str, Any] = {"error": error, "error_description": description,
                            **problem_body(status, f"oauth-{error}", "Token request refused", description,
                                           state.get("request_id"))}
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def parse_form(body: bytes) -> dict[str, str]:
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FIELDS)
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out or len(v) > MAX_VALUE or "\x00" in k + v:
            raise ValueError(MSG_PARAMS)
        out[k] = v
    return out


def _grant(request: Request, ctx: ApiContext, *, sub: str, role: str, allowed: tuple[str, ...],
           requested: str | None) -> JSONResponse:
    if not allowed:
        return oauth_error(request, 400, "invalid_scope", MSG_NO_SCOPE)
    wanted = tuple(dict.fromkeys((requested or "").split())) or allowed
    if not set(wanted) <= set(allowed):
        return oauth_error(request, 400, "invalid_scope", MSG_SCOPE.format(allowed=" ".join(allowed)))
    token, ttl = ctx.tokens.issue(sub=sub, role=role, scopes=wanted)
    return JSONResponse(TokenOut(access_token=token, expires_in=ttl, scope=" ".join(sorted(wanted))).model_dump(),
                        headers=NO_STORE)


def _password(request: Request, ctx: ApiContext, p: dict[str, str], host: str) -> JSONResponse:
    if not p.get("username") or "password" not in p:
        return oauth_error(request, 400, "invalid_request", MSG_MISSING.format(names="username and password are"))
    result = ctx.services.auth.authenticate(p["username"], p["password"], client=f"api:{host}"[:100],
                                            code=p.get("otp"))
    if not result.ok or result.user is None:  # the second factor's own message once the password was right
        return oauth_error(request, 400, "invalid_grant", result.message or LOGIN_FAILED)
    user = result.user
    return _grant(request, ctx, sub=f"user:{user.id}", role=user.role, allowed=scopes_for_role(user.role),
                  requested=p.get("scope"))


def _basic(header: str | None) -> tuple[str, str] | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return ("", "")
    cid, _, secret = raw.partition(":")
    return unquote_plus(cid), unquote_plus(secret)


def _client(request: Request, ctx: ApiContext, p: dict[str, str]) -> JSONResponse:
    basic = _basic(request.headers.get("authorization"))
    in_body = "client_id" in p or "client_secret" in p
    if basic is not None and in_body:
        return oauth_error(request, 400, "invalid_request", MSG_TWO_METHODS)
    cid, secret = basic if basic is not None else (p.get("client_id", ""), p.get("client_secret", ""))
    if cid:  # per client id too: guessing one client's secret from many addresses is limited
        ctx.limit(f"token-client:{cid[:64]}", ctx.settings.api.token_rate_limit_per_minute)
    client = ctx.clients.authenticate(cid, secret) if cid and secret else None
    if client is None:
        return oauth_error(request, 401, "invalid_client", MSG_CLIENT,
                           headers={"WWW-Authenticate": 'Basic realm="creditrisk"'})
    allowed = tuple(s for s in client.scopes if s in CLIENT_SCOPES and s in scopes_for_role(client.role))
    return _grant(request, ctx, sub=f"client:{client.client_id}", role=client.role, allowed=allowed,
                  requested=p.get("scope"))


@router.post("/oauth/token", response_model=TokenOut, summary="Get an access token",
             openapi_extra=TOKEN_FORM_SCHEMA,
             responses={400: {"model": OAuthErrorOut, "description": "invalid_request, invalid_grant, "
                                                                       "invalid_scope, unsupported_grant_type"},
                        401: {"model": OAuthErrorOut, "description": "invalid_client"},
                        413: {"model": ProblemOut, "description": "Body too large"},
                        429: {"model": ProblemOut, "description": "Too many token requests from this address "
                                                                "or for this client id"}})
async def token(request: Request) -> JSONResponse:
    ctx = get_ctx(request)
    host = request.client.host if request.client else "unknown"
    ctx.limit(f"token:{host}", ctx.settings.api.token_rate_limit_per_minute)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        return oauth_error(request, 400, "invalid_request", MSG_FORM)
    try:
        params = parse_form(await request.body())
    except ValueError:
        return oauth_error(request, 400, "invalid_request", MSG_PARAMS)
    grant = params.get("grant_type")
    if grant == "password":
        return await run_in_threadpool(_password, request, ctx, params, host)
    if grant == "client_credentials":
        return await run_in_threadpool(_client, request, ctx, params)
    if not grant:
        return oauth_error(request, 400, "invalid_request", MSG_GRANT)
    return oauth_error(request, 400, "unsupported_grant_type", MSG_UNSUPPORTED)


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens (JWKS)")
def jwks(request: Request) -> JSONResponse:
    return JSONResponse(get_ctx(request).tokens.ring.jwks(), headers={"Cache-Control": "public, max-age=300"})
