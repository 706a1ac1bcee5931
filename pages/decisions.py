"""Applications: an officer's own scored applications (managers see everyone's), opened one at a time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.guard import open_decision, require
from app.services import get_services
from backend.permissions import Perm

user = require(Perm.VIEW_DECISIONS)
svc = get_services()
st.title("Applications")

STATES = {"awaiting_decision": "Awaiting decision", "pending_approval": "Awaiting manager approval",
          "decided": "Decided", "returned": "Returned by a manager", "no_score": "Not scored"}
rows = svc.decisions.decisions_for(user, limit=500)
if not rows:
    st.info("No applications yet. Score one on *Score an application*.")
    st.stop()
state = st.segmented_control("Show", ["all", *STATES], default="all", format_func=lambda s: "All" if s == "all" else STATES[s],
                             key="decisions_state")
shown = [r for r in rows if state in (None, "all") or r.state == state]
df = pd.DataFrame([{"applied (UTC)": r.applied_at, "application": r.external_id or r.application_id[:8],
                    "loan amount": r.loan_amount, "recommendation": r.recommendation, "PD": r.pd,
                    "state": STATES.get(r.state, r.state), "decision": r.outcome or "",
                    "submitted by": r.submitted_by or ""} for r in shown])
event = st.dataframe(df, hide_index=True, on_select="rerun", selection_mode="single-row", key="decisions_table",
                     column_config={"PD": st.column_config.NumberColumn(format="percent"),
                                    "loan amount": st.column_config.NumberColumn(format="dollar"),
                                    "applied (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
st.caption("Officers see only the applications they submitted. Select a row to open it.")
picked = event.selection.rows if event and event.selection else []
if picked and shown[picked[0]].prediction_id:
    open_decision(str(shown[picked[0]].prediction_id))
