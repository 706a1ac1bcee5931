"""Decision page: card, reasons, waterfall, explanation, Q&A, adverse action notice, decision form."""

from __future__ import annotations

import streamlit as st

from app.components.charts import attribution_waterfall
from app.components.decision import decision_card, reason_list
from app.components.text import plain
from app.components.workspace import OUTCOMES, explanation_panel, letter_panel, override_form, qa_panel
from app.guard import OPEN_DECISION_KEY, require
from app.services import get_services
from backend.permissions import Perm, allowed
from backend.services.override_rules import DecisionNotFound
from backend.training.features import FEATURES_BY_NAME

user = require(Perm.VIEW_DECISIONS)
svc = get_services()
st.title("Decision")

pid = st.session_state.get(OPEN_DECISION_KEY)
if not pid:
    st.info("Open an application from *Applications* or score one on *Score an application*.")
    st.stop()
try:
    result = svc.workspace.result(pid, actor=user)
except DecisionNotFound:
    st.error("No such application.")
    st.stop()

current = svc.decisions.current(result.application_id, actor=user)
if flash := st.session_state.pop(f"decision_flash_{pid}", None):
    st.success(flash)
st.caption(f"Application {plain(result.application_id)} · model recommendation shown below")
decision_card(result)

tabs = st.tabs(["Reasons", "Explanation", "Questions", "Decision", "Adverse action notice"])
with tabs[0]:
    left, right = st.columns([2, 3])
    with left:
        reason_list(result)
    with right:
        items = [(FEATURES_BY_NAME[k].description if k in FEATURES_BY_NAME else k, v)
                 for k, v in result.attributions.items()]
        st.plotly_chart(attribution_waterfall(result.base_value, items, result.margin))
with tabs[1]:
    explanation_panel(svc.workspace, pid, user)
with tabs[2]:
    qa_panel(svc.workspace, pid, user)
with tabs[3]:
    if current is not None and current.status in ("final", "pending_approval"):
        state = "awaiting a manager's approval" if current.status == "pending_approval" else "final"
        st.markdown(f"**{OUTCOMES.get(current.outcome, current.outcome)}** ({state}), "
                    f"decided by {plain(current.decided_by or '')} on {current.decided_at:%Y-%m-%d %H:%M} UTC.")
        if current.is_override:
            st.markdown(f"Override reason: {plain(current.reason_label or '')}")
            st.text(current.reason_text or "")
        if current.materiality:
            st.caption("Needs a second person because: " + "; ".join(current.materiality))
    elif allowed(user.role, Perm.DECIDE):
        if current is not None and current.status == "rejected":
            st.warning("A manager returned the previous override; decide again.")
        override_form(svc.decisions, result, user)
    else:
        st.info("No decision recorded yet.")
with tabs[4]:
    outcome = current.outcome if current is not None and current.status == "final" else result.recommendation
    human = [current.reason_text] if current is not None and current.is_override and current.reason_text else None
    if outcome != "deny":
        st.info("An adverse action notice is needed only for a denial.")
    else:
        letter_panel(result, outcome, human, svc.settings)
