"""Decision card and reason list. Text is rendered with st.markdown/st.write only (no raw HTML).

The card reads in five seconds: the recommendation, the PD, the risk in words that agree with the
recommendation, and how far the application sits from the policy's cutoff (``backend/scoring/card.py``
computes every figure). The model version, engine, cache and timings are for the ML engineer and the
administrator only, in an expander.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.components.charts import attribution_waterfall
from app.components.text import plain
from backend.domain import FEATURES_BY_NAME, Perm, allowed, screen_reason

REC_TEXT = {"approve": ("Approve", "green"), "deny": ("Deny", "red"), "manual_review": ("Manual review", "orange")}
RISK_TEXT = {"low_risk": "Low risk", "high_risk": "High risk"}  # the words risk_band uses (tests look for them)
NEAR_COLOR = {"near": "orange", "close": "orange", "clear": "gray"}


def decision_card(result: Any, card: Any, user: Any) -> None:
    label, color = REC_TEXT.get(result.recommendation, (result.recommendation, "gray"))
    with st.container(border=True):
        st.markdown(f"#### Recommendation: :{color}[{label}]")
        c = st.columns(3)
        c[0].metric("Probability of default", f"{card.pd:.1%}", help="Calibrated on held-out data")
        c[1].metric("Risk", card.risk_band, help="The policy's risk class: a score at or above the cutoff is high "
                    "risk; a referral says so")
        d = card.distance
        if d is not None:
            c[2].metric("From the cutoff", f"{d.points:+.1f} pts",
                        help=f"This PD minus the PD of a score exactly at the cutoff ({d.cutoff_pd:.1%}). The "
                             f"ensemble's members spread ±{d.spread_points:.1f} points around this score.")
            st.markdown(f":{NEAR_COLOR[d.label]}[{d.words}] · cutoff PD {d.cutoff_pd:.1%}, members' spread "
                        f"±{d.spread_points:.1f} pts")
        for why in result.policy_reasons:
            st.warning(f"Sent to manual review: {why}", icon=":material/rule:")
        if result.model_role == "fallback":
            st.error("The primary model failed; the fallback model served this score.", icon=":material/warning:")
        if allowed(user.role, Perm.VIEW_MODEL_DETAILS):
            with st.expander("Model details"):
                st.caption(f"Model {plain(result.model_name)} {plain(result.model_version)} · {result.model_role} · "
                           f"{result.engine} engine · cache {'hit' if result.cache_hit else 'miss'}"
                           + (f" · {result.latency_ms:.2f} ms" if result.latency_ms else "")
                           + f" · ensemble score {result.raw_score:.3f} · member agreement {result.confidence:.0%}")


def reason_list(result: Any, card: Any) -> None:
    from backend.explanations import format_value

    if not result.reasons:
        st.info("No factor raised this applicant's risk above the model's baseline.")
        return
    if result.recommendation == "approve":
        st.caption("The application is recommended for approval; these are the factors that raised its risk most.")
    for i, reason in enumerate(result.reasons, 1):
        st.markdown(f"**{i}. {plain(screen_reason(reason['text']))}**")
        for f in reason["features"][:3]:
            pts = card.points.get(f["name"])
            effect = f"raises the PD by {pts:.1f} pts" if pts is not None else "raises the risk"
            st.markdown(f"- {plain(f['description'].capitalize())}: {plain(format_value(f['name'], f['value']))} "
                        f"({effect})")


def contributions_chart(result: Any, card: Any) -> None:
    """What moved the PD from the baseline applicant's to this one's, in PD points."""
    if not card.points or card.base_pd is None:
        st.caption("The model that scored this application is not available: no chart.")
        return
    items = [(FEATURES_BY_NAME[k].description if k in FEATURES_BY_NAME else k, v) for k, v in card.points.items()]
    st.plotly_chart(attribution_waterfall(card.base_pd * 100, items, card.pd * 100, space="PD points",
                                          start="Baseline PD", end="This PD"))
    st.caption(f"Each feature's effect in PD points: from the baseline applicant's PD ({card.base_pd:.1%}) to this "
               f"applicant's ({card.pd:.1%}). Red raises the risk.")
