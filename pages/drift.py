"""Drift (risk manager, ML engineer): PSI per feature and for the model score by week or month against
the champion's training reference, read from stored snapshots; evidently's report as a deep dive."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from app.guard import label_simulated, require
from app.services import get_services
from backend.domain import Actor, Perm
from backend.monitoring import (
    SCORE_LABEL,
    distribution_bars,
    drift_default,
    heatmap,
    heatmap_rows,
    psi_csv,
    psi_lines,
    reason_lines,
    top_features_bar,
)

user = require(Perm.VIEW_MONITORING)
svc = get_services()
cfg = svc.settings.monitoring
HOW_TO = ("Snapshots are computed by `creditrisk monitor run` (schedule it with cron, e.g. every Monday "
          "06:00) or by **Recompute now** below.")

st.title("Drift")
label_simulated()


@st.cache_data(ttl=300, show_spinner=False)
def _views(granularity: str, computed_at: datetime | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    d = get_services().drift
    return d.psi_table(granularity), d.series(granularity), d.reason_shares(granularity)


@st.cache_data(ttl=300, show_spinner=False)
def _period(granularity: str, period: str, feature: str | None, computed_at: datetime | None
            ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    d = get_services().drift
    top = d.top_features(granularity, period, k=15)
    return top, d.distribution(granularity, period, feature) if feature else None


@st.cache_data(ttl=900, max_entries=2, show_spinner=False)
def _deep_dive(granularity: str, period: str, computed_at: datetime | None) -> str:
    return get_services().drift.deep_dive(granularity, period)


def _recompute() -> None:
    with st.spinner("Recomputing drift for every week and month (reads the book in chunks)…"):
        try:
            n = svc.drift.refresh_all(actor=Actor(user.username, user.role))
        except Exception as exc:  # noqa: BLE001 - one clear line on the page
            st.error(f"Recompute failed: {type(exc).__name__}: {str(exc)[:300]}")
            return
    st.success(f"{n} period snapshot(s) recomputed; unchanged periods were kept.")


try:
    status = svc.drift.status()
except Exception as exc:  # noqa: BLE001 - e.g. the database is unreachable
    st.error(f"Drift summaries cannot be read: {type(exc).__name__}: {str(exc)[:300]}")
    st.stop()

if not status["version"]:
    st.info(f"No drift snapshots yet. {HOW_TO}")
    if st.button("Recompute now", type="primary", key="drift_recompute_empty"):
        _recompute()
        st.rerun()
    st.stop()
top_bar = st.columns([3, 1])
granularity = top_bar[0].radio("Granularity", ["week", "month"], horizontal=True, key="drift_granularity")
if top_bar[1].button("Recompute now", key="drift_recompute"):
    _recompute()
    status = svc.drift.status()
stamp = status["computed_at"]
st.caption(f"Reference: the training hold-out of model {status['version']} (a random 20% of its training data); "
           f"last computed {stamp:%Y-%m-%d %H:%M} UTC. Bands: PSI < {cfg.psi_watch:g} stable, "
           f"{cfg.psi_watch:g}-{cfg.psi_act:g} watch, > {cfg.psi_act:g} act. {HOW_TO}")
if status["stale"]:
    st.warning(f"The champion is now {status['champion']}: these figures use the previous reference. "
               "Recompute to measure against the new champion.")

table, series, shares = _views(granularity, stamp)
if table.empty:
    st.info(f"No {granularity}ly snapshots yet. {HOW_TO}")
    st.stop()

st.subheader("PSI by period")
st.plotly_chart(heatmap(heatmap_rows(table, SCORE_LABEL, top=20), watch=cfg.psi_watch, act=cfg.psi_act))
st.caption("The model score and the 20 features with the highest PSI in any period; colours saturate at "
           f"{2 * cfg.psi_act:g} (hover for the exact value).")
st.download_button("Download the PSI table (CSV, every feature)", psi_csv(table),
                   file_name=f"drift_psi_{granularity}.csv", mime="text/csv", key="drift_csv")

st.plotly_chart(psi_lines(series, watch=cfg.psi_watch, act=cfg.psi_act))
incomplete = series.loc[~series["complete"], "period"].tolist()
small = series.loc[series["n"] < cfg.thresholds.min_rows, "period"].tolist()
notes = ([f"still receiving applications: {', '.join(incomplete)}"] if incomplete else []) + (
    [f"fewer than {cfg.thresholds.min_rows} applications, so their PSI is mostly noise (the alert skips "
     f"them): {', '.join(small)}"] if small else [])
if notes:
    st.caption("Periods " + "; ".join(notes) + ".")

periods = series["period"].tolist()
left, right = st.columns(2)
period = left.selectbox("Period", periods, index=drift_default(series, cfg.thresholds.min_rows), key="drift_period")
features = [SCORE_LABEL, *sorted(f for f in table.index if f != SCORE_LABEL)]
top, _ = _period(granularity, period, None, stamp)
default = features.index(top["feature"].iloc[0]) if not top.empty else 0
feature = right.selectbox("Feature", features, index=default, key=f"drift_feature_{period}")
top, dist = _period(granularity, period, feature, stamp)
n_rows = int(series.loc[series["period"] == period, "n"].iloc[0])
with left:
    st.markdown(f"**Top drifting in {period}** ({n_rows:,} applications)")
    st.plotly_chart(top_features_bar(top))
with right:
    st.markdown(f"**{feature}: reference vs {period}**")
    if dist is not None:
        st.plotly_chart(distribution_bars(dist, period=period))

st.subheader("Reason codes of deny recommendations")
if shares.empty or shares["share"].isna().all():
    st.caption("No deny recommendations in these periods.")
else:
    st.plotly_chart(reason_lines(shares))
    st.caption("Share of the model's deny recommendations that cite each reason among their principal reasons "
               "(a recommendation cites up to four, so shares add up to more than 100%).")

st.subheader("Deep dive (evidently)")
st.caption(f"Evidently's data-drift report for {granularity} {period} on its 20 highest-PSI features and the "
           "model score: up to 20,000 random applications of the window against up to 20,000 reference rows "
           "(PSI test, 'drift detected' above the act threshold). "
           "Evidently bins differently (equal-width bins, missing values dropped), so its PSI differs from ours.")
if st.button(f"Build the evidently report for {period}", key="drift_deep_dive"):
    with st.spinner("Running evidently on the samples (takes a while)…"):
        try:
            st.session_state["drift_report"] = (granularity, period, _deep_dive(granularity, period, stamp))
        except Exception as exc:  # noqa: BLE001
            st.error(f"The evidently report failed: {type(exc).__name__}: {str(exc)[:300]}")
report = st.session_state.get("drift_report")
if report and report[:2] == (granularity, period):
    components.html(report[2], height=1100, scrolling=True)  # evidently's own HTML, not user or LLM text
