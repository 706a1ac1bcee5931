"""Latency: p50/p95/p99 per scoring component, cached vs uncached, explanation calls by provider,
and end to end per decision against the p95 target, by month and by rollout phase. Every figure
comes from the recorded timings (predictions.timings, llm_usage.latency_ms)."""

from __future__ import annotations

import streamlit as st

from app.components import cost_views as v
from app.guard import history_key, label_simulated, require
from app.services import get_services
from backend.analytics import E2E_DEFINITION, LatencyReport
from backend.domain import Perm

user = require(Perm.VIEW_LATENCY)
st.title("Latency")
label_simulated()
target_s = float(get_services().settings.monitoring.thresholds.latency_p95_max_s)


@st.cache_data(ttl=300, show_spinner="Computing percentiles from the recorded timings…")
def load_report(target: float, history: str) -> LatencyReport:
    return get_services().latency.report(target_s=target)


report = load_report(target_s, history_key())
e2e = report.end_to_end
if e2e is None and not report.rows:
    st.info("No timings recorded yet: latency appears here once applications are scored.")
    st.stop()

explained = next((r for r in report.table("end_to_end", "kind") if r.group == "scoring + explanation"), None)
request = report.overall("component", "Scoring request (total)")
cols = st.columns(5)
cols[0].metric("End to end p95", v.seconds(report.e2e.p95_s), help=v.latency_help(report.e2e))
cols[1].metric("p95, last 7 days", v.seconds(report.recent.p95_s), help=v.latency_help(report.recent)
               + " The latency alert rule reads this figure.")
cols[2].metric("p95 with an explanation", v.seconds(explained.p95_ms / 1000 if explained else None),
               help="decisions whose scoring was followed by explanation LLM calls")
cols[3].metric("Scoring request p95", f"{request.p95_ms:.1f} ms" if request else "—")
cols[4].metric("p95 target", f"{report.target_s:g} s", help="CREDITRISK_MONITORING__THRESHOLDS__LATENCY_P95_MAX_S")
if report.target_met is True:
    st.success(f"End-to-end p95 {report.p95_end_to_end_s:.2f} s meets the {report.target_s:g} s target.")
elif report.target_met is False:
    st.error(f"End-to-end p95 {report.p95_end_to_end_s:.2f} s is above the {report.target_s:g} s target.")
st.caption(f"{E2E_DEFINITION} Percentiles: {report.method}. Timing components recorded: "
           f"{', '.join(report.timing_keys) or 'none'}. Phase: the rollout phase in force when the request was scored."
           + (" Only the first rows were read (SQLite row cap)." if report.truncated else ""))
st.subheader("Per component")
components = v.latency_frame([*report.table("component", "all"), *report.table("explanation", "provider"),
                              *report.table("end_to_end", "all")])
v.table(components, "the component percentiles", "latency_components", column_config=v.MS_PERCENTILES)

st.subheader("End to end per decision")
if report.e2e_quantiles:
    st.plotly_chart(v.e2e_distribution(report.e2e_quantiles, report.target_s), key="latency_e2e_chart")
e2e_rows = v.latency_frame([*report.table("end_to_end", "all"), *report.table("end_to_end", "kind"),
                            *report.table("end_to_end", "phase")])
v.table(e2e_rows, "the end-to-end percentiles", "latency_e2e",
        column_config=v.MS_PERCENTILES | {"share over target": v.PCT})
if report.ai_by_phase:
    st.markdown("**AI arm by phase**: the figure the phase comparison's latency criterion judges (p95 with its 95% "
                "interval, in seconds)")
    v.table(v.latency_figures_frame(report.ai_by_phase), "the AI-arm p95 by phase", "latency_ai_phase")

st.subheader("Cached vs uncached")
cached = v.latency_frame([*report.table("component", "cache"),
                          *[r for r in report.table("component", "all") if r.name.startswith(("Model", "Cache"))]])
v.table(cached, "the cached vs uncached table", "latency_cache", column_config=v.MS_PERCENTILES)
if not any(r.group == "cached" for r in report.table("component", "cache")):
    st.caption("No scoring request in this history was served from the scoring cache.")

st.subheader("Explanations by provider")
providers = v.latency_frame(report.table("explanation", "provider"), group_title="provider")
v.table(providers, "the provider table", "latency_providers", column_config=v.MS_PERCENTILES)
st.caption("Stored-explanation views read the text saved with the decision: no LLM call. Timeouts count with the "
           "time the call waited before the fallback provider answered.")

st.subheader("Monthly trend")
monthly_e2e = report.table("end_to_end", "month")
monthly_request = [r for r in report.table("component", "month") if r.name == "Scoring request (total)"]
st.plotly_chart(v.latency_trend(monthly_e2e, monthly_request, report.target_s), key="latency_trend_chart")
monthly = v.latency_frame([*monthly_e2e, *monthly_request, *report.table("component", "phase")])
v.table(monthly, "the monthly and phase table", "latency_monthly",
        column_config=v.MS_PERCENTILES | {"share over target": v.PCT})
