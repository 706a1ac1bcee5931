"""Console single sign-on (OpenID Connect through ``st.login``); the password form stays the embedded default.

* The login screen offers "Sign in with <label>" when ``CREDITRISK_SSO__ENABLED=true`` and the
  ``[auth]`` secrets Streamlit loaded match the settings (else it says what to run, and no SSO button).
* After the provider redirects back, ``st.user`` holds the verified ID-token claims;
  :class:`backend.identity.sso.SsoService` maps them to one role, provisions the user and audits it.
  Then a server-side session starts exactly as for a password login, and the page guards read the
  same ``auth_user`` from session state.
* A refusal (no mapped group, ambiguous groups, disabled account...) shows its message and a
  "Sign out" button (``st.logout``); it is audited once per browser session, not on every rerun.
* Logout ends our session, then ``st.logout()`` clears Streamlit's identity cookie and goes through the
  provider's ``end_session_endpoint`` when it has one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import streamlit as st

from app.guard import TOKEN_KEY, USER_KEY
from backend.container import Services
from backend.domain import Actor
from backend.identity import SECRETS_MISMATCH, mismatches

SSO_KEY = "auth_sso"  # True while this browser session's console session came from single sign-on
SEEN_KEY = "auth_sso_seen"  # {"fp", "ok", "message", "reason"}: the outcome for this identity, decided once
ENDED_KEY = "auth_sso_ended"  # our session ended (disabled, expired, revoked): no silent re-sign-in
SESSION_ENDED = "Your session has ended. Sign in again."
SIGN_OUT = "Sign out"


def _fingerprint(claims: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(claims, sort_keys=True, default=str).encode()).hexdigest()


class ConsoleSso:
    def __init__(self, services: Services) -> None:
        self.svc = services
        self.cfg = services.settings.sso
        self.enabled = self.cfg.enabled
        self._problem: str | None = None
        if self.enabled:
            diff = mismatches(self.cfg, self._loaded_auth())
            self._problem = SECRETS_MISMATCH.format(keys=", ".join(diff)) if diff else None

    @property
    def active(self) -> bool:
        """SSO can be used: enabled, and Streamlit's secrets agree with the settings."""
        return self.enabled and self._problem is None

    @property
    def password_login(self) -> bool:
        return not self.enabled or self.cfg.password_login

    @staticmethod
    def _loaded_auth() -> Any:
        try:
            return st.secrets.get("auth") if st.secrets.load_if_toml_exists() else None
        except Exception:  # noqa: BLE001 - an unreadable secrets file is a mismatch, shown as such
            return None

    @staticmethod
    def _claims() -> dict[str, Any]:
        try:
            info = dict(st.user.to_dict())
        except Exception:  # noqa: BLE001 - no identity in this runtime
            return {}
        info.pop("tokens", None)
        return info if info.get("is_logged_in") else {}

    # -- login screen ------------------------------------------------------------------------
    def render_entry(self) -> None:
        """The "Sign in with <label>" button, or why it is missing."""
        if not self.enabled:
            return
        if self._problem:
            st.error(self._problem, icon=":material/settings:")
            return
        if not self.cfg.password_login:
            st.subheader("Sign in")
        if st.button(f"Sign in with {self.cfg.label}", key="sso_sign_in", type="primary", icon=":material/login:"):
            st.login(self.cfg.provider)
        st.caption(f"Access comes from your groups in {self.cfg.label}; your console account is created at your "
                   "first sign-in." + (" Break-glass accounts sign in with a console password below."
                                       if self.cfg.password_login else ""))

    # -- after the provider's redirect ---------------------------------------------------------
    def resolve(self, *, client: str) -> tuple[bool, Actor | None]:
        """``(handled, user)``. ``handled`` is False when no SSO identity is present (show the login
        screen); otherwise ``user`` is the signed-in user, or None after a refusal page was rendered."""
        if not self.active:
            return False, None
        claims = self._claims()
        if not claims:
            for key in (SSO_KEY, SEEN_KEY, ENDED_KEY):
                st.session_state.pop(key, None)
            return False, None
        if st.session_state.get(ENDED_KEY):
            self._refusal(SESSION_ENDED, again=True)
            return True, None
        if st.session_state.get(SSO_KEY):
            user = self.svc.auth.validate(st.session_state.get(TOKEN_KEY))
            if user is not None:
                st.session_state[USER_KEY] = user
                return True, user
            for key in (SSO_KEY, TOKEN_KEY, USER_KEY):
                st.session_state.pop(key, None)
            st.session_state[ENDED_KEY] = True
            self._refusal(SESSION_ENDED, again=True)
            return True, None
        fp = _fingerprint(claims)
        seen = st.session_state.get(SEEN_KEY)
        if isinstance(seen, dict) and seen.get("fp") == fp and not seen.get("ok"):
            self._refusal(str(seen.get("message")), again=seen.get("reason") == "identity_expired")
            return True, None
        outcome = self.svc.sso.sign_in(claims, client=client)
        st.session_state[SEEN_KEY] = {"fp": fp, "ok": outcome.ok, "message": outcome.message,
                                      "reason": outcome.reason}
        if not outcome.ok or outcome.user is None:
            self._refusal(outcome.message, again=outcome.reason == "identity_expired")
            return True, None
        st.session_state[TOKEN_KEY] = self.svc.auth.start_session(outcome.user, client=f"sso {client}")
        st.session_state[USER_KEY] = outcome.user
        st.session_state[SSO_KEY] = True
        return True, outcome.user

    def _refusal(self, message: str, *, again: bool) -> None:
        st.title("Sign-in refused" if not again else "Sign in again")
        st.error(message, icon=":material/block:")
        with st.container(horizontal=True):
            if again and st.button(f"Sign in with {self.cfg.label}", key="sso_again", type="primary"):
                st.login(self.cfg.provider)
            if st.button(SIGN_OUT, key="sso_sign_out", icon=":material/logout:"):
                st.logout()

    # -- logout --------------------------------------------------------------------------------
    def owns_session(self) -> bool:
        return bool(st.session_state.get(SSO_KEY))

    def logout(self) -> None:
        """End our session, then Streamlit's identity cookie (and the provider's session, if it offers it)."""
        self.svc.auth.end_session(st.session_state.get(TOKEN_KEY))
        for key in (SSO_KEY, SEEN_KEY, ENDED_KEY, TOKEN_KEY, USER_KEY):
            st.session_state.pop(key, None)
        st.logout()
        st.stop()
