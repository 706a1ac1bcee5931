"""Realized-performance tables and plotly figures (pure: rows from
:mod:`backend.monitoring.performance` in, a DataFrame or a figure out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backend.domain import safe_csv_text

ARM_COLORS = {"all": "#1f5f8b", "ai": "#c62828", "control": "#2e7d32", "excluded": "#7b6f9e"}
ARM_SHORT = {"all": "All", "ai": "AI arm", "control": "Control arm", "excluded": "Outside rollout"}
TABLE_COLUMNS = {  # row key -> column title (in display order)
    "vintage": "Vintage", "status": "Status", "funded": "Funded", "with_outcome": "With outcome",
    "defaults": "Defaults", "bad_rate": "Bad rate (observed or to date)", "expected_bad_rate": "Expected bad rate (PDs)",
    "expected_lo": "Expected low (95%)", "expected_hi": "Expected high (95%)", "auc": "AUC", "ks": "KS",
    "balanced_accuracy": "Balanced accuracy", "accuracy": "Accuracy", "brier": "Brier",
    "observed_over_expected": "Observed / expected", "matures_on": "Matures on",
}
VERSION_COLUMNS = {
    "model_version": "Model version", "role now": "Role now", "served": "Served (first to last application)",
    "applications": "Applications", "funded": "Funded", "with_outcome": "With outcome", "defaults": "Defaults",
    "bad_rate": "Bad rate (observed or to date)", "expected_bad_rate": "Expected bad rate (PDs)", "auc": "AUC",
    "ks": "KS", "balanced_accuracy": "Balanced accuracy", "accuracy": "Accuracy",
}
PERCENT_COLUMNS = ("Bad rate (observed or to date)", "Expected bad rate (PDs)", "Expected low (95%)", "Expected high (95%)")
_MARGIN = dict(l=10, r=10, t=40, b=10)


def vintage_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The vintage table as shown (and exported): one row per vintage, titled columns."""
    frame = pd.DataFrame(list(rows), columns=list(TABLE_COLUMNS))
    return frame.rename(columns=TABLE_COLUMNS)


def export_csv(by_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Every arm's vintage rows in one long CSV (spreadsheet-safe cells)."""
    rows = [{"arm": arm, **r} for arm, arm_rows in by_arm.items() for r in arm_rows]
    return safe_csv_text(rows, list(rows[0]) if rows else ["arm"])


def version_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Model versions side by side within one vintage, titled columns."""
    return pd.DataFrame(list(rows), columns=list(VERSION_COLUMNS)).rename(columns=VERSION_COLUMNS)


def arm_comparison_frame(by_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """The model's AUC on control-arm against AI-arm funded loans, per vintage, with its approximate 95%
    interval and the counts behind it."""
    out: dict[str, dict[str, Any]] = {}
    for arm, label in (("control", "control arm"), ("ai", "AI arm")):
        for r in by_arm.get(arm, ()):
            row = out.setdefault(r["vintage"], {"Vintage": r["vintage"], "Status": r["status"]})
            row[f"AUC {label}"] = r["auc"]
            row[f"95% interval {label}"] = (f"{r['auc_lo']:.2f} to {r['auc_hi']:.2f}"
                                            if r.get("auc_lo") is not None else "")
            row[f"Defaults / loans {label}"] = f"{r['defaults']:,} / {r['with_outcome']:,}"
    cols = ["Vintage", "Status"] + [f"{k} {label}" for label in ("control arm", "AI arm")
                                    for k in ("AUC", "95% interval", "Defaults / loans")]
    return pd.DataFrame([out[k] for k in sorted(out)], columns=cols)


def _split(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    mx = [r["vintage"] for r in rows if r["mature"]]
    my = [r[key] for r in rows if r["mature"]]
    ix = [r["vintage"] for r in rows if not r["mature"]]
    iy = [r[key] for r in rows if not r["mature"]]
    return mx, my, ix, iy


def discrimination_chart(by_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> go.Figure:
    """AUC and KS over vintages, one line per arm; open markers are immature vintages (to date)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("AUC", "KS"), horizontal_spacing=0.08)
    for arm, rows in by_arm.items():
        for col, key in ((1, "auc"), (2, "ks")):
            mx, my, ix, iy = _split(rows, key)
            color = ARM_COLORS.get(arm, "#555")
            fig.add_scatter(x=mx, y=my, mode="lines+markers", name=ARM_SHORT.get(arm, arm), legendgroup=arm,
                            showlegend=col == 1, line=dict(color=color), row=1, col=col,
                            hovertemplate="%{x}: %{y:.3f} (mature)<extra>" + ARM_SHORT.get(arm, arm) + "</extra>")
            fig.add_scatter(x=ix, y=iy, mode="markers", name=f"{ARM_SHORT.get(arm, arm)}, to date",
                            legendgroup=arm, showlegend=False, row=1, col=col,
                            marker=dict(color=color, symbol="circle-open", size=9),
                            hovertemplate="%{x}: %{y:.3f} (to date, not mature)<extra></extra>")
    fig.update_xaxes(type="category", categoryorder="category ascending")
    fig.update_layout(height=360, margin=_MARGIN, legend=dict(orientation="h", y=-0.15))
    return fig


def bad_rate_chart(by_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> go.Figure:
    """Per arm (side by side): observed bad rate (filled: mature; open: to date) against the bad rate the
    PDs predict, with the 95% range chance alone allows if the PDs are right."""
    arms = [a for a, rows in by_arm.items() if rows]
    fig = make_subplots(rows=1, cols=max(1, len(arms)), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[ARM_SHORT.get(a, a) for a in arms] or [""])
    for col, arm in enumerate(arms, start=1):
        rows, color, first = by_arm[arm], ARM_COLORS.get(arm, "#555"), col == 1
        exp = [r for r in rows if r["expected_bad_rate"] is not None]
        fig.add_scatter(x=[r["vintage"] for r in exp], y=[r["expected_bad_rate"] for r in exp], row=1, col=col,
                        mode="lines", name="expected from the PDs (95% range)", legendgroup="exp", showlegend=first,
                        line=dict(color="#7f8c8d", dash="dash"),
                        error_y=dict(type="data", symmetric=False, color="#9aa5b1", thickness=1,
                                     array=[r["expected_hi"] - r["expected_bad_rate"] for r in exp],
                                     arrayminus=[r["expected_bad_rate"] - r["expected_lo"] for r in exp]),
                        hovertemplate="%{x}: expected %{y:.2%}<extra></extra>")
        mx, my, ix, iy = _split(rows, "bad_rate")
        fig.add_scatter(x=mx, y=my, mode="markers", name="observed (mature)", legendgroup="mature", row=1, col=col,
                        showlegend=first, marker=dict(color=color, size=10),
                        hovertemplate="%{x}: observed %{y:.2%}<extra></extra>")
        fig.add_scatter(x=ix, y=iy, mode="markers", name="observed to date (not mature)", legendgroup="to-date",
                        showlegend=first, row=1, col=col, marker=dict(color=color, size=10, symbol="circle-open"),
                        hovertemplate="%{x}: observed to date %{y:.2%}<extra></extra>")
    fig.update_xaxes(type="category", categoryorder="category ascending")
    fig.update_yaxes(tickformat=".1%")
    fig.update_yaxes(title="Bad rate of funded loans", row=1, col=1)
    fig.update_layout(height=380, margin=_MARGIN, legend=dict(orientation="h", y=-0.2))
    return fig


def calibration_chart(bins: Sequence[Mapping[str, Any]], title: str) -> go.Figure:
    """Mean PD against the observed default rate per PD bin (95% Wilson bars; marker size ~ loans)."""
    x = [b["mean_pd"] for b in bins]
    y = [b["observed_rate"] for b in bins]
    top = max([0.01, *x, *(b["obs_hi"] for b in bins)]) * 1.05
    biggest = max([1, *(b["n"] for b in bins)])
    fig = go.Figure()
    fig.add_scatter(x=[0, top], y=[0, top], mode="lines", name="perfect calibration",
                    line=dict(dash="dot", color="#9aa5b1"))
    fig.add_scatter(x=x, y=y, mode="markers+lines", name="observed",
                    marker=dict(size=[8 + 16 * (b["n"] / biggest) ** 0.5 for b in bins], color="#1f5f8b"),
                    error_y=dict(type="data", symmetric=False, array=[b["obs_hi"] - b["observed_rate"] for b in bins],
                                 arrayminus=[b["observed_rate"] - b["obs_lo"] for b in bins]),
                    customdata=[[b["n"], b["defaults"], b["lo"], b["hi"]] for b in bins],
                    hovertemplate=("mean PD %{x:.2%} · observed %{y:.2%}<br>%{customdata[0]} loans, "
                                   "%{customdata[1]} defaults<br>PD %{customdata[2]:.2%} to %{customdata[3]:.2%}"
                                   "<extra></extra>"))
    fig.update_layout(title=title, height=380, margin=_MARGIN, legend=dict(orientation="h", y=-0.2),
                      xaxis=dict(title="Mean PD in the bin", tickformat=".1%", range=[0, top]),
                      yaxis=dict(title="Observed default rate", tickformat=".1%", range=[0, top]))
    return fig


def version_chart(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """AUC, KS and balanced accuracy per model version (one vintage's rows)."""
    fig = go.Figure()
    for key, label in (("auc", "AUC"), ("ks", "KS"), ("balanced_accuracy", "Balanced accuracy")):
        fig.add_bar(x=[r["model_version"] for r in rows], y=[r[key] for r in rows], name=label,
                    text=[f"{r[key]:.3f}" if r[key] is not None else "n/a" for r in rows])
    fig.update_layout(barmode="group", height=320, margin=_MARGIN, legend=dict(orientation="h", y=1.15),
                      yaxis=dict(range=[0, 1]))
    return fig
