"""creditrisk console entrypoint: page config, login, navigation built from the user's role."""

from __future__ import annotations

import streamlit as st

from app.auth import ConsoleAuth
from app.components.text import plain
from app.guard import NOT_ALLOWED
from app.navigation import PAGES, PageSpec, pages_for
from app.services import services_or_stop
from backend.domain import ROLE_LABELS, ROLES, Role, allowed

st.set_page_config(page_title="creditrisk", page_icon=":material/account_balance:", layout="wide")

services = services_or_stop()
auth = ConsoleAuth(services)
user = auth.login()

if user is None:
    auth.forget_cookie()
    st.caption("creditrisk — AI-assisted credit decisioning. Accounts are created by an administrator "
               "(`creditrisk users add`); there is no self-registration.")
    # every address keeps its page while the form is shown: a link to /decision?id=… opens that decision after
    # the sign-in, and a run that could not see the user yet does not send the browser to Home
    st.navigation([st.Page(lambda: None, title="Sign in", url_path="signin", default=True)]
                  + [st.Page(lambda: None, title=s.title, url_path=s.path.stem) for s in PAGES[1:]],
                  position="hidden")
    st.stop()

with st.sidebar:
    st.markdown(f"**{plain(user.display_name)}**  \n{ROLE_LABELS.get(Role(user.role), user.role)}")
    auth.logout_button()
auth.render_cookie()


def _refusal(spec: PageSpec) -> st.Page:
    """A page the role may not see keeps its address but never runs: the user is told why and who can see it,
    instead of landing on Home with nothing said (a URL typed or shared by a colleague)."""
    who = [ROLE_LABELS.get(Role(r), r) for r in ROLES if allowed(r, spec.perm)]

    def refuse() -> None:
        st.title("Not available to you", anchor=False)
        st.error(NOT_ALLOWED, icon=":material/lock:")
        st.write(f"“{spec.title}” is for: {', '.join(who) or 'no role'}. "
                 "Ask an administrator if your work needs it.")
        st.page_link(str(PAGES[0].path), label="Back to Home", icon=":material/home:")

    return st.Page(refuse, title=spec.title, url_path=spec.path.stem, visibility="hidden")


mine = pages_for(user.role)
sections: dict[str, list[st.Page]] = {}
for spec in mine:
    sections.setdefault(spec.section, []).append(
        st.Page(str(spec.path), title=spec.title, icon=spec.icon, default=spec.file == "home.py"))
sections[mine[0].section] += [_refusal(s) for s in PAGES if s not in mine and s.path.exists()]
st.navigation(sections, expanded=True).run()  # every page of the role, no "View more"; the rest refuse
