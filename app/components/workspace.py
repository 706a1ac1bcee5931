"""Decision-page panels: explanation, Q&A, override form, adverse action letter.

User and LLM text is shown with st.text / st.code or escaped Markdown, never as HTML.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from app.components.notice import notice_reason_picker
from app.components.text import plain, plain_lines
from backend.domain import OVERRIDE_REASONS, DecisionError

OUTCOMES = {"approve": "Approve", "deny": "Deny", "manual_review": "Manual review"}


def explanation_panel(ws: Any, pid: str, user: Any, feedback: Any = None) -> None:
    """The latest explanation, or a new one; with an LLM configured the text streams in, one
    fact-checked sentence at a time (a failed check clears it and the template is shown)."""
    stored = ws.latest_explanation(pid, actor=user)
    regenerate = st.button("Regenerate", key=f"expl_regen_{pid}")
    if stored is None or regenerate:
        try:
            stored = _stream_explanation(ws, pid, user) if ws.streams else _explain(ws, pid, user)
        except DecisionError as exc:
            st.info(str(exc))
            return
        if stored is None:
            return
    st.markdown(plain_lines(stored.text))
    verdict = "passed the fact-check" if stored.fact_check_ok else "failed the fact-check: the template is shown"
    st.caption(f"Written by {stored.provider}{' ' + stored.model if stored.model else ''}; {verdict}.")
    if stored.failures:  # the rejected text itself never reaches the officer: only what kind of claim failed
        kinds = sorted({str(f.get("kind", "claim")) for f in stored.failures})
        st.caption(f"The model's answer made {len(stored.failures)} claim(s) the record does not support "
                   f"({', '.join(plain(k) for k in kinds)}); it is kept in the audit trail for review.")
    if feedback is not None:
        _feedback(feedback, pid, user)


def _explain(ws: Any, pid: str, user: Any) -> Any:
    with st.spinner("Writing the explanation…"):
        return ws.explain(pid, actor=user)


def _stream_explanation(ws: Any, pid: str, user: Any) -> Any:
    """Show checked sentences as they arrive; the final (stored) text replaces them."""
    box = st.empty()
    shown = ""
    stream = ws.explain_stream(pid, actor=user)
    with st.spinner("Writing the explanation…"):
        for event in stream:
            if event.kind == "text":
                shown += event.text
                box.markdown(plain_lines(shown) + " …")
            elif event.kind == "reset":
                shown = ""
                box.caption("The model's answer failed the fact-check; showing the template explanation.")
    box.empty()
    return stream.stored


def _feedback(feedback: Any, pid: str, user: Any) -> None:
    """Helpful / not helpful, with an optional comment (stored per rating, audited)."""
    latest = feedback.latest_rating(pid, actor=user)
    if latest is not None:
        st.caption(f"You rated this explanation {'helpful' if latest.helpful else 'not helpful'}.")
    with st.form(f"expl_feedback_{pid}", clear_on_submit=True, border=False):
        cols = st.columns([2, 5])
        verdict = cols[0].radio("Was this explanation helpful?", ["Helpful", "Not helpful"], index=None,
                                key=f"expl_fb_verdict_{pid}")
        comment = cols[1].text_input("Comment (optional)", max_chars=1000, key=f"expl_fb_comment_{pid}")
        if st.form_submit_button("Send feedback"):
            if verdict is None:
                st.warning("Choose helpful or not helpful first.")
                return
            try:
                feedback.rate_explanation(pid, actor=user, helpful=verdict == "Helpful", comment=comment or None)
            except ValueError as exc:
                st.error(str(exc))
                return
            st.success("Thank you: your feedback was recorded.")


def qa_panel(ws: Any, pid: str, user: Any) -> None:
    """The decision's conversation (:mod:`app.components.qa_chat`)."""
    from app.components.qa_chat import qa_chat

    qa_chat(ws, pid, user)


def override_form(decisions: Any, result: Any, user: Any) -> None:
    key_name = f"decide_key_{result.prediction_id}"
    st.session_state.setdefault(key_name, uuid.uuid4().hex)
    st.session_state.setdefault(f"decide_started_{result.prediction_id}", datetime.now(UTC))
    with st.form(f"decide_form_{result.prediction_id}"):
        outcome = st.radio("Decision", list(OUTCOMES), format_func=OUTCOMES.get, horizontal=True,
                           index=list(OUTCOMES).index(result.recommendation))
        code = st.selectbox("Override reason (only when your decision differs from the recommendation)",
                            [None, *OVERRIDE_REASONS], format_func=lambda c: "—" if c is None else OVERRIDE_REASONS[c])
        text = st.text_area("Explain the override (20–2,000 characters)", max_chars=2000)
        st.caption("The explanation is an internal note for the reviewer and the audit trail; it is never printed "
                   "on a notice. A denial against the recommendation states the reasons picked below.")
        picked = notice_reason_picker(f"decide_{result.prediction_id}")
        if st.form_submit_button("Record decision", type="primary"):
            overriding = outcome != result.recommendation
            try:
                view = decisions.decide(result.prediction_id, actor=user, outcome=outcome,
                                        reason_code=code if overriding else None,
                                        reason_text=text if overriding else None,
                                        idempotency_key=st.session_state[key_name],
                                        started_at=st.session_state[f"decide_started_{result.prediction_id}"],
                                        notice_reasons=picked if outcome == "deny" and overriding else None)
            except DecisionError as exc:
                st.error(str(exc))
                return
            msg = ("Sent to a manager for approval (four-eyes)." if view.status == "pending_approval"
                   else f"Decision recorded: {OUTCOMES[view.outcome]}.")
            st.session_state[f"decision_flash_{result.prediction_id}"] = msg
            st.rerun()
