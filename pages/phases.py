"""Phase comparison (product lead, risk manager): should we advance? AI vs control per rollout phase with
intervals, success criteria and guardrails judged on their intervals, the always-valid weekly comparison, a power
calculator for the next phase, CSV for every table and the phase review as HTML and PDF."""

from __future__ import annotations

import streamlit as st

from app.components import phase_views as pv
from app.components.verdict_accept import accept_forms
from app.guard import history_key, label_simulated, require
from app.services import get_services
from backend.analytics import (
    METRICS,
    POWER_METRICS,
    RECOUNT_AFTER,
    Advice,
    Comparison,
    Overview,
    PowerPlan,
    arm_figures_long,
    arm_table,
    checks_table,
    comparison_table,
    definitions,
    render_html,
    render_pdf,
    sequence_table,
    survey_table,
)
from backend.domain import Actor, Perm
from backend.rollout import PHASE_LABELS

user = require(Perm.VIEW_ANALYTICS)
svc = get_services()
st.title("Phase comparison")
label_simulated()
SEQ_METRICS = {"approval_rate": "Approval rate", "default_rate": "Default rate (matured)",
               "default_rate_to_date": "Default rate observed to date (immature)"}


@st.cache_data(ttl=60, show_spinner="Counting every phase and arm…")
def overview() -> Overview:
    return get_services().experiments.overview()


@st.cache_data(ttl=60, show_spinner=False)
def advice() -> list[Advice]:
    return get_services().experiments.advise(overview())


@st.cache_data(ttl=60, show_spinner=False)
def comparison(phase: str) -> Comparison:
    return get_services().experiments.compare(phase, overview())


@st.cache_data(ttl=60, show_spinner=False)
def plan(metric: str, mde: float, alpha: float, power: float, share: float) -> PowerPlan:
    return get_services().experiments.power(metric, mde, ai_share=share, alpha=alpha, power=power, overview=overview())


@st.cache_data(ttl=300, show_spinner=False)
def simulated(history: str) -> int:
    return get_services().book.simulated_count()


if flash := st.session_state.pop("phases_flash", None):
    st.success(flash)
ov = overview()
if not ov.arms:
    st.info("No applications with a rollout phase yet: the comparison starts with the first phase (Rollout page).")
    st.stop()
pv.advice_panel(advice(), ov.current_phase)
accept_forms(advice(), ov.current_phase, user, svc, lambda: [c.clear() for c in (overview, advice, comparison, plan)])
as_of = f"outcomes observed as of {ov.outcomes_as_of:%Y-%m-%d}" if ov.outcomes_as_of else "no outcome feed yet"
stale = (f" The records changed since: they are counted again within {RECOUNT_AFTER.seconds // 60} minutes, or now "
         "with Recount now.") if ov.stale else ""
st.caption(f"Counted {ov.computed_at:%Y-%m-%d %H:%M} UTC; {as_of}; {1 - ov.alpha:.0%} intervals. Matured: funded "
           f"loans decided {ov.maturity_months}+ months before the outcome feed's latest observation.{stale}")

st.header("Per phase and arm")
pv.table(arm_table(ov), key="arms", file_name="phase_arms.csv", csv_rows=arm_figures_long(ov),
         caption="Excluded applications (officer or loan outside the phase) are shown for context and never compared. "
                 "Default rates show [n] loans; 'observed to date' rates are immature and rise with time.")
st.header("Success criteria and guardrails")
pv.table(checks_table(ov.checks), key="checks", file_name="phase_checks.csv",
         caption="'met' only when the whole interval is on the right side of the target; 'likely met' when only the "
                 "point estimate is. Criteria: shadow reads its only arm, other phases the AI arm; guardrails the phase.")
st.header("Officer survey (NPS)")
pv.table(survey_table(ov), key="nps", file_name="phase_nps.csv",
         caption="The split by officers who worked AI-arm cases that month is not randomized (the pilot was for senior "
                 "officers).")

st.header("AI vs control")
compared = [p for p in ov.phases() if ov.arm(p, "ai") and ov.arm(p, "control")]
if not compared:
    st.info("No phase has both an AI and a control arm yet.")
else:
    default = compared.index(ov.current_phase) if ov.current_phase in compared else len(compared) - 1
    phase = st.selectbox("Phase", compared, index=default, format_func=lambda p: PHASE_LABELS.get(p, p),
                         key="phases_compare_phase")
    cmp = comparison(phase)
    pv.table(comparison_table(cmp), key="compare", file_name=f"ai_vs_control_{phase}.csv",
             caption="Differences: Newcombe interval; relative risk: Katz; p: pooled z-test. Times: Mann-Whitney test "
                     "and a bootstrap interval of the difference of medians. Fixed-sample figures: read once.")
    metric = st.radio("Weekly comparison", list(SEQ_METRICS), format_func=SEQ_METRICS.get, horizontal=True,
                      key="phases_seq_metric")
    points = cmp.sequences.get(metric, [])
    if not any(p.low is not None for p in points):
        st.caption("Not enough events in both arms yet for an interval (or no matured loans in this phase).")
    st.plotly_chart(pv.cs_figure(points, f"{SEQ_METRICS[metric]}: AI - control", ov.alpha), key="phases_cs_chart")
    st.caption("An always-valid confidence sequence (Waudby-Smith et al. 2024): the band may be read every week and "
               "the phase stopped at any time without inflating false positives, unlike a z-test repeated weekly.")
    pv.table(sequence_table(cmp, metric), key="seq", file_name=f"sequence_{phase}_{metric}.csv")

st.header("Power calculator for the next phase")
with st.form("phases_power"):
    c1, c2, c3, c4, c5 = st.columns([1.6, 1, 1, 1, 1])
    metric = c1.selectbox("Metric", POWER_METRICS, format_func=lambda m: METRICS[m][0], key="phases_power_metric")
    mde_pp = c2.number_input("Minimum detectable effect (pp)", value=-1.0, step=0.1, format="%.2f",
                             key="phases_power_mde", help="Absolute change, AI minus control, in percentage points.")
    alpha = c3.number_input("Alpha", 0.001, 0.2, float(ov.alpha), 0.01, format="%.3f", key="phases_power_alpha")
    power = c4.number_input("Power", 0.51, 0.99, float(svc.settings.analytics.power), 0.05, key="phases_power_power")
    share = c5.number_input("Planned AI share", 0.01, 0.99, 0.9, 0.05, key="phases_power_share",
                            help="Share of eligible cases in the AI arm; the rest is the control hold-out.")
    st.form_submit_button("Calculate")
try:
    pv.power_result(plan(metric, mde_pp / 100, alpha, power, share), METRICS[metric][0])
except ValueError as exc:
    st.error(str(exc))

st.header("Phase review report")
report = svc.experiments.report(simulated=simulated(history_key()), overview=ov)  # the page's numbers; files made on click
stamp = f"{report.generated_at:%Y-%m-%d}"
st.caption(f"Dated {report.generated_at:%Y-%m-%d %H:%M} UTC" + (", labelled simulated." if report.simulated else "."))
r1, r2 = st.columns(2)
r1.download_button("Download report (HTML)", lambda: render_html(report), file_name=f"phase-review-{stamp}.html",
                   mime="text/html", key="phases_report_html", on_click="ignore")
r2.download_button("Download report (PDF)", lambda: render_pdf(report), file_name=f"phase-review-{stamp}.pdf",
                   mime="application/pdf", key="phases_report_pdf", on_click="ignore")
with st.expander("Definitions"):
    for label, text in definitions(ov):
        st.markdown(f"**{label}**: {text}")
if st.button("Recount now", key="phases_refresh", help="Count the records again and store the result."):
    with st.spinner("Counting every phase and arm…"):
        n = svc.experiments.refresh(actor=Actor(user.username, user.role))
    for cached in (overview, advice, comparison, plan):
        cached.clear()
    st.session_state["phases_flash"] = f"Recounted {n:,} applications."
    st.rerun()
