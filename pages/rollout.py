"""Rollout phases: the phase in force, its history, and four-eyes changes (product lead proposes,
a risk manager approves or rejects; the proposer may withdraw). Every figure comes from the records."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pandas as pd
import streamlit as st

from app.components.rollout_views import summary, timeline_chart
from app.components.text import plain
from app.guard import label_simulated, require
from app.services import get_services
from backend.domain import ROLE_LABELS, Perm, Role, allowed
from backend.rollout import FEATURE_LABELS, FEATURES, PHASE_LABELS, PHASES, RolloutError

user = require(Perm.VIEW_ROLLOUT)
svc = get_services()
rollout = svc.rollout
st.title("Rollout phases")
label_simulated()
if flash := st.session_state.pop("rollout_flash", None):
    st.success(flash)
DECIDING_ROLES = [Role.LOAN_OFFICER.value, Role.RISK_MANAGER.value]


now = svc.clock.now()
active = rollout.active(now)
history = rollout.history()
with st.container(border=True):
    st.markdown(f"### In force: {plain(active.label)}" + (f" (version {active.version})" if active.version else ""))
    st.markdown(plain(active.describe()))
    facts = summary(active)
    cols = st.columns(4)
    for i, key in enumerate(("AI share", "Loan-amount cap", "Confidence threshold", "Starts")):
        cols[i].metric(key, facts[key] if active.version or key != "Starts" else "built-in default")
    st.markdown(f"**Eligible:** {plain(facts['Eligible'])}  \n**Features:** {plain(facts['Features'])}")
    if not active.version:
        st.caption("No rollout version has been approved: full production with the configured policy.")
st.info("A change applies only to applications made after it takes effect. Applications already made keep the arm "
        "and phase they were assigned (their model score stays recorded), and their decisions are not revisited.",
        icon=":material/history:")

tab_hist, tab_pending, tab_propose = st.tabs(["History", f"Pending ({sum(p.status == 'proposed' for p in history)})",
                                              "Propose a change"])
with tab_hist:
    if not history:
        st.caption("No versions yet.")
    else:
        st.dataframe(pd.DataFrame([{
            "version": p.version, "phase": p.label, "status": p.status, "AI share": p.ai_share,
            "starts (UTC)": p.starts_at, "ends (UTC)": p.ends_at, "proposed by": p.proposed_by,
            "proposed at": p.proposed_at, "reviewed by": p.reviewed_by or "", "reviewed at": p.reviewed_at,
            "rationale": p.rationale, "note": p.review_note or ""} for p in history]), hide_index=True,
            column_config={"AI share": st.column_config.NumberColumn(format="percent")}, key="rollout_history")
        approved = sorted((p for p in history if p.status == "approved" and p.starts_at),
                          key=lambda p: p.starts_at or now)
        if approved:
            st.plotly_chart(timeline_chart(approved, now), key="rollout_timeline")

with tab_pending:
    pending = [p for p in history if p.status == "proposed"]
    if not pending:
        st.caption("No proposal is waiting for review.")
    for p in pending:
        with st.container(border=True):
            st.markdown(f"**Version {p.version}: {plain(p.label)}** proposed by {plain(p.proposed_by)} on "
                        f"{p.proposed_at:%Y-%m-%d %H:%M} UTC" if p.proposed_at else f"**Version {p.version}**")
            st.text(p.rationale)
            mine, theirs = summary(active), summary(p)
            diff = [{"setting": k, "in force": mine[k], "proposed": theirs[k]} for k in theirs if mine[k] != theirs[k]]
            st.dataframe(pd.DataFrame(diff or [{"setting": "(no difference)", "in force": "", "proposed": ""}]),
                         hide_index=True, key=f"rollout_diff_{p.version}")
            try:
                if allowed(user.role, Perm.APPROVE_ROLLOUT):
                    note = st.text_input("Review note (required to reject; at least 10 characters)",
                                         key=f"rollout_note_{p.version}")
                    c1, c2 = st.columns(2)
                    if c1.button("Approve", key=f"rollout_ok_{p.version}", type="primary"):
                        done = rollout.approve(p.version, user, note=note)
                        st.session_state["rollout_flash"] = (f"Version {done.version} approved: {done.label} from "
                                                             f"{done.starts_at:%Y-%m-%d %H:%M} UTC.")
                        st.rerun()
                    if c2.button("Reject", key=f"rollout_no_{p.version}"):
                        rollout.reject(p.version, user, note=note)
                        st.session_state["rollout_flash"] = f"Version {p.version} rejected."
                        st.rerun()
                if p.proposed_by == user.username and st.button("Withdraw", key=f"rollout_wd_{p.version}"):
                    rollout.withdraw(p.version, user)
                    st.session_state["rollout_flash"] = f"Version {p.version} withdrawn."
                    st.rerun()
            except RolloutError as exc:
                st.error(str(exc))

with tab_propose:
    if not allowed(user.role, Perm.PROPOSE_ROLLOUT):
        st.caption("A product lead proposes a phase change; a risk manager (never the proposer) approves it.")
    else:
        officers = [str(u["username"]) for u in svc.users.list() if u["role"] in DECIDING_ROLES and not u["disabled"]]
        with st.form("rollout_propose"):
            c1, c2, c3 = st.columns(3)
            phase: str = c1.selectbox("Phase", list(PHASES), format_func=lambda x: PHASE_LABELS[x],
                                      index=PHASES.index(active.phase))
            share = c2.number_input("AI share (0 in shadow mode, 1 in full production)", 0.0, 1.0,
                                    float(active.ai_share), step=0.05)
            cap = c3.number_input("Loan-amount cap ($)", 1.0, value=float(active.loan_amount_cap), step=1000.0)
            threshold = c1.number_input("Confidence threshold", 0.5, 1.0, float(active.confidence_threshold), step=0.05)
            roles = c2.multiselect("Eligible roles", DECIDING_ROLES, default=list(active.eligible_roles),
                                   format_func=lambda r: ROLE_LABELS[Role(r)])
            named: list[str] = c3.multiselect("Named officers (empty: every eligible officer)", officers,
                                   default=[o for o in active.eligible_officers if o in officers])
            senior = st.checkbox("Senior officers only", value=active.senior_only)
            fcols = st.columns(3)
            features = {f: fcols[i].checkbox(FEATURE_LABELS[f], value=active.enabled(f)) for i, f in enumerate(FEATURES)}
            asap = st.checkbox("Start as soon as it is approved", value=True)
            d1, d2 = st.columns(2)
            day = d1.date_input("Or start on (UTC)", value=now.date())
            at = d2.time_input("at (UTC)", value=time(9, 0))
            rationale = st.text_area("Rationale (at least 10 characters)", max_chars=2000)
            if st.form_submit_button("Propose", type="primary"):
                try:
                    p = rollout.propose(user, phase=phase, ai_share=share, loan_amount_cap=cap,
                                        confidence_threshold=threshold, eligible_roles=roles, senior_only=senior,
                                        eligible_officers=named, features=features, rationale=rationale,
                                        starts_at=None if asap else datetime.combine(day, at, tzinfo=UTC))
                except RolloutError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["rollout_flash"] = (f"Version {p.version} proposed ({p.label}); it changes "
                                                         "nothing until a risk manager approves it.")
                    st.rerun()
