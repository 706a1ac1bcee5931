"""Accepting an adverse difference the phase verdict blocks on (risk managers only): one form per blocking
finding of the phase in force; the acceptance names the person and the reason and is audited
(:class:`backend.rollout.AcceptanceService`). Other roles see who may accept it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from app.components.text import plain
from backend.analytics import Advice
from backend.domain import Actor, Perm, allowed
from backend.rollout import RolloutError

WHAT = {"approval": "lower approval rate", "default": "higher default rate", "fairness": "lower fairness ratio"}


def accept_forms(advice: Sequence[Advice], current: str, user: Any, services: Any,
                 on_done: Callable[[], None]) -> None:
    findings = [(a, r) for a in advice if a.phase == current for r in a.reasons if r.status == "block" and r.accept]
    if not findings:
        return
    if not allowed(user.role, Perm.APPROVE_ROLLOUT):
        st.caption("A risk manager may accept a significant adverse difference with a written reason (audited); "
                   "until then the verdict stays 'Do not move'.")
        return
    for adv, r in findings:
        with st.form(f"accept_{adv.phase}_{r.accept}", clear_on_submit=True):
            st.markdown(f"**Accept the AI arm's {WHAT.get(r.accept or '', r.accept)}?** {plain(r.text)}")
            reason = st.text_area("Why is this difference acceptable? (at least 20 characters; recorded with your "
                                  "name in the audit trail)", key=f"accept_reason_{adv.phase}_{r.accept}")
            if st.form_submit_button("Accept with this reason"):
                try:
                    services.acceptances.accept(Actor(user.username, user.role), phase=adv.phase,
                                                metric=str(r.accept), finding=r.text, reason=reason)
                except RolloutError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["phases_flash"] = f"Accepted: {WHAT.get(r.accept or '', r.accept)} in {adv.phase}."
                    on_done()
                    st.rerun()
