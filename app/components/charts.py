"""Plotly figure builders (pure functions: data in, figure out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

REC_COLORS = {"approve": "#2e7d32", "manual_review": "#f9a825", "deny": "#c62828"}
REC_LABELS = {"approve": "Approve", "manual_review": "Manual review", "deny": "Deny"}


def monthly_recommendations(rows: Sequence[dict[str, Any]]) -> go.Figure:
    months = sorted({r["month"] for r in rows})
    fig = go.Figure()
    for rec in ("approve", "manual_review", "deny"):
        counts = {r["month"]: r["count"] for r in rows if r["recommendation"] == rec}
        fig.add_bar(x=months, y=[counts.get(m, 0) for m in months], name=REC_LABELS[rec],
                    marker_color=REC_COLORS[rec])
    fig.update_layout(barmode="stack", height=320, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", y=1.1), xaxis_title="Application month",
                      yaxis_title="Applications")
    return fig


def attribution_waterfall(base: float, items: Sequence[tuple[str, float]], total: float,
                          *, top: int = 12, space: str = "log-odds", start: str = "Base value",
                          end: str = "Score") -> go.Figure:
    """Waterfall from the model's base value to this application's score."""
    items = sorted(items, key=lambda kv: -abs(kv[1]))
    shown, rest = list(items[:top]), sum(v for _, v in items[top:])
    labels = [start] + [k for k, _ in shown] + ([f"{len(items) - top} other features"] if len(items) > top else [])
    values = [base] + [v for _, v in shown] + ([rest] if len(items) > top else [])
    fig = go.Figure(go.Waterfall(
        orientation="h", measure=["absolute"] + ["relative"] * (len(values) - 1) + ["total"],
        y=labels + [end], x=values + [total],
        increasing=dict(marker=dict(color="#c62828")), decreasing=dict(marker=dict(color="#2e7d32")),
        totals=dict(marker=dict(color="#1f5f8b")), connector=dict(line=dict(color="#9aa5b1"))))
    fig.update_layout(height=max(320, 28 * (len(labels) + 1)), margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(autorange="reversed"), xaxis_title=f"Contribution ({space}; red raises risk)")
    return fig


def calibration_curves(curves: dict[str, dict[str, Sequence[float]]]) -> go.Figure:
    """Reliability diagram: mean predicted vs observed default rate per bin, one trace per curve."""
    fig = go.Figure()
    top = 0.0
    for name, c in curves.items():
        x, y = list(c.get("mean_predicted", [])), list(c.get("observed_rate", []))
        top = max([top, *x, *y])
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=name,
                        text=[f"n={n}" for n in c.get("count", [])])
    fig.add_scatter(x=[0, top], y=[0, top], mode="lines", name="perfect", line=dict(dash="dot", color="#9aa5b1"))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="Mean predicted probability",
                      yaxis_title="Observed default rate", legend=dict(orientation="h", y=1.12))
    return fig
