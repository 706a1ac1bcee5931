"""The identity feature.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.identity.auth import (
    CLI_TOKEN_PREFIX,
    LOGIN_FAILED,
    MFA_CODE_FAILED,
    AuthService,
    LoginResult,
    normalize_username,
)
from backend.identity.clients import ApiClientService, ClientError
from backend.identity.config import ApiSettings, AuthSettings, SsoSettings
from backend.identity.mfa import Enrolment, MfaError, current_code, normalize_code
from backend.identity.passwords import MAX_PASSWORD_LENGTH
from backend.identity.queries import UserRepository
from backend.identity.sso import SsoService
from backend.identity.sso_secrets import SECRETS_MISMATCH, mismatches
from backend.identity.tokens import (
    CLIENT_SCOPES,
    SCOPES,
    KeyRingError,
    TokenInvalid,
    TokenService,
    key_file,
    load_key_ring,
    scopes_for_role,
    write_key_file,
)
from backend.identity.users import UserError, UserService

__all__ = [
    "ApiClientService",
    "ApiSettings",
    "AuthService",
    "AuthSettings",
    "CLIENT_SCOPES",
    "ClientError",
    "CLI_TOKEN_PREFIX",
    "current_code",
    "Enrolment",
    "LoginResult",
    "MFA_CODE_FAILED",
    "MfaError",
    "normalize_code",
    "key_file",
    "KeyRingError",
    "load_key_ring",
    "LOGIN_FAILED",
    "MAX_PASSWORD_LENGTH",
    "mismatches",
    "normalize_username",
    "SCOPES",
    "scopes_for_role",
    "SECRETS_MISMATCH",
    "SsoService",
    "SsoSettings",
    "TokenInvalid",
    "TokenService",
    "UserError",
    "UserRepository",
    "UserService",
    "write_key_file",
]
