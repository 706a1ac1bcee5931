"""Plotly figures for the fairness page (pure: tables from ``backend.monitoring.fairness_report`` in,
figures out) and two small page blocks. Groups not judged (too small, or the answer not provided)
are drawn dotted/grey and say why."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend.domain import safe_csv_text
from backend.monitoring import (
    BLIND_NOTE,
    ERROR_NOTE,
    REFERENCE_NOTE,
    STAGE_LABELS,
    STAGES,
    THRESHOLD_LABEL,
    Snapshot,
    attribute_label,
    defaults_table,
    disparate_impact_of,
    errors_table,
    gaps_table,
    interval,
    ratio,
)

STAGE_ORDER = [STAGE_LABELS[s] for s in STAGES]
# the page's stage picker: short names fit its narrow column ("4. Final decision (approved)" was cut off), the
# full labels go in its help (and stay in the tables)
STAGE_SHORT = {s: STAGE_LABELS[s].split(" (")[0] for s in STAGES}
STAGE_HELP = "Which decision the selection rates count: " + "; ".join(STAGE_LABELS[s] for s in STAGES) + "."
SMALL_COLOR = "#9aa5b1"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
LAYOUT = dict(margin=dict(l=60, r=20, t=50, b=90), legend=dict(orientation="h", y=-0.28, x=0),
              xaxis=dict(automargin=True), yaxis=dict(automargin=True))


def _threshold(fig: go.Figure, threshold: float) -> None:
    fig.add_hline(y=threshold, line_dash="dash", line_color="#c62828",
                  annotation_text=f"{threshold:.2f}: {THRESHOLD_LABEL}", annotation_position="bottom left",
                  annotation_font_size=11)


def stage_lines(rates: pd.DataFrame, threshold: float, *, title: str = "") -> go.Figure:
    """DI ratio per stage, one line per group: where along the pipeline a disparity enters."""
    fig = go.Figure()
    for i, (group, g) in enumerate(rates.groupby("group", sort=True)):
        g = g.set_index("stage").reindex(STAGE_ORDER)
        why = next((x for x in g["note"] if isinstance(x, str) and x), "")
        small = bool(why)
        fig.add_scatter(x=STAGE_ORDER, y=g["DI ratio"], mode="lines+markers",
                        name=f"{group} ({why.split(':')[0]})" if small else str(group),
                        line=dict(dash="dot", color=SMALL_COLOR) if small else dict(color=PALETTE[i % len(PALETTE)]),
                        customdata=g[["applications", "DI CI low", "DI CI high"]].to_numpy(),
                        hovertemplate="%{x}<br>DI %{y:.3f} [%{customdata[1]:.3f}, %{customdata[2]:.3f}]"
                                      "<br>n=%{customdata[0]:,}<extra>" + str(group) + "</extra>")
    _threshold(fig, threshold)
    fig.update_layout(height=440, title=title or "Disparate-impact ratio by stage (vs the most favoured group)", **LAYOUT)
    fig.update_yaxes(title="DI ratio")
    return fig


def selection_bars(rates: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Selection rate per group at one stage, with bootstrap CI error bars and group sizes."""
    r = rates.sort_values("group")
    small = r["note"] != ""
    fig = go.Figure(go.Bar(
        x=r["group"], y=r["selection rate"], marker_color=["#9aa5b1" if s else "#1f5f8b" for s in small],
        error_y=dict(type="data", symmetric=False, array=(r["rate CI high"] - r["selection rate"]).clip(lower=0),
                     arrayminus=(r["selection rate"] - r["rate CI low"]).clip(lower=0)),
        text=[f"n={n:,}" + (f" · {w}" if w else "") for n, w in zip(r["applications"], r["note"], strict=True)],
        textposition="inside", insidetextanchor="start", hovertemplate="%{x}: %{y:.1%}<br>%{text}<extra></extra>"))
    fig.update_layout(height=380, title=title or "Selection rate by group (95% bootstrap CI)", **LAYOUT)
    fig.update_yaxes(title="Selection rate", tickformat=".0%", rangemode="tozero")
    return fig


def error_bars(errors: pd.DataFrame, *, title: str = "") -> go.Figure:
    """TPR and FPR per group at one stage (funded loans with a recorded outcome)."""
    fig = go.Figure()
    for col, color in (("TPR", "#2e7d32"), ("FPR", "#c62828")):
        fig.add_bar(x=errors["group"], y=errors[col], name=col, marker_color=color,
                    hovertemplate="%{x}: %{y:.1%}<extra>" + col + "</extra>")
    fig.update_layout(height=340, barmode="group", title=title or "TPR and FPR by group", **LAYOUT)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def rate_bars(df: pd.DataFrame, value: str, *, title: str, n_col: str) -> go.Figure:
    """One rate per group (default rate, override rate), group sizes as text."""
    small = df["note"] != ""
    fig = go.Figure(go.Bar(x=df["group"], y=df[value], marker_color=["#9aa5b1" if s else "#6a4c93" for s in small],
                           text=[f"n={n:,}" + (f" · {w}" if w else "") for n, w in zip(df[n_col], df["note"],
                                                                                        strict=True)],
                           textposition="inside", insidetextanchor="start",
                           hovertemplate="%{x}: %{y:.2%}<br>%{text}<extra></extra>"))
    fig.update_layout(height=320, title=title, **LAYOUT)
    fig.update_yaxes(tickformat=".1%", rangemode="tozero")
    return fig


def period_lines(periods: pd.DataFrame, threshold: float, *, title: str) -> go.Figure:
    """Lowest DI per stage, one line per period (phase or month)."""
    fig = go.Figure()
    for i, (period, g) in enumerate(periods.groupby("period", sort=False)):
        g = g.set_index("stage label").reindex(STAGE_ORDER)
        fig.add_scatter(x=STAGE_ORDER, y=g["lowest DI"], mode="lines+markers", name=str(period),
                        line=dict(color=PALETTE[i % len(PALETTE)]),
                        customdata=g[["group", "reference"]].fillna("").to_numpy(),
                        hovertemplate="%{x}<br>lowest DI %{y:.3f}: %{customdata[0]} vs %{customdata[1]}"
                                      "<extra>" + str(period) + "</extra>")
    _threshold(fig, threshold)
    fig.update_layout(height=420, title=title, **LAYOUT)
    fig.update_yaxes(title="Lowest DI ratio")
    return fig


# -- small page blocks ----------------------------------------------------------------------------------------
def headline(snap: Snapshot, threshold: float) -> None:
    """The period's lowest DI at the final decision with its interval (:func:`disparate_impact_of`, the
    figure the alert, the readiness check, the phase guardrail and the report read), the threshold, the
    data window and the definitions."""
    p = snap.payload
    low, pop = disparate_impact_of(snap), p.get("population", {})
    # a wrapping row of metrics as wide as their values: five equal columns cut "[0.780, 0.958]" and
    # "female vs male" to "[0.780, 0…" and "female v…" on a laptop screen
    with st.container(horizontal=True, gap="medium"):
        st.metric("Lowest DI, final decision", ratio(low.value) if low else "—", width="content",
                  help="Across sex, age band and race/ethnicity, judged groups only.")
        st.metric(f"{low.level if low else 0.95:.0%} interval", interval(low.low, low.high) if low else "—",
                  width="content", help="Percentile bootstrap, resampling within each group.")
        st.metric("Group vs reference", f"{low.group} vs {low.reference}" if low else "—", width="content",
                  help=attribute_label(low.attribute) if low else None)
        st.metric("Screening threshold", f"{threshold:.2f}", help=THRESHOLD_LABEL, width="content")
        st.metric("Decided applications", f"{pop.get('decided', 0):,}", width="content",
                  help=f"undecided: {pop.get('undecided') or 0:,}")
    st.caption(f"Data window: applications made {snap.window_start:%Y-%m-%d %H:%M} to {snap.window_end:%Y-%m-%d %H:%M}"
               f" UTC; computed {snap.computed_at:%Y-%m-%d %H:%M} UTC. Threshold {threshold:.2f}: {THRESHOLD_LABEL}. "
               f"Bootstrap CIs: {p.get('bootstrap_samples')} resamples within each group.")
    if low is None:
        decided, small = pop.get("decided", 0), p.get("min_group")
        st.info(f"No figure for {snap.period}: " + (
            "no application of this period has been decided yet (decisions and the month arrive over time)."
            if not decided else f"{decided:,} decided application(s), and no group of any attribute reaches the "
                                f"{small} applications needed to judge it, so there is nothing to compare yet."))
    if low and low.value < threshold:
        st.warning(f"{attribute_label(low.attribute)}: {low.group} is at {ratio(low.value)} of the selection "
                   f"rate of {low.reference} at the final decision ({low.level:.0%} CI {interval(low.low, low.high)}),"
                   f" below the {THRESHOLD_LABEL}. The alert rule halts deployments while the latest month is below it.")
    st.caption(REFERENCE_NOTE.format(min_group=p.get("min_group")) + " " + BLIND_NOTE)


def outcomes(p: dict[str, Any], one: str, stage: str, period: str) -> None:
    """The Outcomes tab: TPR/FPR by group at ``stage``, the gaps, default rates among funded loans."""
    st.caption(ERROR_NOTE)
    errors = errors_table(p, one)
    if not len(errors):
        st.caption("No funded loans with a recorded outcome in this period.")
        return
    st.plotly_chart(error_bars(errors[errors["stage"] == STAGE_LABELS[stage]],
                               title=f"TPR / FPR by {attribute_label(one).lower()} at {STAGE_LABELS[stage].lower()}"),
                    key="fairness_error_chart")
    st.dataframe(gaps_table(p), hide_index=True, key="fairness_gaps_table")
    st.plotly_chart(rate_bars(defaults_table(p, one), "default rate", n_col="funded, outcome known",
                              title=f"Default rate among funded loans by {attribute_label(one).lower()}"),
                    key="fairness_default_chart")
    st.dataframe(errors, hide_index=True, key="fairness_errors_table")
    csv_button(errors, f"fairness-outcomes-{period}-{one}.csv")


def csv_button(df: pd.DataFrame, name: str) -> None:
    """A CSV download of a table (cells a spreadsheet could execute are neutralised)."""
    st.download_button("Download CSV", safe_csv_text(df.to_dict("records"), list(df.columns)), file_name=name,
                       mime="text/csv", key=f"fairness_csv_{name}", on_click="ignore")
