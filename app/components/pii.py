"""The applicant box: masked id by default, a Reveal button for allowed roles (plain text, audited)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.components.text import plain
from backend.compliance import DETAIL_FIELDS, DETAIL_LABELS
from backend.domain import DecisionError

REVEAL_HELP = ("Shows the applicant id and personal details in clear for this view only. Each reveal is "
               "recorded in the audit trail (who, which application, which fields).")


def applicant_inputs(default_id: str, key: str) -> tuple[str, dict[str, str]]:
    """The Score form's optional applicant fields (stored encrypted): (applicant id, details)."""
    with st.expander("Applicant (optional: stored encrypted, shown masked)"):
        left, right = st.columns(2)
        applicant_id = left.text_input("Applicant id", value=default_id, key=f"{key}_id", max_chars=64)
        name = right.text_input("Name", key=f"{key}_name", max_chars=200)
        address = st.text_area("Address", key=f"{key}_address", max_chars=500, height=68)
        a, b, c = st.columns(3)
        ssn = a.text_input("SSN", key=f"{key}_ssn", type="password", max_chars=11, placeholder="123-45-6789")
        email = b.text_input("Email", key=f"{key}_email", max_chars=254)
        phone = c.text_input("Phone", key=f"{key}_phone", max_chars=25)
    details = {k: v for k, v in (("name", name), ("address", address), ("ssn", ssn), ("email", email),
                                 ("phone", phone)) if v and v.strip()}
    return applicant_id.strip(), details


def applicant_panel(svc: Any, application_id: str, user: Any) -> None:
    """The masked applicant id; for allowed roles, a Reveal button that records an audit row."""
    pii = svc.pii
    try:
        summary = pii.summary(application_id, actor=user)
    except DecisionError:
        return
    on_file = " · personal details on file (encrypted)" if summary.has_details else ""
    st.caption(f"Applicant {plain(summary.applicant_masked) if summary.applicant_masked else '(no id)'}{on_file}")
    if not summary.may_reveal:
        return
    if not st.button("Reveal applicant details", key=f"pii_reveal_{application_id}", help=REVEAL_HELP,
                     icon=":material/visibility:"):
        return
    try:
        shown = pii.reveal(application_id, actor=user)
    except DecisionError as exc:
        st.error(str(exc))
        return
    with st.container(border=True, key=f"pii_revealed_{application_id}"):
        st.text(f"Applicant id: {shown.applicant_id}")
        for k in DETAIL_FIELDS:
            if k in shown.details:
                st.text(f"{DETAIL_LABELS[k]}: {shown.details[k]}")
        if not shown.details:
            st.text("No personal details were given with this application.")
        st.caption("This reveal was recorded in the audit trail; the details are hidden again on your next action.")
