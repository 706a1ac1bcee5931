"""Decision page: card, reasons, waterfall, explanation, Q&A, adverse action notice, decision form.

Applications decided without the AI (control arm, shadow mode, outside the phase) show an officer
the application facts and a manual decision form only; managers see the model's output with a
banner saying it is hidden from the officer.
"""

from __future__ import annotations

import streamlit as st

from app.components.decision import contributions_chart, decision_card, reason_list
from app.components.manual import (
    application_facts,
    decision_status,
    hidden_phrase,
    manual_form,
    manual_notice,
)
from app.components.notice import notice_tab
from app.components.pii import applicant_panel
from app.components.text import plain
from app.components.workspace import OUTCOMES, explanation_panel, override_form, qa_panel
from app.guard import OPEN_DECISION_KEY, label_simulated, require
from app.services import get_services
from backend.decisioning import AIHidden
from backend.domain import DecisionError, DecisionNotFound, Perm, allowed
from backend.rollout import FEATURE_LABELS
from backend.scoring import ScoreResult

user = require(Perm.VIEW_DECISIONS)
svc = get_services()
st.title("Decision")
label_simulated()

pid: str = st.session_state.get(OPEN_DECISION_KEY) or ""
if not pid:
    st.info("Open an application from *Applications* or score one on *Score an application*.")
    st.stop()
result: ScoreResult | None
try:
    result = svc.workspace.result(pid, actor=user)
except AIHidden:
    result = None
except DecisionNotFound:
    st.error("No such application.")
    st.stop()
case = svc.workspace.case(pid, actor=user)
current = svc.decisions.current(case.application_id, actor=user)
phase = svc.rollout.active()
if flash := st.session_state.pop(f"decision_flash_{pid}", None):
    st.success(flash)


def feature_off(feature: str) -> bool:
    if phase.enabled(feature):
        return False
    st.info(f"{FEATURE_LABELS[feature]}: switched off in the current rollout phase ({phase.label}).")
    return True


def decision_tab(manual: bool) -> None:
    if current is not None and current.status in ("final", "pending_approval"):
        if manual:
            decision_status(current)
            return
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
            st.warning("A manager returned the previous decision; decide again.")
        if manual:
            manual_form(svc.decisions, pid, user)
        else:
            override_form(svc.decisions, result, user)
    else:
        st.info("No decision recorded yet.")


if result is None:  # an officer on an application decided without the AI: facts and a manual decision only
    st.info(f"This application is {hidden_phrase(case.arm, case.phase)}: decide it without the AI. "
            "The model's score is recorded for measurement only and is not shown.", icon=":material/visibility_off:")
    st.caption(f"Application {plain(case.application_id)}")
    applicant_panel(svc, case.application_id, user)
    tabs = st.tabs(["Application", "Decision", "Adverse action notice"])
    with tabs[0]:
        application_facts(case.features, case.loan_amount)
    with tabs[1]:
        decision_tab(manual=True)
    with tabs[2]:
        if not feature_off("letters"):
            manual_notice(case, current, svc.settings)
    st.stop()

manual = not result.ai_visible
if manual:
    st.warning(f"Hidden from the officer: this application is {hidden_phrase(result.arm, result.phase)}, so the "
               "officer decides without the AI. You see the model's output as a manager; the decision is a manual "
               "one (no model recommendation applies).", icon=":material/visibility_off:")
st.caption(f"Application {plain(result.application_id)} · model recommendation shown below")
applicant_panel(svc, case.application_id, user)
card = svc.scoring.card(result)
decision_card(result, card, user)

tabs = st.tabs(["Reasons", "Explanation", "Questions", "Decision", "Adverse action notice"])
with tabs[0]:
    left, right = st.columns([2, 3])
    with left:
        reason_list(result, card)
    with right:
        contributions_chart(result, card)
for tab, feature in ((tabs[1], "explanations"), (tabs[2], "qa")):
    with tab:
        if manual:
            st.info(f"{FEATURE_LABELS[feature]} are not offered: the officer decides this application without the AI.")
        elif not feature_off(feature):
            try:
                if feature == "explanations":
                    explanation_panel(svc.workspace, pid, user, svc.feedback)
                else:
                    qa_panel(svc.workspace, pid, user)
            except DecisionError as exc:
                st.info(str(exc))
with tabs[3]:
    decision_tab(manual)
with tabs[4]:
    if feature_off("letters"):
        pass
    elif manual:
        manual_notice(case, current, svc.settings)
    else:  # a notice follows the final decision only; the model's reasons when the officer accepted a denial
        notice_tab(result, current, model_reasons_apply=current is not None and not current.is_override,
                   key_factors=case.bureau_key_factors, settings=svc.settings)
