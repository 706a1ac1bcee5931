"""Fairness (risk manager): selection rates and disparate-impact ratios by sex, age band, race/ethnicity and
their intersections, stage by stage (model -> policy -> officer -> final decision), by phase and month, with
outcome-based gaps and override rates. Reads stored snapshots only; exports CSV, HTML and PDF."""

from __future__ import annotations

import streamlit as st

from app.components import fairness_charts as fc
from app.guard import history_key, label_simulated, require
from app.services import get_services
from backend.domain import Actor, Perm
from backend.monitoring import (
    ATTRIBUTES,
    INTERSECTIONS,
    NO_SNAPSHOTS,
    SEP,
    STAGE_LABELS,
    STAGES,
    VIEWS,
    Report,
    Snapshot,
    attribute_key,
    attribute_label,
    build_report,
    fairness_default,
    overrides_table,
    period_table,
    rates_table,
    render_html,
    render_pdf,
    stage_table,
)
from backend.rollout import PHASE_LABELS

user = require(Perm.VIEW_FAIRNESS)
svc = get_services()
st.title("Fairness")
label_simulated()
VIEW_SHORT, KEYS = ({"all": "All decided applications", "ai": "AI arm", "blind": "Without the AI (control, excluded, "
                     "shadow)"}, [*ATTRIBUTES, *(attribute_key(i) for i in INTERSECTIONS)])


@st.cache_data(ttl=60, show_spinner=False)
def snapshots() -> list[Snapshot]:
    return get_services().fairness.snapshots()


@st.cache_data(ttl=300, show_spinner=False)
def simulated(history: str) -> int:
    return get_services().book.simulated_count()


def recompute() -> None:
    with st.spinner("Recomputing fairness for every month and phase (reads the book month by month)…"):
        try:
            n = svc.fairness.refresh(actor=Actor(user.username, user.role))
        except Exception as exc:  # noqa: BLE001 - one clear line on the page
            st.error(f"Recompute failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            return
    snapshots.clear()
    st.session_state["fairness_flash"] = f"Recomputed: {n} snapshots stored."
    st.rerun()


if flash := st.session_state.pop("fairness_flash", None):
    st.success(flash)
snaps = snapshots()
if not snaps:
    st.info(NO_SNAPSHOTS, icon=":material/info:")
    if st.button("Recompute now", key="fairness_recompute", type="primary"):
        recompute()
    st.stop()

c1, c2, c3, c4, c5 = st.columns([1.1, 1, 1.3, 1.4, 1.5])
gran = c1.radio("Period", ["phase", "month"], key="fairness_gran",
                format_func={"phase": "By rollout phase", "month": "By month"}.get)
periods = [s for s in snaps if s.granularity == gran]
if not periods:
    st.info(f"No {gran} snapshots yet. {NO_SNAPSHOTS}")
    st.stop()
period = c2.selectbox("Phase" if gran == "phase" else "Month", [s.period for s in periods],
                      index=fairness_default(periods, svc.clock.now()),  # newest complete, judged
                      format_func=lambda x: PHASE_LABELS.get(x, x), key=f"fairness_period_{gran}")
snap = next(s for s in periods if s.period == period)
attr: str = c3.selectbox("Attribute", KEYS, format_func=attribute_label, key="fairness_attr")
view: str = c4.selectbox("Applications", list(VIEWS), format_func=lambda v: VIEW_SHORT[v], key="fairness_view")
stage: str = c5.selectbox("Stage (selection rates)", list(STAGES), index=3, format_func=fc.STAGE_SHORT.get,
                          key="fairness_stage", help=fc.STAGE_HELP)
p, thr = snap.payload, float(snap.payload.get("threshold", svc.settings.monitoring.fairness_threshold))
if attr not in ATTRIBUTES and view != "all":
    st.caption("Intersections are computed over all decided applications.")
    view = "all"

fc.headline(snap, thr)
rates = rates_table(p, view, attr)
t_stage, t_rates, t_out, t_over, t_phase, t_report = st.tabs(
    ["Stages", "Selection rates", "Outcomes", "Overrides", "By phase and month", "Report"])
with t_stage:
    if rates.empty:
        st.caption("No decided applications in this view.")
    else:
        st.plotly_chart(fc.stage_lines(rates, thr, title=f"DI ratio by stage: {attribute_label(attr)}, "
                                                         f"{VIEW_SHORT[view]}, {period}"),
                        key="fairness_stage_chart")
        st.dataframe(stage_table(p, view), hide_index=True, key="fairness_stage_table")
        fc.csv_button(rates, f"fairness-{period}-{view}-{attr}.csv")
with t_rates:
    at_stage = rates[rates["stage"] == STAGE_LABELS[stage]] if len(rates) else rates
    if len(at_stage):
        st.plotly_chart(fc.selection_bars(at_stage, title=f"Selection rate at {STAGE_LABELS[stage].lower()}"),
                        key="fairness_rates_chart")
    st.dataframe(rates, hide_index=True, key="fairness_rates_table",
                 column_config={c: st.column_config.NumberColumn(format="percent")
                                for c in ("selection rate", "rate CI low", "rate CI high")})
with t_out:
    fc.outcomes(p, attr.split(SEP)[0], stage, period)  # outcome tables are per single attribute
with t_over:
    over = overrides_table(p, attr.split(SEP)[0])
    if len(over):
        st.plotly_chart(fc.rate_bars(over, "override rate", n_col="AI-arm decisions",
                                     title="Override rate by group (AI arm, officer's first decision)"),
                        key="fairness_override_chart")
        st.dataframe(over, hide_index=True, key="fairness_override_table")
        fc.csv_button(over, f"fairness-overrides-{period}.csv")
    else:
        st.caption("No AI-arm decisions in this period (shadow mode or control only): no overrides to compare.")
with t_phase:
    for g, label in (("phase", "rollout phase"), ("month", "month")):
        table = period_table([s for s in snaps if s.granularity == g], view, attr)
        if len(table):
            st.plotly_chart(fc.period_lines(table, thr, title=f"Lowest DI per stage by {label}: "
                                                              f"{attribute_label(attr)}, {VIEW_SHORT[view]}"),
                            key=f"fairness_{g}_chart")
            st.dataframe(table.drop(columns="stage"), hide_index=True, key=f"fairness_{g}_table")
with t_report:
    st.caption("The report names the threshold and the data window, with every figure above for this period, and "
               "the phase comparison.")
    phases, n_sim, clock = [s for s in snaps if s.granularity == "phase"], simulated(history_key()), svc.clock

    def report() -> Report:
        return build_report(snap, phases=phases, generated_at=clock.now(), simulated=n_sim)

    r1, r2 = st.columns(2)
    r1.download_button("Download report (HTML)", lambda: render_html(report()), file_name=f"fairness-{period}.html",
                       mime="text/html", key="fairness_html", on_click="ignore")
    r2.download_button("Download report (PDF)", lambda: render_pdf(report()), file_name=f"fairness-{period}.pdf",
                       mime="application/pdf", key="fairness_pdf", on_click="ignore")
if st.button("Recompute now", key="fairness_recompute"):
    recompute()
