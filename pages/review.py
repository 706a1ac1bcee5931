"""Review queue (risk manager, admin): material overrides waiting for a second person."""

from __future__ import annotations

import streamlit as st

from app.components.text import plain
from app.components.workspace import OUTCOMES
from app.guard import label_simulated, open_decision, require
from app.services import get_services
from backend.domain import DecisionError, Perm

user = require(Perm.APPROVE_OVERRIDES)
svc = get_services()
st.title("Review queue")
label_simulated()
st.caption("Overrides that approve a high-risk applicant, approve against a deny recommendation or exceed the "
           "loan-amount cap need a second person with a manager role, never the officer who made them.")
if flash := st.session_state.pop("review_flash", None):
    st.success(flash)

queue = svc.decisions.review_queue(actor=user, limit=100)
if not queue:
    st.info("Nothing is waiting for approval.")
for d in queue:
    with st.container(border=True):
        st.markdown(f"**{plain(OUTCOMES.get(d.outcome, d.outcome))}** requested by {plain(d.decided_by or '')} "
                    f"against a **{plain(OUTCOMES.get(d.recommendation or '', d.recommendation or ''))}** recommendation · ${d.loan_amount:,.0f} · "
                    f"PD {d.pd or 0:.1%} · {d.decided_at:%Y-%m-%d %H:%M} UTC")
        st.caption("Why a second person: " + "; ".join(d.materiality))
        st.markdown(f"Reason: {plain(d.reason_label or '')}")
        st.text(d.reason_text or "")
        if d.model_reasons:
            st.caption("Model's principal reasons: " + "; ".join(d.model_reasons))
        note = st.text_input("Note (required to return it; at least 20 characters)", key=f"review_note_{d.id}")
        c1, c2, c3 = st.columns(3)
        try:
            if c1.button("Approve", key=f"review_ok_{d.id}", type="primary"):
                svc.decisions.approve(d.id, approver=user, approve=True, note=note or None)
                st.session_state["review_flash"] = "Override approved; the decision is final."
                st.rerun()
            if c2.button("Return to the officer", key=f"review_no_{d.id}"):
                svc.decisions.approve(d.id, approver=user, approve=False, note=note or None)
                st.session_state["review_flash"] = "Override returned to the officer."
                st.rerun()
        except DecisionError as exc:
            st.error(str(exc))
        if d.prediction_id and c3.button("Open the application", key=f"review_open_{d.id}"):
            open_decision(str(d.prediction_id))
