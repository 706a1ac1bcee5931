"""Users (admin): add users, disable/enable them, reset a lost second factor. Disabling and resetting end the
user's sessions at once."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.guard import require
from app.services import get_services
from backend.domain import ROLE_LABELS, ROLES, Actor, Perm, Role
from backend.identity import UserError

user = require(Perm.MANAGE_USERS)
svc = get_services()
actor = Actor(user.username, user.role)

st.title("Users")
if flash := st.session_state.pop("users_flash", None):
    st.success(flash)
rows = svc.users.list()
table = st.empty()

left, right = st.columns(2)
with left, st.form("users_add_form", clear_on_submit=True):
    st.subheader("Add a user")
    username = st.text_input("Username", max_chars=64)
    display = st.text_input("Display name", max_chars=128)
    role = st.selectbox("Role", ROLES, format_func=lambda r: ROLE_LABELS[Role(r)])
    senior = st.checkbox("Senior officer (eligible for pilot phases)")
    if st.form_submit_button("Add user", type="primary"):
        try:
            info, password = svc.users.add(username, role=role, display_name=display, senior=senior, actor=actor)
        except UserError as exc:
            st.error(str(exc))
        else:
            st.success(f"Created {info.username}. Initial password (shown once, hand it over securely):")
            st.code(password or "", language=None)

with right, st.form("users_toggle_form"):
    st.subheader("Disable or enable")
    others = [r["username"] for r in rows if r["username"] != user.username]
    target = st.selectbox("User", others, index=None, placeholder="Choose a user")
    disable = st.radio("Action", ["Disable (ends their sessions)", "Enable"], horizontal=True)
    if st.form_submit_button("Apply") and target:
        try:
            svc.users.set_disabled(str(target), disable.startswith("Disable"), actor=actor)
        except UserError as exc:
            st.error(str(exc))
        else:
            st.session_state["users_flash"] = f"{target} {'disabled' if disable.startswith('Disable') else 'enabled'}."
            st.rerun()

with st.form("users_mfa_reset_form"):
    st.subheader("Reset a second factor")
    st.caption("For a lost authenticator: the user enrols again at their next sign-in; their sessions and CLI "
               "tokens end. Audited. Another administrator resets yours.")
    enrolled = [r["username"] for r in rows if r["second_factor"] and r["username"] != user.username]
    lost = st.selectbox("User with a second factor", enrolled, index=None, placeholder="Choose a user")
    if st.form_submit_button("Reset second factor") and lost:
        try:
            svc.users.reset_mfa(str(lost), actor=actor)
        except UserError as exc:
            st.error(str(exc))
        else:
            st.session_state["users_flash"] = f"Second factor of {lost} reset: they enrol again at their next sign-in."
            st.rerun()

table.dataframe(pd.DataFrame(svc.users.list()), hide_index=True,
                column_config={"created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm")})
