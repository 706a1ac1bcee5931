"""Every page calls ``require(perm)`` first: the role is checked again on the page itself. The session-state
keys the login writes (``USER_KEY``, ``TOKEN_KEY``) live here, so app/auth.py and app/sso.py share them
without importing each other."""

from __future__ import annotations

import streamlit as st

from backend.domain import Actor, Perm, allowed

USER_KEY = "auth_user"  # the signed-in Actor, set by the login (app/auth.py, app/sso.py)
TOKEN_KEY = "auth_token"  # noqa: S105 - the session_state key of the server-side session token, not a secret
NOT_ALLOWED = "You do not have access to this page."


def current_user() -> Actor | None:
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, Actor) else None


def require(perm: Perm) -> Actor:
    user = current_user()
    if user is None:
        st.error("Please log in.")
        st.stop()
    if not allowed(user.role, perm):
        st.error(NOT_ALLOWED, icon=":material/lock:")
        st.stop()
    return user  # type: ignore[return-value]


def simulated_banner(count: int | None = None) -> None:
    """Demo data is labeled as simulated wherever it is shown."""
    extra = f" ({count:,} simulated applications)" if count else ""
    st.caption(f":material/science: Simulated data: figures on this page come from the synthetic demo book{extra}, "
               "not from real applicants.")


@st.cache_data(ttl=30, show_spinner=False)
def _simulated_count() -> int:
    from app.services import get_services

    return get_services().book.simulated_count()


def history_banner() -> None:
    """While the simulated history is still being written (`make run` opens the console meanwhile), or when its
    writing stopped before the end: say so above the page's figures (a file read, not cached: it moves)."""
    from app.services import get_services

    progress = get_services().book.history_progress()
    if progress is None or progress.complete:
        return
    if progress.running:
        st.info(progress.sentence(), icon=":material/hourglass_top:")
    else:
        st.warning(progress.sentence(), icon=":material/warning:")


def history_key() -> str:
    """Part of the key of figures a page caches: it changes with every day the history's writer records and when
    it finishes, so a reload shows the days written since (and, once done, the cache holds again)."""
    from app.services import get_services

    progress = get_services().book.history_progress()
    return "" if progress is None else f"{progress.state}:{progress.day}"


def label_simulated() -> None:
    """The simulated-data banner on any page that shows book data, when the book holds simulated rows (and the
    history's progress while it is being written)."""
    history_banner()
    n = _simulated_count()
    if n:
        simulated_banner(n)


OPEN_DECISION_KEY = "open_prediction_id"


def open_decision(prediction_id: str) -> None:
    """Go to the decision page for one scored application."""
    st.session_state[OPEN_DECISION_KEY] = prediction_id
    from app.navigation import PAGES_DIR

    st.switch_page(str(PAGES_DIR / "decision.py"))
