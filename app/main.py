"""creditrisk console entrypoint: page config, login, navigation built from the user's role."""

from __future__ import annotations

import streamlit as st

from app.auth import ConsoleAuth
from app.components.text import plain
from app.navigation import pages_for
from app.services import services_or_stop
from backend.permissions import ROLE_LABELS, Role

st.set_page_config(page_title="creditrisk", page_icon=":material/account_balance:", layout="wide")

services = services_or_stop()
auth = ConsoleAuth(services)
user = auth.login()

if user is None:
    auth.forget_cookie()
    st.caption("creditrisk — AI-assisted credit decisioning. Accounts are created by an administrator "
               "(`creditrisk users add`); there is no self-registration.")
    st.navigation([st.Page(lambda: None, title="Sign in", url_path="signin")], position="hidden")
    st.stop()

with st.sidebar:
    st.markdown(f"**{plain(user.display_name)}**  \n{ROLE_LABELS.get(Role(user.role), user.role)}")
    auth.logout_button()

sections: dict[str, list[st.Page]] = {}
for spec in pages_for(user.role):
    sections.setdefault(spec.section, []).append(
        st.Page(str(spec.path), title=spec.title, icon=spec.icon, default=spec.file == "home.py"))
st.navigation(sections, expanded=True).run()  # every page of the role, no "View more"
