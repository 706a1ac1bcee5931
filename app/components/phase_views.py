"""Phase comparison widgets: the advance panel, tables with CSV export, the confidence-sequence
chart and the power calculator's result. Text from the records is shown escaped (``plain``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.components.text import plain
from backend.analytics import Advice, PowerPlan, SeqPoint, fmt
from backend.domain import safe_csv_text
from backend.rollout import PHASE_LABELS

ICONS = {"ok": ":material/check_circle:", "info": ":material/info:", "wait": ":material/hourglass_top:",
         "block": ":material/block:"}
STATUS_WORDS = {"ok": "holds", "info": "note", "wait": "missing or only likely", "block": "fails"}


def _reasons(adv: Advice) -> None:
    for r in adv.reasons:
        st.markdown(f"{ICONS.get(r.status, '')} **{STATUS_WORDS.get(r.status, r.status)}:** {plain(r.text)}")
    if adv.next_phase:
        nxt = PHASE_LABELS.get(adv.next_phase, adv.next_phase)
        st.caption(f"{plain(nxt)} will be judged on: " + plain("; ".join(adv.next_criteria)))


def advice_panel(advice: Sequence[Advice], current: str) -> None:
    """The verdict for the phase in force first (never a bare yes: the reasons come with it), then
    the earlier transitions as they look on today's records."""
    now = [a for a in advice if a.phase == current]
    with st.container(border=True):
        st.subheader("Should we advance?")
        if not now:
            st.info(f"No applications recorded in the phase in force ({plain(PHASE_LABELS.get(current, current))}) yet.")
        for adv in now:
            box = {"ready": st.success, "not yet": st.warning, "no-go": st.error}[adv.verdict]
            box(plain(adv.headline))
            _reasons(adv)
    earlier = [a for a in advice if a.phase != current]
    if earlier:
        with st.expander("Earlier transitions, on today's records"):
            for adv in earlier:
                st.markdown(f"**{plain(adv.headline)}**")
                _reasons(adv)


def table(rows: list[dict[str, Any]], *, key: str, file_name: str, csv_rows: list[dict[str, Any]] | None = None,
          caption: str | None = None) -> None:
    """A table and its CSV download (``csv_rows``: numeric rows for the CSV, default the shown ones)."""
    if not rows:
        st.caption("No data yet.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"phases_df_{key}")
    if caption:
        st.caption(caption)
    out = csv_rows if csv_rows is not None else rows
    st.download_button("Download CSV", safe_csv_text(out, list(out[0]) if out else []), file_name=file_name,
                       mime="text/csv", key=f"phases_csv_{key}", on_click="ignore")


def cs_figure(points: Sequence[SeqPoint], label: str, alpha: float) -> go.Figure:
    """The always-valid confidence band of AI - control, week by week, with the zero line."""
    pts = [p for p in points if p.estimate is not None]
    weeks = [p.week.isoformat() for p in pts]  # one look per week with new cases, evenly spaced
    fig = go.Figure()
    band = [p for p in pts if p.low is not None and p.high is not None]
    if band:
        fig.add_scatter(x=[p.week.isoformat() for p in band], y=[(p.high or 0) * 100 for p in band], mode="lines",
                        line={"width": 0}, showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=[p.week.isoformat() for p in band], y=[(p.low or 0) * 100 for p in band], mode="lines",
                        line={"width": 0}, fill="tonexty", fillcolor="rgba(31,95,139,0.22)",
                        name=f"always-valid {1 - alpha:.0%} band")
    fig.add_scatter(x=weeks, y=[(p.estimate or 0) * 100 for p in pts], mode="lines+markers", name="AI - control",
                    line={"color": "#1f5f8b"},
                    text=[f"{p.n_ai:,} AI / {p.n_control:,} control" for p in pts])
    fig.add_hline(y=0, line_dash="dot", line_color="gray")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=label,
                      xaxis={"title": "Application week (cumulative look)", "type": "category"},
                      yaxis_title="Difference (percentage points)",
                      legend={"orientation": "h", "y": 1.12})
    return fig


def power_result(plan: PowerPlan, label: str) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("AI arm", f"{plan.n_ai:,}", help="cases needed in the AI arm")
    c2.metric("Control arm", f"{plan.n_control:,}", help="cases needed in the control arm")
    weeks = "never (no volume)" if plan.weeks == float("inf") else f"{plan.weeks:.1f}"
    c3.metric("Weeks at the current volume", weeks)
    st.caption(plain(f"To detect a change of {fmt(plan.mde, 'pp', signed=True)} in the {label.lower()} from a baseline "
                     f"of {fmt(plan.baseline, 'rate')} with a two-sided test at alpha {plan.alpha:g} and power "
                     f"{plan.power:.0%}, with {plan.ai_share:.0%} of eligible cases in the AI arm. {plan.note} This is the "
                     "size for one look at the end; following it weekly with the confidence sequence needs roughly "
                     "twice as many (the price of looking every week)."))
