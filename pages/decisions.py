"""Applications: an officer's own scored applications (managers see everyone's), opened one at a time.

The *Arm* column says how each application is decided (AI / Control / Shadow / Excluded). An
officer never sees the model's PD or recommendation of an application decided without the AI.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.manual import arm_label
from app.guard import label_simulated, open_decision, require
from app.services import get_services
from backend.permissions import Perm, allowed

user = require(Perm.VIEW_DECISIONS)
svc = get_services()
st.title("Applications")
label_simulated()

STATES = {"awaiting_decision": "Awaiting decision", "pending_approval": "Awaiting manager approval",
          "decided": "Decided", "returned": "Returned by a manager", "no_score": "Not scored"}
LIMIT = 500
rows = svc.decisions.decisions_for(user, limit=LIMIT)
if not rows:
    st.info("No applications yet. Score one on *Score an application*.")
    st.stop()
if len(rows) == LIMIT:
    st.caption(f"Showing the newest {LIMIT} applications; older ones are not listed here.")
state = st.segmented_control("Show", ["all", *STATES], default="all", format_func=lambda s: "All" if s == "all" else STATES[s],
                             key="decisions_state")
shown = [r for r in rows if state in (None, "all") or r.state == state]
sees_hidden = allowed(user.role, Perm.VIEW_ALL_DECISIONS)


records = []
for r in shown:
    visible = sees_hidden or r.ai_visible  # the service already blanks hidden model fields for officers
    records.append({"applied (UTC)": r.applied_at, "application": r.external_id or r.application_id[:8],
                    "applicant": r.applicant_masked,  # masked; the Decision page reveals (allowed roles, audited)
                    "loan amount": r.loan_amount, "arm": arm_label(r.arm, r.phase) if r.prediction_id else "",
                    "recommendation": r.recommendation if visible else None, "PD": r.pd if visible else None,
                    "state": STATES.get(r.state, r.state), "decision": r.outcome or "",
                    "submitted by": r.submitted_by or ""})
df = pd.DataFrame(records)
event = st.dataframe(df, hide_index=True, on_select="rerun", selection_mode="single-row", key="decisions_table",
                     column_config={"PD": st.column_config.NumberColumn(format="percent"),
                                    "loan amount": st.column_config.NumberColumn(format="dollar"),
                                    "applied (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
st.caption("Officers see only the applications they submitted. Select a row to open it. Arm: AI (the officer "
           "sees the model), Control or Shadow (the officer decides without it; the model scores silently), Excluded "
           "(outside the rollout phase: the usual manual process)." + ("" if sees_hidden else " The model's "
           "recommendation and PD are blank for applications you decide without the AI."))
picked = event.selection.rows if event and event.selection else []
if picked and shown[picked[0]].prediction_id:
    open_decision(str(shown[picked[0]].prediction_id))
