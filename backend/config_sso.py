"""Single sign-on for the console (``CREDITRISK_SSO__...``): OpenID Connect through Streamlit's ``st.login``.

Streamlit reads its OIDC client configuration from the ``[auth]`` table of a ``secrets.toml`` file,
not from our settings. These settings are the source of truth; ``creditrisk sso write-secrets``
turns them into that table (see :mod:`backend.services.sso_secrets`) and the console refuses to offer
SSO while the file it reads disagrees with them.

``group_roles`` maps identity-provider groups (the ``groups_claim`` of the ID token) to console roles,
as JSON: ``{"creditrisk-officers": "loan_officer", "creditrisk-risk": "risk_manager"}``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from backend.permissions import ROLES

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
