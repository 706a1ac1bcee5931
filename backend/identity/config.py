"""Single sign-on for the console (``CREDITRISK_SSO__...``): OpenID Connect through Streamlit's ``st.login``.

Streamlit reads its OIDC client configuration from the ``[auth]`` table of a ``secrets.toml`` file,
not from our settings. These settings are the source of truth; ``creditrisk sso write-secrets``
turns them into that table (see :mod:`backend.identity.sso_secrets`) and the console refuses to offer
SSO while the file it reads disagrees with them.

``group_roles`` maps identity-provider groups (the ``groups_claim`` of the ID token) to console roles,
as JSON: ``{"creditrisk-officers": "loan_officer", "creditrisk-risk": "risk_manager"}``.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from backend.domain import ROLES

PROVIDER_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
BAD_PROVIDER = ("must be 1-40 characters: lowercase letters, digits and '-' "
                "(Streamlit does not allow '_' in a provider name)")
BAD_URL = "must be an absolute http:// or https:// URL"
BAD_REDIRECT = "must be the console's absolute URL ending in /oauth2callback, e.g. https://console.example.com/oauth2callback"
BAD_GROUP_ROLE = "maps group {group!r} to unknown role {role!r}; roles: " + ", ".join(ROLES)
SSO_FIELD_REQUIRED = "CREDITRISK_SSO__{field} must be set when CREDITRISK_SSO__ENABLED=true"
SSO_SECRET_WEAK = ("CREDITRISK_SSO__{field} must be a random value of at least {n} characters "  # noqa: S105
                   "when CREDITRISK_SSO__ENABLED=true")
SSO_NO_GROUPS = "CREDITRISK_SSO__GROUP_ROLES must map at least one group to a role when CREDITRISK_SSO__ENABLED=true"
MIN_COOKIE_SECRET = 32


def _is_url(v: str) -> bool:
    return bool(re.match(r"^https?://[^\s/]+", v))


class SsoSettings(BaseModel):
    enabled: bool = False
    provider: str = "corporate"  # the [auth.<provider>] table and st.login(<provider>)
    label: str = Field("Corporate SSO", min_length=1, max_length=60)  # "Sign in with <label>"
    server_metadata_url: str = ""  # https://idp.example.com/.well-known/openid-configuration
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    redirect_uri: str = ""  # https://console.example.com/oauth2callback ("{port}" is filled in by Streamlit)
    cookie_secret: SecretStr = SecretStr("")  # signs Streamlit's identity cookie
    scope: str = "openid profile email"  # add what your provider needs for the groups claim
    prompt: str = ""  # OIDC prompt; empty: Streamlit's "select_account" (Okta/Auth0 may want "login")
    groups_claim: str = "groups"  # a dotted path reaches nested claims, e.g. realm_access.roles
    group_roles: dict[str, str] = Field(default_factory=dict)
    senior_groups: list[str] = Field(default_factory=list)  # members are senior officers (pilot phases)
    allowed_email_domains: list[str] = Field(default_factory=list)  # empty: any; else the email claim must match
    password_login: bool = True  # keep the password form next to the SSO button (break-glass accounts)
    max_identity_age_hours: float = Field(12.0, gt=0, le=24 * 30)  # older ID tokens: sign in again
    # multi-factor: the console relies on the provider's MFA, and checks it where the ID token says how the
    # user signed in. ``amr`` (RFC 8176) must then hold one of ``mfa_amr``; an ``acr`` counts when it is one
    # of ``mfa_acr`` (provider-specific, e.g. "urn:okta:loa:2fa:any"). ``mfa_claim_required``: refuse a token
    # that says nothing about it (set it when your provider always sends amr or acr).
    mfa_required: bool = True
    mfa_amr: list[str] = Field(default_factory=lambda: ["mfa", "otp", "hwk", "swk", "sc", "sms", "tel", "fpt",
                                                        "face", "iris", "retina", "vbm", "pop"])
    mfa_acr: list[str] = Field(default_factory=list)
    mfa_claim_required: bool = False

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        if not PROVIDER_RE.match(v):
            raise ValueError(BAD_PROVIDER)
        return v

    @field_validator("server_metadata_url")
    @classmethod
    def _metadata(cls, v: str) -> str:
        if v and not _is_url(v):
            raise ValueError(BAD_URL)
        return v

    @field_validator("redirect_uri")
    @classmethod
    def _redirect(cls, v: str) -> str:
        if v and not (_is_url(v) and v.rstrip("/").endswith("/oauth2callback")):
            raise ValueError(BAD_REDIRECT)
        return v.rstrip("/")

    @field_validator("group_roles")
    @classmethod
    def _roles(cls, v: dict[str, str]) -> dict[str, str]:
        for group, role in v.items():
            if role not in ROLES:
                raise ValueError(BAD_GROUP_ROLE.format(group=group, role=role))
        return {g.strip(): r for g, r in v.items() if g.strip()}

    @field_validator("allowed_email_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        return [d.strip().lstrip("@").lower() for d in v if d.strip()]

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> SsoSettings:
        if not self.enabled:
            return self
        for name in ("server_metadata_url", "client_id", "redirect_uri"):
            if not getattr(self, name):
                raise ValueError(SSO_FIELD_REQUIRED.format(field=name.upper()))
        if not self.client_secret.get_secret_value():
            raise ValueError(SSO_FIELD_REQUIRED.format(field="CLIENT_SECRET"))
        if len(self.cookie_secret.get_secret_value()) < MIN_COOKIE_SECRET:
            raise ValueError(SSO_SECRET_WEAK.format(field="COOKIE_SECRET", n=MIN_COOKIE_SECRET))
        if not self.group_roles:
            raise ValueError(SSO_NO_GROUPS)
        return self


class AuthSettings(BaseModel):
    cookie_name: str = "creditrisk_auth"
    cookie_key: SecretStr = SecretStr("")
    cookie_expiry_days: float = Field(0.5, gt=0, le=30)
    session_ttl_hours: float = Field(12.0, gt=0, le=24 * 30)
    lockout_threshold: float = Field(5.0, ge=1)
    lockout_base_seconds: float = Field(30.0, gt=0)
    lockout_max_seconds: float = Field(900.0, gt=0, le=86_400)
    failure_half_life_seconds: float = Field(900.0, gt=0)
    # failures of one account summed over every client (address): a guesser rotating addresses is
    # locked out too (same decay and cap: never a permanent lock)
    account_lockout_threshold: float = Field(20.0, ge=1)
    bcrypt_rounds: int = Field(12, ge=4, le=16)
    # second factor (TOTP) for password accounts: required for the roles that approve, override, promote or
    # administer (backend.domain.MFA_PERMS); ``mfa_all_roles``: for every role. ``mfa_required=false`` lifts the
    # duty for accounts not yet enrolled (dev and test only: env=production ignores it); enrolled accounts always
    # need their code.
    mfa_required: bool = True
    mfa_all_roles: bool = False
    mfa_issuer: str = Field("creditrisk", min_length=1, max_length=40)  # the name shown in authenticator apps
    mfa_recovery_codes: int = Field(10, ge=4, le=20)
    mfa_pending_seconds: float = Field(300.0, ge=30, le=3600)  # console: from the password to the code


# Scoring API access: tokens and per-caller limits (CREDITRISK_API__...).
# Scoring API settings (``CREDITRISK_API__...``): tokens, limits. Nested into Settings.
#
# ``signing_keys`` is a JSON key ring (see :mod:`backend.identity.tokens`)::
#
#     {"active": "k2", "keys": [{"kid": "k2", "alg": "ES256", "private_key": "-----BEGIN PRIVATE KEY-----..."},
#                               {"kid": "k1", "alg": "ES256", "public_key": "-----BEGIN PUBLIC KEY-----..."}]}
#
# The active key signs; every key in the ring verifies (a retired key may keep only its public half).
# Empty in dev/test: a ring is created once under ``data_dir`` (file mode 0600). In production an
# empty ring is refused at start-up.
class ApiSettings(BaseModel):
    issuer: str = "creditrisk"
    audience: str = "creditrisk-api"
    token_ttl_seconds: int = Field(900, ge=60, le=86_400)
    signing_keys: SecretStr = SecretStr("")  # empty in dev: a key ring is created under data_dir
    clock_leeway_seconds: int = Field(5, ge=0, le=120)  # tolerated clock skew for exp / nbf / iat
    max_batch: int = Field(100, ge=1, le=10_000)
    max_body_bytes: int = Field(1_000_000, ge=1_000)
    max_string_length: int = Field(10_000, ge=100, le=1_000_000)  # any JSON string (free text included)
    rate_limit_per_minute: int = Field(600, ge=1)  # per client (token subject), all /v1 endpoints together
    token_rate_limit_per_minute: int = Field(60, ge=1)  # /oauth/token, per remote address and per client id
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDR networks); empty: none,
    # the remote address is the TCP peer's (uvicorn's own proxy-header handling is always off)
    trusted_proxies: list[str] = Field(default_factory=list)
    rate_limit_url: str = ""  # empty: in-process limiter; redis://... for a shared one
    rate_limit_socket_timeout: float = Field(0.05, gt=0, le=5)  # Redis connect/read timeout (seconds)
    rate_limit_failure_cooldown: float = Field(5.0, ge=0, le=300)  # skip a failed Redis this long
    idempotency_ttl_hours: float = Field(24.0, gt=0, le=24 * 30)
    # a key reserved this long without an answer was abandoned (its worker died or the database went away):
    # the next retry takes it over; longer than the slowest write (an LLM explanation)
    idempotency_lease_seconds: float = Field(60.0, ge=1, le=3600)
    principal_cache_seconds: float = Field(5.0, ge=0, le=300)  # how long a user/client status check is reused
    docs: bool = True  # serve /docs and /openapi.json

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        out = []
        for item in (x.strip() for x in v):
            if not item:
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item[:60]!r} is not an IP address or network (CIDR); '*' is refused") from None
            out.append(item)
        return out

    @field_validator("rate_limit_url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be empty (in-process) or a redis://, rediss:// or unix:// URL")
        return v
