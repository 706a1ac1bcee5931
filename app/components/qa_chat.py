"""The decision page's chat: one conversation about the decision, on the same service as
``creditrisk ask`` and ``POST /v1/decisions/{id}/questions``.

The conversation id lives in the session (the latest conversation of the decision when the page opens);
"New conversation" starts another. Every answer says which engine answered (the LLM through its tools,
or the offline engine, and why when it fell back) and the fact-check verdict. With an LLM whose adapter
streams, the answer appears one checked sentence at a time (a fallback withdraws it and the offline answer
replaces it); the offline engine answers at once. Questions and answers are
shown as plain text (escaped Markdown), never HTML.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.components.text import plain, plain_lines

INTENT_WORDS = {"why": "why", "what_if": "what-if (hypothetical)", "counterfactual": "what would it take",
                "compare": "comparison", "definition": "definition", "refused": "refused",
                "out_of_scope": "out of scope", "help": "help"}


def _caption(ex: Any) -> str:
    intent = INTENT_WORDS.get(ex.intent, ex.intent) + (f" ({ex.refusal.replace('_', ' ')})" if ex.refusal else "")
    check = ex.fact_check or {}
    verdict = ("every sentence checked against this turn's tool results" if check.get("checked") and check.get("passed")
               else "grounded offline answer" if not check.get("checked") else "the LLM's answer failed the check")
    return f"{intent} · answered by {ex.engine} · {verdict}"


def qa_chat(ws: Any, pid: str, user: Any) -> None:
    key = f"qa_conversation_{pid}"
    history = ws.history(pid, actor=user)
    if key not in st.session_state:
        st.session_state[key] = next((ex.conversation_id for ex in reversed(history) if ex.conversation_id), None)
    cid = st.session_state[key]
    if st.button("New conversation", key=f"qa_new_{pid}", disabled=cid is None):
        st.session_state[key] = cid = None
    for ex in history:
        if cid is None or ex.conversation_id != cid:
            continue
        with st.chat_message("user"):
            st.text(ex.question)
        with st.chat_message("assistant"):
            st.markdown(plain_lines(ex.text))
            st.caption(plain(_caption(ex)))
    question = st.chat_input("Ask about this decision: why, what if (\"income $80,000?\"), what would it take, "
                             "how a value compares, what a feature means", key=f"qa_input_{pid}")
    if question:
        try:
            if ws.streams_answers:
                answer = _streamed(ws, pid, user, question, cid)
            else:  # the offline engine (the default) is fast: not streamed
                with st.spinner("Answering…"):
                    answer = ws.ask(pid, question, actor=user, conversation_id=cid)
        except ValueError as exc:
            st.error(str(exc))
            return
        st.session_state[key] = answer.conversation_id
        st.rerun()


def _streamed(ws: Any, pid: str, user: Any, question: str, cid: str | None) -> Any:
    """The LLM's answer as it comes, one checked sentence at a time; a fallback withdraws it and says which
    engine answers instead. The stored answer and its caption replace it all (the page reruns)."""
    stream = ws.ask_stream(pid, question, actor=user, conversation_id=cid)  # errors are raised here
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        box, note = st.empty(), st.empty()
        shown = ""
        with st.spinner("Answering…"):
            for event in stream:
                if event.kind == "text":
                    shown += event.text
                    box.markdown(plain_lines(shown) + " …")
                elif event.kind == "reset":  # checked sentences withdrawn: a tool round's preamble, or a fallback
                    shown = ""
                    box.empty()
                    if event.text:
                        note.caption(plain(f"The LLM's answer was withdrawn: answered by {event.text}."))
    return stream.stored
