"""Deciding without the AI (control arm, shadow mode, applications outside the phase).

Nothing here reads a model output: the officer sees the application facts, records a decision with
no suggested outcome, and, for a denial, the adverse action notice built from *their* recorded
reason only. User text is shown with st.text or escaped Markdown, never as HTML.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from app.components.notice import notice_reason_picker, notice_tab
from app.components.text import humanize, plain
from backend.domain import MIN_TEXT, OVERRIDE_REASONS, DecisionError

OUTCOMES = {"approve": "Approve", "deny": "Deny", "manual_review": "Manual review"}
ARM_LABELS = {"ai": "AI", "control": "Control", "shadow": "Shadow", "excluded": "Excluded"}


def arm_key(arm: str | None, phase: str | None) -> str:
    """``ai`` | ``control`` | ``shadow`` | ``excluded`` (an application made before any rollout is ``ai``)."""
    if phase == "shadow":
        return "shadow"
    return arm if arm in ARM_LABELS else "ai"


def arm_label(arm: str | None, phase: str | None) -> str:
    return ARM_LABELS[arm_key(arm, phase)]


def hidden_phrase(arm: str | None, phase: str | None) -> str:
    """Where a non-AI application sits, for sentences such as "This application is in the …"."""
    return {"shadow": "in shadow mode", "excluded": "outside this rollout phase (the usual manual process)"}.get(
        arm_key(arm, phase), "in the control arm")


def decide_without_ai_notice(arm: str | None, phase: str | None) -> str:
    return f"Recorded. This application is {hidden_phrase(arm, phase)}: decide it without the AI."


def application_facts(features: dict[str, Any], loan_amount: float) -> None:
    """The application's values, grouped like the score form, with units (no model output)."""
    from backend.domain import FEATURES, GROUP_LABELS, GROUPS
    from backend.explanations import format_value

    st.markdown(f"**Loan amount requested: {plain(format_value('loan_amount', loan_amount))}**")
    known = [f for f in FEATURES if f.name in features]
    cols = st.columns(2)
    shown = 0
    for group in GROUPS:
        feats = [f for f in known if f.group == group]
        if not feats:
            continue
        with cols[shown % 2], st.container(border=True):
            st.markdown(f"**{plain(GROUP_LABELS.get(group, humanize(group)))}**")
            st.markdown("\n".join(f"- {plain(f.description.capitalize())}: "
                                  f"{plain(format_value(f.name, features.get(f.name)))}" for f in feats))
        shown += 1


def decision_status(current: Any) -> None:
    """The recorded decision: outcome, state, who and when, and the officer's reason (verbatim)."""
    state = {"pending_approval": "awaiting a manager's approval", "final": "final"}.get(current.status,
                                                                                         current.status)
    st.markdown(f"**{OUTCOMES.get(current.outcome, plain(current.outcome))}** ({plain(state)}), decided by "
                f"{plain(current.decided_by or '')} on {current.decided_at:%Y-%m-%d %H:%M} UTC.")
    if current.reason_code:
        st.markdown(f"Principal reason: {plain(current.reason_label or current.reason_code)}")
    if current.reason_text:
        st.text(current.reason_text)
    if current.notice_reasons:
        from app.components.notice import reason_words

        st.markdown("Reasons for the notice: " + "; ".join(plain(reason_words(k)) for k in current.notice_reasons))
    if current.decision_seconds is not None:
        st.caption(f"Decision time recorded: {current.decision_seconds:,.0f} s.")


def manual_form(decisions: Any, prediction_id: str, user: Any) -> None:
    """A decision without the AI: no suggested outcome; a denial needs a reason code and text."""
    key_name = f"decide_key_{prediction_id}"
    st.session_state.setdefault(key_name, uuid.uuid4().hex)
    st.session_state.setdefault(f"decide_started_{prediction_id}", datetime.now(UTC))
    with st.form(f"manual_form_{prediction_id}"):
        outcome = st.radio("Decision", list(OUTCOMES), format_func=OUTCOMES.get, horizontal=True, index=None)
        picked = notice_reason_picker(f"manual_{prediction_id}")
        code = st.selectbox("Internal reason code (optional)", [None, *OVERRIDE_REASONS],
                            format_func=lambda c: "—" if c is None else OVERRIDE_REASONS[c])
        text = st.text_area(f"Internal note ({MIN_TEXT}–2,000 characters with a code; never printed on a notice)",
                            max_chars=2000)
        if st.form_submit_button("Record decision", type="primary"):
            if outcome is None:
                st.error("Choose a decision first.")
                return
            try:
                view = decisions.decide(prediction_id, actor=user, outcome=outcome, reason_code=code,
                                        reason_text=text if text.strip() else None,
                                        notice_reasons=picked if outcome == "deny" else None,
                                        idempotency_key=st.session_state[key_name],
                                        started_at=st.session_state[f"decide_started_{prediction_id}"])
            except DecisionError as exc:
                st.error(str(exc))
                return
            st.session_state[f"decision_flash_{prediction_id}"] = f"Decision recorded: {OUTCOMES[view.outcome]}."
            st.rerun()


def manual_notice(case: Any, current: Any, settings: Any) -> None:
    """The adverse action notice of a manual denial, from the reasons the officer picked only.

    ``case`` is the :class:`~backend.decisioning.workspace.ManualCase` (application facts, no model
    reasons), so the notice cannot carry the model's reasons; the officer's note is never printed.
    """
    notice_tab(case, current, model_reasons_apply=False, key_factors=case.bureau_key_factors, settings=settings)


def same_applicant_gate(svc: Any, user: Any, applicant_id: str | None) -> bool:
    """Before scoring an applicant who already has applications: link to them and ask. True: go ahead
    (no applicant id, no earlier application, or the officer chose to create a second one)."""
    from app.guard import open_decision
    from backend.domain import Perm, allowed

    if not applicant_id or st.session_state.get("score_confirmed_applicant") == applicant_id \
            or not allowed(user.role, Perm.VIEW_DECISIONS):  # no book to look in (the ML engineer's test scores)
        return True
    ids = svc.pii.find(applicant_id, actor=user)
    rows, total = svc.decisions.search(user, application_ids=ids, per_page=5) if ids else ([], 0)
    if not rows:
        return True
    with st.container(border=True):
        st.warning(f"This applicant already has {total} application(s). Open the earlier one, or score this as a "
                   "second application.", icon=":material/content_copy:")
        for r in rows:
            cols = st.columns([4, 1])
            cols[0].markdown(f"{plain(r.external_id or r.application_id[:8])} · applied {r.applied_at:%Y-%m-%d} · "
                             f"${r.loan_amount:,.0f} · {plain(r.outcome or r.state.replace('_', ' '))}")
            if r.prediction_id and cols[1].button("Open", key=f"score_earlier_{r.application_id}"):
                st.session_state.pop("score_pending", None)
                open_decision(str(r.prediction_id))
        left, right = st.columns(2)
        if left.button("Score as a second application", key="score_confirm_second", type="primary"):
            st.session_state["score_confirmed_applicant"] = applicant_id
            st.rerun()
        if right.button("Cancel", key="score_cancel_second"):
            st.session_state.pop("score_pending", None)
            st.rerun()
    return False
