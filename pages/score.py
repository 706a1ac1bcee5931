"""Score an application (loan officer, risk manager): decision card, reasons and waterfall.

An application the rollout phase puts outside the AI arm (control arm, shadow mode, excluded) is
recorded and scored silently: the page says so and shows none of the model's output.
"""

from __future__ import annotations

import streamlit as st

from app.components.charts import attribution_waterfall
from app.components.decision import decision_card, reason_list
from app.components.manual import decide_without_ai_notice
from app.components.pii import applicant_inputs
from app.components.text import humanize
from app.guard import open_decision, require
from app.services import get_services
from backend.permissions import Perm, allowed
from backend.services.model_provider import ModelUnavailable
from backend.services.scoring import Submitter
from backend.services.validation import ApplicationInvalid
from backend.training.features import FEATURES, GROUP_LABELS, GROUPS

user = require(Perm.SCORE)
svc = get_services()
scoring = svc.scoring

st.title("Score an application")
try:
    model = scoring.models.get("champion")
except ModelUnavailable as exc:
    st.warning(str(exc))
    st.stop()


@st.cache_data(ttl=3600, show_spinner=False)
def _examples(n: int = 25) -> list[dict]:
    from backend.training.synthetic import generate

    df = generate(n, seed=20260101, months=2, id_prefix="example-")
    return df.drop(columns=["default", "pd_true"]).to_dict("records")


examples = _examples()
choice = st.selectbox("Start from a simulated example applicant (edit any value below)", range(len(examples)),
                      format_func=lambda i: f"Example {i + 1}: ${examples[i]['loan_amount']:,.0f} "
                                            f"{humanize(examples[i]['loan_purpose'])}, "
                                            f"income ${examples[i]['annual_income']:,.0f}",
                      key="score_example")
base = examples[choice]
st.caption(":material/science: Example applicants are simulated by the synthetic generator; they are not real people.")

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
                      help="compiled: flat-array scorer; reference: scikit-learn's predict_proba (same probabilities)")
    submitted = st.form_submit_button("Score", type="primary")

if submitted:
    for k in ("sex", "age_band", "race_ethnicity"):
        values[k] = base.get(k)
    values["applicant_id"], values["applicant"] = applicant_id or None, details or None
    try:
        result = scoring.score(values, submitter=Submitter(user.username, user.role, user.id, user.senior),
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
    decision_card(last)
    if last.prediction_id and allowed(user.role, Perm.VIEW_DECISIONS) and st.button(
            "Open the decision page (explanation, questions, decision, notice)", key="score_open", type="primary"):
        open_decision(last.prediction_id)
    left, right = st.columns([2, 3])
    with left:
        st.subheader("Principal reasons")
        reason_list(last)
    with right:
        st.subheader("What drove the score")
        items = [(by_name[k].description if k in by_name else k, v) for k, v in last.attributions.items()]
        st.plotly_chart(attribution_waterfall(last.base_value, items, last.margin,
                                              space="log-odds" if last.model_role == "primary" else "probability"))
        st.caption("Exact per-feature contributions against the training background; they add up from the base "
                   "value to the model's margin (mean log-odds of the ensemble's members).")
