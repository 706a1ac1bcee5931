"""Score an application (loan officer, risk manager): decision card, reasons and waterfall.

An application the rollout phase puts outside the AI arm (control arm, shadow mode, excluded) is
recorded and scored silently: the page says so and shows none of the model's output.
"""

from __future__ import annotations

import streamlit as st

from app.components.decision import contributions_chart, decision_card, reason_list
from app.components.manual import decide_without_ai_notice, same_applicant_gate
from app.components.pii import applicant_inputs
from app.components.score_examples import arm_note, pick_example
from app.components.text import humanize
from app.guard import open_decision, require
from app.services import get_services
from backend.domain import FEATURES, GROUP_LABELS, GROUPS, Actor, ApplicationInvalid, Perm, allowed
from backend.models import ModelUnavailable

user = require(Perm.SCORE)
svc = get_services()
scoring = svc.scoring

st.title("Score an application")
try:
    model = scoring.models.get("champion")
except ModelUnavailable as exc:
    st.warning(str(exc))
    st.stop()


choice, base = pick_example(scoring, user)

by_name = {f.name: f for f in FEATURES}
values: dict = {}
with st.form("score_form"):
    for group in GROUPS:
        feats = [f for f in FEATURES if f.group == group and f.name in model.columns]
        with st.expander(GROUP_LABELS.get(group, humanize(group)), expanded=group in ("loan_terms", "income_obligations")):
            cols = st.columns(3)
            for i, f in enumerate(feats):
                key = f"score_{choice}_{f.name}"
                label = f"{f.description.capitalize()}" + (f" ({f.unit})" if f.unit else "")
                v = base.get(f.name)
                with cols[i % 3]:
                    if f.kind == "categorical":
                        opts = list(f.categories or [])
                        values[f.name] = st.selectbox(label, opts, index=opts.index(v) if v in opts else 0, key=key,
                                                      format_func=humanize)
                    elif f.kind == "binary":
                        values[f.name] = int(st.checkbox(label, value=bool(v), key=key))
                    else:
                        missing = v is None or v != v
                        cast = int if f.kind == "integer" else float
                        num = st.number_input(label, value=None if missing or v is None else cast(v), key=key,
                                              step=1 if f.kind == "integer" else None,
                                              min_value=cast(f.lower) if f.lower is not None else None,
                                              max_value=cast(f.upper) if f.upper is not None else None,
                                              placeholder="not provided")
                        values[f.name] = (int(num) if f.kind == "integer" and num is not None else num)
    applicant_id, details = applicant_inputs(str(base.get("applicant_id") or ""), f"score_pii_{choice}")
    engine = st.radio("Engine", ["compiled", "reference"], horizontal=True, key="score_engine",
                      help="compiled: flat-array scorer; reference: scikit-learn's predict_proba (same probabilities)"
                      ) if allowed(user.role, Perm.VIEW_MODEL_DETAILS) else "compiled"
    submitted = st.form_submit_button("Score", type="primary")
arm_note(scoring, user, applicant_id or str(base.get("applicant_id") or ""), values.get("loan_amount"))

if submitted:
    for k in ("sex", "age_band", "race_ethnicity", "bureau_key_factors"):  # key factors: the bureau's, as sent
        values[k] = base.get(k)
    values["applicant_id"], values["applicant"] = applicant_id or None, details or None
    st.session_state["score_pending"] = values
pending = st.session_state.get("score_pending")
if pending is not None and not same_applicant_gate(svc, user, pending.get("applicant_id")):
    st.stop()  # asking first: no earlier result below the question
if pending is not None:
    values = st.session_state.pop("score_pending")
    try:
        result = scoring.score(values, submitter=Actor(user.username, user.role, user.id, senior=user.senior),
                               engine=engine, source="console")
    except ApplicationInvalid as exc:
        for e in exc.errors:
            st.error(f"{by_name[e.field].description if e.field in by_name else e.field}: {e.message}")
        st.stop()
    except ModelUnavailable as exc:
        st.error(str(exc))
        st.stop()
    # a result hidden from the officer is not even kept in the session: only where to decide it
    st.session_state["score_last"] = result if result.ai_visible else {
        "prediction_id": result.prediction_id, "arm": result.arm, "phase": result.phase}

last = st.session_state.get("score_last")
if isinstance(last, dict):
    st.info(decide_without_ai_notice(last["arm"], last["phase"]), icon=":material/visibility_off:")
    if last["prediction_id"] and allowed(user.role, Perm.VIEW_DECISIONS) and st.button(
            "Open the application to decide it", key="score_open_manual", type="primary"):
        open_decision(last["prediction_id"])
elif last is not None:
    card = scoring.card(last)
    decision_card(last, card, user)
    if last.prediction_id and allowed(user.role, Perm.VIEW_DECISIONS) and st.button(
            "Open the decision page (explanation, questions, decision, notice)", key="score_open", type="primary"):
        open_decision(last.prediction_id)
    left, right = st.columns([2, 3])
    with left:
        st.subheader("Principal reasons")
        reason_list(last, card)
    with right:
        st.subheader("What drove the PD")
        contributions_chart(last, card)
