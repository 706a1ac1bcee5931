"""Decision card and reason list. Text is rendered with st.markdown/st.write only (no raw HTML)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.components.text import plain

REC_TEXT = {"approve": ("Approve", "green"), "deny": ("Deny", "red"), "manual_review": ("Manual review", "orange")}
RISK_TEXT = {"low_risk": "Low risk", "high_risk": "High risk"}


def decision_card(result: Any) -> None:
    label, color = REC_TEXT.get(result.recommendation, (result.recommendation, "gray"))
    with st.container(border=True):
        st.markdown(f"#### Recommendation: :{color}[{label}]")
        c = st.columns(4)
        c[0].metric("Risk class", RISK_TEXT.get(result.risk_class, result.risk_class))
        c[1].metric("Probability of default", f"{result.pd:.1%}", help="Calibrated on held-out data")
        c[2].metric("Confidence", f"{result.confidence:.0%}",
                    help="Share of the ensemble's members that agree with its risk class")
        c[3].metric("Model score", f"{result.raw_score:.3f}", help="Balanced ensemble score; 0.5 is its boundary")
        for why in result.policy_reasons:
            st.warning(f"Sent to manual review: {why}", icon=":material/rule:")
        if result.model_role == "fallback":
            st.error("The primary model failed; the fallback model served this score.", icon=":material/warning:")
        st.caption(f"Model {result.model_name} {result.model_version} · {result.model_role} · "
                   f"{result.engine} engine · cache {'hit' if result.cache_hit else 'miss'}"
                   + (f" · {result.latency_ms:.2f} ms" if result.latency_ms else ""))


def reason_list(result: Any) -> None:
    from backend.services.explain.record import format_value

    if not result.reasons:
        st.info("No factor raised this applicant's risk above the model's baseline.")
        return
    if result.recommendation == "approve":
        st.caption("The application is recommended for approval; these are the factors that raised its risk most.")
    for i, reason in enumerate(result.reasons, 1):
        st.markdown(f"**{i}. {plain(reason['text'])}**")
        for f in reason["features"][:3]:
            st.markdown(f"- {plain(f['description'].capitalize())}: {plain(format_value(f['name'], f['value']))} "
                        f"(raises risk by {f['contribution']:+.2g} log-odds)")
