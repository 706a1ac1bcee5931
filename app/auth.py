"""Console login: streamlit-authenticator's widget, with our checks behind it.

One ``Authenticate`` per run of the entrypoint. Its known weaknesses are closed here:

* the credential check is ours (``AuthService.authenticate``): bcrypt for every attempt, a single
  failure message, decaying per-client lockout, an audit row per attempt;
* its cookie is a JWT that names only the user, valid until it expires; ours also carries a random
  session token whose hash lives in the ``sessions`` table, and every run re-validates it, so
  logout, disabling the user or a password change end the session and a copied cookie stops working;
* the cookie key comes from settings (a random per-install key in dev; required in production);
* no forgot-password, forgot-username or registration widgets are rendered;
* its 0.7 s pre-login sleep is turned off (cookies are read from the request headers);
* its cookie component (extra-streamlit-components' CookieManager) is never rendered: once mounted in the
  browser it sent the cookies back, which reran the script, so every page load ran twice and a link clicked
  or an address opened while that rerun was on its way landed on Home (the CI failures of 2026-12-06).
  The cookie is set and removed by a script the console renders (``render_cookie``), which sends nothing back.

An account with a second factor (or whose role requires one) gets a second step after its password:
the code, or enrolment with a QR code and recovery codes (``app/mfa.py``); the password alone starts nothing.

With ``CREDITRISK_SSO__ENABLED=true`` the screen also offers single sign-on (``app/sso.py``); its users
get the same server-side session and the same ``auth_user`` in session state.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import jwt
import streamlit as st
import streamlit_authenticator as stauth
import streamlit_authenticator.models.cookie_model as _stauth_cookie

from app import mfa
from app.guard import TOKEN_KEY, USER_KEY
from app.sso import ConsoleSso
from backend.container import Services
from backend.domain import Actor
from backend.identity import LOGIN_FAILED

log = logging.getLogger(__name__)
PENDING_KEY = "auth_pending_user"
ERROR_KEY = "auth_error"
JUST_LOGGED_IN_KEY = "auth_just_logged_in"
DELETE_COOKIE_KEY = "auth_delete_cookie"
COOKIE_SCRIPT_KEY = "auth_cookie_script"


def _js(value: str) -> str:
    """A JavaScript string literal that cannot close the <script> element it sits in."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cookie_script(name: str, value: str, expires: datetime) -> str:
    """The script that sets (or, with a past ``expires``, removes) the console's cookie for the whole site.
    Strict same-site; ``Secure`` whenever the console is served over HTTPS."""
    stamp = expires.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return ("<script>(() => { const secure = location.protocol === 'https:' ? '; Secure' : ''; "
            f"document.cookie = {_js(name)} + '=' + {_js(value)} + '; expires=' + {_js(stamp)} "
            "+ '; path=/; SameSite=Strict' + secure; })();</script>")


class _CookieScripts:
    """Stands in for extra-streamlit-components' CookieManager inside streamlit-authenticator: a set or a delete
    becomes the script ``render_cookie`` renders; reading is done from the request headers (``_cookie``)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def set(self, cookie: str, val: str, expires_at: datetime | None = None, **_kwargs: Any) -> None:
        st.session_state[COOKIE_SCRIPT_KEY] = cookie_script(cookie, val, expires_at or datetime.now(UTC))

    def delete(self, cookie: str, **_kwargs: Any) -> None:
        st.session_state[COOKIE_SCRIPT_KEY] = cookie_script(cookie, "", datetime(1970, 1, 1, tzinfo=UTC))


_stauth_cookie.stx = SimpleNamespace(CookieManager=_CookieScripts)  # type: ignore[attr-defined]


def _client() -> str:
    try:
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001 - not available in every runtime
        ip = None
    return ip if isinstance(ip, str) and ip else "unknown"


def _cookie(name: str) -> str | None:
    try:
        value = st.context.cookies.get(name)
    except Exception:  # noqa: BLE001
        return None
    return value if isinstance(value, str) and value else None


class ConsoleAuth:
    def __init__(self, services: Services) -> None:
        self.svc = services
        cfg = services.settings.auth
        self._key = services.settings.cookie_secret()
        credentials = {"usernames": {
            u["username"]: {"name": u["name"], "password": "!external", "roles": [u["role"]], "email": ""}
            for u in services.users.list() if not u["disabled"]}}
        self.authenticator = stauth.Authenticate(
            credentials, cfg.cookie_name, self._key, cfg.cookie_expiry_days, auto_hash=False, login_sleep_time=0)
        model = self.authenticator.authentication_controller.authentication_model
        model.check_credentials = self._check_credentials
        cookie = self.authenticator.cookie_controller.cookie_model
        cookie.get_cookie = self._get_cookie
        controller = self.authenticator.cookie_controller
        self._set_cookie = controller.set_cookie
        controller.set_cookie = lambda: st.session_state.__setitem__(JUST_LOGGED_IN_KEY, True)
        cookie._token_encode = self._token_encode
        self.sso = ConsoleSso(services)  # single sign-on (st.login) when CREDITRISK_SSO__ENABLED=true

    # -- hooks into the library ---------------------------------------------------------------
    def _check_credentials(self, username: str, password: str) -> bool:
        client = _client()
        result = self.svc.auth.authenticate(username, password, client=client, two_step=True)
        if result.reason == "mfa_pending":  # the password is right; the second step follows (app/mfa.py)
            mfa.start(result, self.svc.users.normalize(username), client)
            st.session_state[ERROR_KEY] = None
            return False
        st.session_state[PENDING_KEY] = result.user
        st.session_state[ERROR_KEY] = None if result.ok else result.message
        return result.ok

    def _complete(self, user: Actor) -> None:
        """Sign ``user`` in after the second step, as the library does after a password (then rerun)."""
        self.authenticator.authentication_controller.login(token={"username": user.username})
        st.session_state[PENDING_KEY] = user
        self._on_login({})
        st.session_state[JUST_LOGGED_IN_KEY] = True
        mfa.clear()
        st.rerun()

    def _on_login(self, _event: dict[str, Any]) -> None:
        user = st.session_state.get(PENDING_KEY)
        if isinstance(user, Actor):
            st.session_state[TOKEN_KEY] = self.svc.auth.start_session(user, client=f"console {_client()}")
            st.session_state[USER_KEY] = user

    def _token_encode(self) -> str:
        cookie = self.authenticator.cookie_controller.cookie_model
        return jwt.encode({"username": st.session_state["username"], "exp_date": cookie.exp_date,
                           "sid": st.session_state.get(TOKEN_KEY, "")}, self._key, algorithm="HS256")

    def _get_cookie(self) -> dict[str, Any] | None:
        """Re-authenticate from the cookie only while its server-side session is alive."""
        if st.session_state.get("logout"):
            return None
        raw = _cookie(self.svc.settings.auth.cookie_name)
        if raw is None:
            return None
        try:
            token = jwt.decode(raw, self._key, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        if not isinstance(token, dict) or float(token.get("exp_date", 0)) < time.time():
            return None
        user = self.svc.auth.validate(str(token.get("sid", "")))
        if user is None or user.username != token.get("username"):
            return None
        st.session_state[TOKEN_KEY] = token["sid"]
        st.session_state[USER_KEY] = user
        return token

    # -- what the entrypoint calls -------------------------------------------------------------
    def login(self) -> Actor | None:
        """Render the login form when needed; return the validated user or None."""
        handled, sso_user = self.sso.resolve(client=_client())
        if handled:  # an SSO identity is present: its user, or a refusal page already shown
            return sso_user
        slot = st.empty()
        if self.sso.password_login and mfa.pending() and not st.session_state.get("authentication_status"):
            with slot.container():
                mfa.render(self.svc, self._complete)
            return None
        box = slot.container()
        sso_entry = box.container()  # above the form; filled below only while nobody is signed in
        try:
            with box:
                if self.sso.password_login:
                    self.authenticator.login(location="main", key="login_form", callback=self._on_login,
                                             fields={"Form name": "Sign in", "Username": "Username",
                                                     "Password": "Password", "Login": "Sign in"})
        except Exception:  # noqa: BLE001 - the library raises LoginError for stale cookies etc.
            log.warning("sign-in check failed; the form is shown", exc_info=True)
            st.session_state["authentication_status"] = None
        if mfa.pending() and not st.session_state.get("authentication_status"):
            st.session_state["authentication_status"] = None  # not a failure: the second step is next
            st.rerun()
        if not st.session_state.get("authentication_status"):
            with sso_entry:
                self.sso.render_entry()
        if not self.sso.password_login:
            return None
        if st.session_state.get("authentication_status"):
            user = self.svc.auth.validate(st.session_state.get(TOKEN_KEY))
            if user is not None:
                st.session_state[USER_KEY] = user
                if st.session_state.pop(JUST_LOGGED_IN_KEY, False):
                    slot.empty()  # the form goes away in the same run
                    self._set_cookie()  # rendered outside the slot so the browser keeps it
                return user
            self._clear(revoked=True)
            st.warning("Your session has ended. Please sign in again.")
            return self.login()  # offer the form in this same run (status is cleared: no recursion)
        if st.session_state.get("authentication_status") is False:
            st.error(st.session_state.get(ERROR_KEY) or LOGIN_FAILED)
        return None

    def logout_button(self) -> None:
        if st.sidebar.button("Log out", key="logout_button", icon=":material/logout:"):
            if self.sso.owns_session():
                self.sso.logout()  # ends our session, then st.logout(); stops this run
            self.svc.auth.end_session(st.session_state.get(TOKEN_KEY))
            self._clear()
            st.session_state[DELETE_COOKIE_KEY] = True
            st.rerun()

    def forget_cookie(self) -> None:
        """After logout, remove the (already revoked) cookie from the browser on the next run."""
        if st.session_state.pop(DELETE_COOKIE_KEY, False):
            try:
                self.authenticator.cookie_controller.delete_cookie()
            except Exception:  # noqa: BLE001 - the server-side session is revoked either way
                log.debug("cookie delete failed", exc_info=True)
        self.render_cookie()

    @staticmethod
    def render_cookie() -> None:
        """Render the pending cookie script (set after a sign-in, delete after a log-out). It is rendered on every
        run with the same body, so the browser keeps one element and a rerun that follows at once cannot drop it
        before it ran; the script's value is our own signed token and fixed text (no user or LLM text)."""
        script = st.session_state.get(COOKIE_SCRIPT_KEY)
        if isinstance(script, str):
            with st.sidebar:
                st.html(script, unsafe_allow_javascript=True)

    def _clear(self, revoked: bool = False) -> None:
        try:
            self.authenticator.logout(location="unrendered")
        except Exception:  # noqa: BLE001 - already logged out in the library's view
            log.debug("library logout failed", exc_info=True)
        for key in (TOKEN_KEY, USER_KEY, PENDING_KEY, ERROR_KEY, COOKIE_SCRIPT_KEY):
            st.session_state.pop(key, None)
        mfa.clear()
        st.session_state["authentication_status"] = None
        if revoked:
            st.session_state["logout"] = True
