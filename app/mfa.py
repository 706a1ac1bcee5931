"""The console's second sign-in step: a one-time code after the password, or (for an account whose role
requires a second factor and has none) enrolment: a QR code drawn on the server, the key to type by hand,
the first code to confirm it, then the recovery codes, shown once.

The ticket from ``AuthService.authenticate(two_step=True)`` lives in session state (server side); the
second step runs ``AuthService.second_factor``, which throttles and audits every code like a password.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from backend.container import Services
from backend.domain import Actor
from backend.identity import Enrolment, LoginResult

MFA_KEY = "auth_mfa_pending"  # {"ticket", "needs", "username", "client"}
ENROL_KEY = "auth_mfa_enrolment"
CODES_KEY = "auth_mfa_recovery"  # (user, codes) between the confirming code and "continue"
MFA_ERROR_KEY = "auth_mfa_error"
CODE_HELP = "6 digits from your authenticator app (spaces are fine), or one of your recovery codes"


def pending() -> bool:
    return MFA_KEY in st.session_state or CODES_KEY in st.session_state


def start(result: LoginResult, username: str, client: str) -> None:
    """Remember a password that was accepted and waits for its second factor."""
    st.session_state[MFA_KEY] = {"ticket": result.ticket, "needs": result.needs, "username": username,
                                 "client": client}
    st.session_state.pop(ENROL_KEY, None)
    st.session_state.pop(MFA_ERROR_KEY, None)


def clear() -> None:
    for key in (MFA_KEY, ENROL_KEY, CODES_KEY, MFA_ERROR_KEY):
        st.session_state.pop(key, None)


def render(svc: Services, complete: Callable[[Actor], None]) -> None:
    """Draw the step in progress; ``complete(user)`` signs the user in when it passes."""
    if CODES_KEY in st.session_state:
        _show_recovery_codes(complete)
        return
    info = st.session_state[MFA_KEY]
    enrol = None
    if info["needs"] == "enrolment":
        enrol = st.session_state.get(ENROL_KEY)
        if not isinstance(enrol, Enrolment):
            enrol = svc.auth.begin_enrolment(info["ticket"], client=info["client"])
            if enrol is None:
                clear()
                st.warning("The sign-in took too long: enter your password again.")
                return
            st.session_state[ENROL_KEY] = enrol
    with st.form("mfa_form", clear_on_submit=True):
        if enrol is not None:
            st.subheader("Set up two-step verification", anchor=False)
            st.write(f"Your role requires a second factor for **{info['username']}**. Scan this QR code with an "
                     "authenticator app (Google Authenticator, Microsoft Authenticator, 1Password, …), or type "
                     "the key by hand, then enter the 6-digit code the app shows.")
            st.image(enrol.qr_png, caption="QR code for your authenticator app", width=220)
            st.code(" ".join(enrol.secret[i:i + 4] for i in range(0, len(enrol.secret), 4)), language=None)
        else:
            st.subheader("Two-step verification", anchor=False)
            st.write(f"Enter the current code from your authenticator app for **{info['username']}**, or one of "
                     "your recovery codes.")
        code = st.text_input("One-time code", help=CODE_HELP, autocomplete="one-time-code", max_chars=40)
        submitted = st.form_submit_button("Verify and continue" if enrol is not None else "Verify")
    if st.button("Back to sign in", key="mfa_cancel", type="tertiary"):
        clear()
        st.rerun()
    if submitted:
        result = svc.auth.second_factor(info["ticket"], code, client=info["client"])
        if result.ok and result.user is not None:
            st.session_state.pop(MFA_KEY, None)
            st.session_state.pop(ENROL_KEY, None)
            if result.recovery_codes:
                st.session_state[CODES_KEY] = (result.user, result.recovery_codes)
                st.rerun()
            complete(result.user)
            return
        if result.reason == "mfa_ticket":
            clear()
            st.warning(result.message)
            st.rerun()
        st.session_state[MFA_ERROR_KEY] = result.message
    if st.session_state.get(MFA_ERROR_KEY):
        st.error(st.session_state[MFA_ERROR_KEY])


def _show_recovery_codes(complete: Callable[[Actor], None]) -> None:
    user, codes = st.session_state[CODES_KEY]
    st.subheader("Save your recovery codes", anchor=False)
    st.warning("Each code signs you in once in place of a one-time code, if you lose your authenticator app. "
               "Keep them somewhere safe: they are shown now and never again.", icon=":material/key:")
    st.code("\n".join(codes), language=None)
    if st.button("I have saved them: continue", key="mfa_codes_saved", type="primary"):
        st.session_state.pop(CODES_KEY, None)
        complete(user)
