"""Decision-page panels: explanation, Q&A, override form, adverse action letter.

User and LLM text is shown with st.text / st.code or escaped Markdown, never as HTML.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import streamlit as st

from app.components.text import plain, plain_lines
from backend.services.override_rules import OVERRIDE_REASONS, DecisionError

OUTCOMES = {"approve": "Approve", "deny": "Deny", "manual_review": "Manual review"}


def explanation_panel(ws: Any, pid: str, user: Any) -> None:
    stored = ws.latest_explanation(pid, actor=user)
    if stored is None or st.button("Regenerate", key=f"expl_regen_{pid}"):
        with st.spinner("Writing the explanation…"):
            stored = ws.explain(pid, actor=user)
    st.markdown(plain_lines(stored.text))
    verdict = "passed the fact-check" if stored.fact_check_ok else "failed the fact-check: the template is shown"
    st.caption(f"Written by {stored.provider}{' ' + stored.model if stored.model else ''}; {verdict}.")
    for f in stored.failures:
        st.caption(f"Rejected claim ({f.get('kind')}): {plain(f.get('claim', ''))}")


def qa_panel(ws: Any, pid: str, user: Any) -> None:
    for ex in ws.history(pid, actor=user):
        with st.chat_message("user"):
            st.text(ex.question)
        with st.chat_message("assistant"):
            st.markdown(plain_lines(ex.text))
    question = st.chat_input("Ask about this decision (why, what would change it, how a value compares)",
                             key=f"qa_input_{pid}")
    if question:
        try:
            ws.ask(pid, question, actor=user)
        except ValueError as exc:
            st.error(str(exc))
            return
        st.rerun()


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
        if st.form_submit_button("Record decision", type="primary"):
            overriding = outcome != result.recommendation
            try:
                view = decisions.decide(result.prediction_id, actor=user, outcome=outcome,
                                        reason_code=code if overriding else None,
                                        reason_text=text if overriding else None,
                                        idempotency_key=st.session_state[key_name],
                                        started_at=st.session_state[f"decide_started_{result.prediction_id}"])
            except DecisionError as exc:
                st.error(str(exc))
                return
            msg = ("Sent to a manager for approval (four-eyes)." if view.status == "pending_approval"
                   else f"Decision recorded: {OUTCOMES[view.outcome]}.")
            st.session_state[f"decision_flash_{result.prediction_id}"] = msg
            st.rerun()


def letter_panel(result: Any, outcome: str, human_reasons: list[str] | None, settings: Any) -> None:
    from backend.services.letters import NoticeNotRequired, build_notice, render_pdf, render_text

    try:
        notice = build_notice(result, applicant_name=None, decision_outcome=outcome, human_reasons=human_reasons,
                              settings=settings, today=date.today())
    except (NoticeNotRequired, ValueError) as exc:
        st.info(str(exc))
        return
    st.text(render_text(notice))
    st.download_button("Download the notice (PDF)", render_pdf(notice), mime="application/pdf",
                       file_name=f"adverse-action-{(result.application_id or 'notice')[:8]}.pdf",
                       key=f"letter_pdf_{result.prediction_id}")
