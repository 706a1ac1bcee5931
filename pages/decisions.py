"""Applications: an officer's own scored applications (managers see everyone's), found by id or
applicant, a page at a time over the whole book, opened one at a time.

The *Arm* column says how each application is decided (AI / Control / Shadow / Excluded). An
officer never sees the model's PD or recommendation of an application decided without the AI.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.manual import arm_label
from app.guard import label_simulated, open_decision, require
from app.services import get_services
from backend.domain import Perm, allowed

user = require(Perm.VIEW_DECISIONS)
svc = get_services()
st.title("Applications")
label_simulated()

STATES = {"awaiting_decision": "Awaiting decision", "pending_approval": "Awaiting manager approval",
          "decided": "Decided", "returned": "Returned by a manager", "no_score": "Not scored"}
PER_PAGE = 50
REC_WORDS = {"approve": "Approve", "deny": "Deny", "manual_review": "Manual review"}
query = st.text_input("Find an application by its id or the applicant's id", key="decisions_query",
                      placeholder="e.g. APP-000123, the first characters of an application id, or CUS3-0000042")
query = query.strip()
found = svc.pii.find(query, actor=user) if query else []  # the applicant's applications (blind index)
page = int(st.session_state.get("decisions_page", 0))
if st.session_state.get("decisions_last_query") != query:
    page = 0  # a new search starts on its first page
st.session_state["decisions_last_query"] = query
rows, total = svc.decisions.search(user, text=query, application_ids=found, page=page, per_page=PER_PAGE)
if total == 0:
    st.info("No application matches." if query else "No applications yet. Score one on *Score an application*.")
    st.stop()
pages = (total + PER_PAGE - 1) // PER_PAGE
page = min(page, pages - 1)
state = st.segmented_control("Show", ["all", *STATES], default="all", format_func=lambda s: "All" if s == "all" else STATES[s],
                             key="decisions_state")
shown = [r for r in rows if state in (None, "all") or r.state == state]
sees_hidden = allowed(user.role, Perm.VIEW_ALL_DECISIONS)


def blank(v: object) -> str:
    return "" if v is None else str(v)


records = []
for r in shown:
    visible = sees_hidden or r.ai_visible  # the service already blanks hidden model fields for officers
    records.append({"applied (UTC)": r.applied_at, "application": r.external_id or r.application_id[:8],
                    "applicant": blank(r.applicant_masked),  # masked; the Decision page reveals (audited)
                    "loan amount": r.loan_amount, "arm": arm_label(r.arm, r.phase) if r.prediction_id else "",
                    "recommendation": REC_WORDS.get(r.recommendation or "", "") if visible else "",
                    "PD": f"{r.pd:.1%}" if visible and r.pd is not None else "",
                    "state": STATES.get(r.state, r.state), "decision": REC_WORDS.get(r.outcome or "", blank(r.outcome)),
                    "submitted by": blank(r.submitted_by)})
event = st.dataframe(pd.DataFrame(records), hide_index=True, on_select="rerun", selection_mode="single-row",
                     key="decisions_table",
                     column_config={"loan amount": st.column_config.NumberColumn(format="dollar"),
                                    "applied (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
first = page * PER_PAGE + 1
st.caption(f"Applications {first:,}–{first + len(rows) - 1:,} of {total:,}" + (f" matching “{query}”" if query else "")
           + (f"; {len(shown)} of this page's {len(rows)} are {STATES[state].lower()}" if state in STATES else "")
           + ". Newest first.")
nav = st.columns([1, 1, 4])
if nav[0].button("Newer", disabled=page == 0, key="decisions_prev"):
    st.session_state["decisions_page"] = page - 1
    st.rerun()
if nav[1].button("Older", disabled=page >= pages - 1, key="decisions_next"):
    st.session_state["decisions_page"] = page + 1
    st.rerun()
nav[2].caption(f"Page {page + 1} of {pages}")
st.caption("Officers see only the applications they submitted. Select a row to open it. Arm: AI (the officer "
           "sees the model), Control or Shadow (the officer decides without it; the model scores silently), Excluded "
           "(outside the rollout phase: the usual manual process)." + ("" if sees_hidden else " The model's "
           "recommendation and PD are blank for applications you decide without the AI."))
picked = event.selection.rows if event and event.selection else []
if picked and shown[picked[0]].prediction_id:
    open_decision(str(shown[picked[0]].prediction_id))
