"""Home: what is configured and healthy, and a summary of the decision book."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.charts import monthly_recommendations
from app.components.pending import pending_panel
from app.components.text import plain
from app.guard import history_banner, require, simulated_banner
from app.navigation import pages_for
from app.services import get_services
from backend.decisioning import FeedbackError, period_of
from backend.domain import ROLE_LABELS, Perm, Role

user = require(Perm.VIEW_HOME)
svc = get_services()


@st.cache_data(ttl=30, show_spinner=False)
def _summary() -> dict:
    return get_services().book.summary()


@st.cache_data(ttl=15, show_spinner=False)
def _health() -> dict:
    return get_services().health.report()


st.title(f"Welcome, {plain(user.display_name)}")
st.caption(f"Signed in as {user.username} · {ROLE_LABELS.get(Role(user.role), user.role)}")

SURVEY_DONE_KEY = "home_survey_done"
SATISFACTION = {1: "1 · very dissatisfied", 2: "2", 3: "3", 4: "4", 5: "5 · very satisfied"}


def _survey() -> None:
    """The monthly survey for the people who decide (FeedbackService.survey_due says who and when)."""
    period = period_of(svc.clock.now())
    if st.session_state.get(SURVEY_DONE_KEY) == period:
        st.success(f"Thank you: your survey answers for {period} are recorded.", icon=":material/check_circle:")
        return
    if not svc.feedback.survey_due(user, svc.clock.now()):
        return
    with st.form("home_survey"):
        st.markdown(f"**Monthly survey ({period})**: two quick questions about working with the AI assistant.")
        nps = st.radio("How likely are you to recommend the AI assistant to a colleague? "
                       "(0 = not at all, 10 = extremely)", options=list(range(11)), index=None, horizontal=True)
        sat = st.radio("How satisfied are you with it this month? (optional)", options=list(SATISFACTION),
                       format_func=SATISFACTION.__getitem__, index=None, horizontal=True)
        comment = st.text_area("Comment (optional)", max_chars=1000, height=80)
        if not st.form_submit_button("Send answers"):
            return
    if nps is None:
        st.error("Choose a score from 0 to 10 (or come back later).")
        return
    try:
        svc.feedback.submit_survey(actor=user, period=period, nps=int(nps),
                                   satisfaction=int(sat) if sat is not None else None, comment=comment or None)
    except FeedbackError as exc:
        st.error(str(exc))
        return
    st.session_state[SURVEY_DONE_KEY] = period
    st.rerun()


_survey()
pending_panel(svc, user)

book = _summary()
st.subheader("Decision book")
history_banner()
if book["simulated"]:
    simulated_banner(book["simulated"])
if not book["applications"]:
    st.info("No applications yet. `make run` prepares a simulated demo book; officers can score "
            "applications on the *Score an application* page.")
else:
    recs, n = book["recommendations"], max(book["predictions"], 1)
    c = st.columns(5)
    c[0].metric("Applications", f"{book['applications']:,}")
    c[1].metric("Scored", f"{book['predictions']:,}")
    c[2].metric("Recommended approve", f"{recs.get('approve', 0) / n:.1%}")
    c[3].metric("Manual review", f"{recs.get('manual_review', 0) / n:.1%}")
    c[4].metric("Mean predicted PD", f"{book['mean_pd']:.1%}" if book["mean_pd"] is not None else "–")
    if book["first_applied"]:
        st.caption(f"Applications from {book['first_applied']:%d %b %Y} to {book['last_applied']:%d %b %Y} (UTC). "
                   f"Final decisions: {sum(book['decisions'].values()):,}; overrides: {book['overrides']:,}; "
                   f"awaiting second approval: {book['pending_approval']:,}.")
    if book["monthly"]:
        st.plotly_chart(monthly_recommendations(book["monthly"]))

st.subheader("System")
cfg = svc.settings.describe()
health = _health()
rows = []
for name in ("database", "cache", "model", "explainer"):
    h = health.get(name, {})
    rows.append({"component": name, "status": "healthy" if h.get("ok") else "UNAVAILABLE",
                 "latency (ms)": f"{h['latency_ms']:.2f}" if h.get("latency_ms") is not None else "–", "configured": cfg.get(name, h.get("backend", "")),
                 "detail": h.get("detail", "")})
st.dataframe(pd.DataFrame(rows), hide_index=True,
             column_config={"detail": st.column_config.TextColumn(width="large")})
st.caption(f"Environment: {cfg['environment']}. Production backends are switched on by settings alone "
           "(CREDITRISK_DATABASE__URL, CREDITRISK_CACHE__URL, CREDITRISK_LLM__PROVIDER, CREDITRISK_MODEL__SERVER).")

others = [spec for spec in pages_for(user.role) if spec.file != "home.py"]
if others:
    st.subheader("Your pages")
    for spec in others:
        st.page_link(str(spec.path), label=spec.title, icon=spec.icon)
